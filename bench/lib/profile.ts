// A short reading of a V8 .cpuprofile (node --cpu-prof): the functions with the most self time,
// as "self% function (file:line)", so a finding can name its hot spots.
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
}

export function summarizeProfile (file: string, top = 15): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[], samples?: number[] }
  const hits = new Map<number, number>()
  for (const id of profile.samples ?? []) hits.set(id, (hits.get(id) ?? 0) + 1)
  const self = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const n = hits.get(node.id) ?? node.hitCount ?? 0
    if (n === 0) continue
    total += n
    const { functionName, url, lineNumber } = node.callFrame
    const where = url === '' ? '' : ` (${url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, 'node_modules/').replace(/^.*\/work\/main\//, '')}:${lineNumber + 1})`
    const key = `${functionName || '(anonymous)'}${where}`
    self.set(key, (self.get(key) ?? 0) + n)
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, n]) => `${((100 * n) / Math.max(1, total)).toFixed(1).padStart(5)}% ${key}`)
}

if (process.argv[1]?.endsWith('profile.ts') === true) {
  for (const file of process.argv.slice(2)) {
    process.stdout.write(`${file}\n${summarizeProfile(file, 25).map((l) => '  ' + l).join('\n')}\n`)
  }
}
