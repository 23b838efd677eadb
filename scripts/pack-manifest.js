// `npm pack` / `npm publish`: the tarball's package.json carries no `prepare` script, so that npm
// lists no install script for the package (it never runs `prepare` for a tarball, but reports it).
// `prepack` calls this with `strip` after the build, `postpack` with `restore`; the repo keeps
// `prepare`, which generates the Prisma clients at `npm install` in a checkout. A pack interrupted
// between the two leaves the original in .package.json.prepack: `restore` puts it back.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const manifest = join(root, 'package.json')
const saved = join(root, '.package.json.prepack')

const action = process.argv[2]
if (action === 'strip') {
  const text = readFileSync(manifest, 'utf8')
  const pkg = JSON.parse(text)
  if (pkg.scripts?.prepare === undefined) process.exit(0)
  writeFileSync(saved, text)
  delete pkg.scripts.prepare
  writeFileSync(manifest, JSON.stringify(pkg, null, 2) + '\n')
} else if (action === 'restore') {
  if (existsSync(saved)) renameSync(saved, manifest)
} else {
  console.error('usage: node scripts/pack-manifest.js strip|restore')
  process.exit(2)
}
