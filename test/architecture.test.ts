// The layers point one way (docs/architecture.md): lib/ imports nothing of ours but lib/;
// plugins/ never import server/, routes/ or cli/, nor another plugin's inner files; routes/
// import plugins only through their entry files; nothing below the server imports it; client/
// imports nothing outside itself (it compiles alone for the browser).
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { PACKAGE_ROOT } from '../lib/paths.ts'

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : []
  })
}

/** Every relative import of a file, as a path from the package root. */
function imports (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const found: string[] = []
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g)) {
    found.push(relative(PACKAGE_ROOT, resolve(dirname(file), m[1])))
  }
  for (const m of text.matchAll(/import\('(\.{1,2}\/[^']+)'\)/g)) found.push(relative(PACKAGE_ROOT, resolve(dirname(file), m[1])))
  return found
}

function violations (folder: string, rule: (from: string, to: string) => string | null): string[] {
  const out: string[] = []
  for (const file of sources(join(PACKAGE_ROOT, folder))) {
    const from = relative(PACKAGE_ROOT, file)
    for (const to of imports(file)) {
      const why = rule(from, to)
      if (why !== null) out.push(`${from} -> ${to}: ${why}`)
    }
  }
  return out
}

t.test('lib/ imports only lib/', async (t) => {
  t.same(violations('lib', (_from, to) => to.startsWith('lib/') ? null : 'lib is dependency-free'), [])
})

t.test('plugins/ import lib/ and other plugins\' entry files only', async (t) => {
  t.same(violations('plugins', (from, to) => {
    if (to.startsWith('lib/') || to.startsWith('prisma/generated/')) return null
    if (!to.startsWith('plugins/')) return 'a plugin never imports the server, routes or the CLI'
    const own = from.split('/')[1]
    const [, plugin, ...rest] = to.split('/')
    if (plugin === own) return null
    return rest.join('/') === 'index.ts' ? null : `another plugin's inner file`
  }), [])
})

t.test('routes/ import lib/, their own files and plugin entry files', async (t) => {
  t.same(violations('routes', (_from, to) => {
    if (to.startsWith('lib/') || to.startsWith('routes/')) return null
    if (/^plugins\/[a-z-]+\/index\.ts$/.test(to)) return null
    return 'routes reach plugins through their entry files only'
  }), [])
})

t.test('client/ imports only client/', async (t) => {
  t.same(violations('client', (_from, to) => to.startsWith('client/') ? null : 'the client compiles alone for the browser'), [])
})
