// Every plugin page starts the way an app starts with it: `npm install`, then an import from the
// plugin's own subpath; and the examples import the package by name, as an app does.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../lib/paths.ts'

const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
// Subpaths with a page of their own (the server's is the configuration and deployment guides).
const pages = Object.keys(manifest.exports).map((key) => key.slice(2)).filter((name) => !['', 'package.json', 'server', 'redis'].includes(name))

t.test('each plugin page opens with npm install and an import from its subpath', async (t) => {
  t.ok(pages.length >= 10, `${pages.length} subpaths with a page`)
  for (const name of pages) {
    const text = readFileSync(join(PACKAGE_ROOT, 'docs', `${name}.md`), 'utf8')
    const lines = text.split('\n')
    t.match(lines[0], /^# /, `${name}.md: a title`)
    const [first, second] = lines.slice(1).filter((line) => line.trim() !== '')
    t.equal(first, '```sh', `${name}.md: a shell block first`)
    t.match(second, /^npm install gatehouse\b/, `${name}.md: that installs the package`)
    const ts = /```ts\n([\s\S]*?)```/.exec(text)
    t.ok(ts !== null && ts[1].includes(`from 'gatehouse/${name}'`), `${name}.md: the first TypeScript block imports from gatehouse/${name}`)
  }
})

t.test('the examples import gatehouse by name, never the package\'s own files', async (t) => {
  const files = readdirSync(join(PACKAGE_ROOT, 'examples'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))
  t.ok(files.length >= 5, `${files.length} example files`)
  for (const file of files) {
    const text = readFileSync(join(PACKAGE_ROOT, 'examples', file), 'utf8')
    const inward = text.split('\n').filter((line) => /from '\.\.\/\.\.\//.test(line))
    t.same(inward, [], `${file}: no import from ../../`)
    // fastify-jwt/before.ts is the @fastify/jwt set-up a team starts from: no Gatehouse in it.
    if (file !== join('fastify-jwt', 'before.ts')) t.match(text, /from 'gatehouse(\/[a-z-]+)?'/, `${file}: imports gatehouse`)
  }
})
