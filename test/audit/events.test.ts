// One list of event types: every value of AUDIT_EVENTS is documented in docs/audit.md, the
// table documents nothing else, and the server's own code records only listed types.
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { AUDIT_EVENTS } from '../../plugins/audit/index.ts'
import { PACKAGE_ROOT } from '../../lib/paths.ts'

const types = new Set<string>(Object.values(AUDIT_EVENTS))

t.test('docs/audit.md lists exactly the AUDIT_EVENTS types', async (t) => {
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'audit.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## Event types'))
  const documented = new Set<string>()
  for (const line of section.split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1]
    if (first === undefined || first === 'type' || /^-+$/.test(first)) continue
    for (const m of first.matchAll(/`([a-z_]+)`/g)) documented.add(m[1])
  }
  t.same([...documented].sort(), [...types].sort())
})

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : []
  })
}

t.test('the code records event types through AUDIT_EVENTS, never as string literals', async (t) => {
  const offenders: string[] = []
  for (const dir of ['plugins', 'routes', 'server', 'cli']) {
    for (const file of sources(join(PACKAGE_ROOT, dir))) {
      const text = readFileSync(file, 'utf8')
      for (const m of text.matchAll(/(?:record\(\{\s*type|auditChange\(request|changed\(request|auditKeyEvent\(config)[:,]\s*'([a-z_]+)'/g)) {
        offenders.push(`${file.slice(PACKAGE_ROOT.length + 1)}: '${m[1]}'`)
      }
    }
  }
  t.same(offenders, [])
})
