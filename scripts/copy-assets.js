// After `tsc`: copies the data files the compiled plugins read at run time into dist/ (or into the
// output folder given, relative to the package root: the bench's build uses bench/.build).
import { cpSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = process.argv[2] ?? 'dist'
const assets = ['plugins/credentials/common-passwords.txt', 'plugins/credentials/common-passwords.LICENSE.txt']
for (const asset of assets) {
  const from = join(root, asset)
  if (!existsSync(from)) {
    console.error(`copy-assets: ${asset} is missing`)
    process.exit(1)
  }
  cpSync(from, join(root, out, asset))
}
console.log(`copy-assets: ${assets.length} data file(s) copied to ${out}/`)
