// A short reading of a V8 .cpuprofile (node --cpu-prof): the functions with the most self time,
// as "self% function (file:line)", so a finding can name its hot spots. Given the measured
// windows (CLOCK_MONOTONIC microseconds, the clock of V8's profile timestamps and of
// process.hrtime), only the samples taken under load count: start-up and pool generation drop out.
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  samples?: number[]
  timeDeltas?: number[]
}

/** [startUs, endUs] on the monotonic clock. */
export type ProfileWindow = [number, number]

export interface ProfileSummary {
  /** Samples counted (inside the windows, when given). */
  samples: number
  /** Functions by self time, idle and GC included, as "pct function (file:line)". */
  self: string[]
  /** Project functions (outside node_modules and node:) by inclusive time: what each costs with its callees. */
  inclusive: string[]
}

function label (node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame
  const where = url === '' ? '' : ` (${url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, 'node_modules/').replace(/^.*\/(plugins|lib|routes|bench)\//, '$1/')}:${lineNumber + 1})`
  return `${functionName || '(anonymous)'}${where}`
}

function isProjectCode (node: ProfileNode): boolean {
  const url = node.callFrame.url
  return url.startsWith('file://') && !url.includes('/node_modules/')
}

const pct = (n: number, total: number): string => ((100 * n) / Math.max(1, total)).toFixed(1).padStart(5) + '%'

export function summarizeProfile (file: string, top = 15, windows?: ProfileWindow[]): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

  const hits = new Map<number, number>()
  const samples = profile.samples ?? []
  let at = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    at += profile.timeDeltas?.[i] ?? 0
    if (windows !== undefined && !windows.some(([from, to]) => at >= from && at <= to)) continue
    hits.set(samples[i], (hits.get(samples[i]) ?? 0) + 1)
  }
  if (samples.length === 0) for (const node of profile.nodes) if ((node.hitCount ?? 0) > 0) hits.set(node.id, node.hitCount!)

  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let total = 0
  for (const [id, n] of hits) {
    const node = byId.get(id)
    if (node === undefined) continue
    total += n
    const key = label(node)
    self.set(key, (self.get(key) ?? 0) + n)
    // Each project function on the stack once, however deep it recurses.
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!
      if (!isProjectCode(frame)) continue
      const k = label(frame)
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + n)
    }
  }
  const ranked = (m: Map<string, number>): string[] => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, n]) => `${pct(n, total)} ${k}`)
  return { samples: total, self: ranked(self), inclusive: ranked(inclusive) }
}

if (process.argv[1]?.endsWith('profile.ts') === true) {
  for (const file of process.argv.slice(2)) {
    const s = summarizeProfile(file, 25)
    process.stdout.write(`${file} (${s.samples} samples)\nself:\n${s.self.map((l) => '  ' + l).join('\n')}\ninclusive (project code):\n${s.inclusive.map((l) => '  ' + l).join('\n')}\n`)
  }
}
