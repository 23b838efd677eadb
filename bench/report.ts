// Renders a results JSON (bench/results/<date>.json) as the Markdown tables of bench/README.md:
//   npx tsx bench/report.ts bench/results/<date>.json
import { readFileSync } from 'node:fs'
import { memoryTargets } from './lib/memory.ts'
import { scenarios } from './scenarios.ts'

const DEPLOYED = new Set(scenarios(false, 0).filter((s) => s.deployed === true).map((s) => s.id))

interface Row { id: string, title: string, state: string, rps: number, ratio: number, p50: number, p99: number, p99Worst: number, cpuUsPerReq: number, serverCores: number, loadgenCores: number, otherCores: number, rssStartMiB: number, rssEndMiB: number, rssLoadedMiB?: number, non2xx: number, errors: number, fixedP99?: number, fixedP50?: number, fixedRps?: number }
const data = JSON.parse(readFileSync(process.argv[2], 'utf8')) as {
  meta: Record<string, unknown> & { versions: Record<string, string> }
  bareRps: number
  fixedRate: number
  rows: Row[]
  targets: Array<{ name: string, hard: boolean, status: string, detail: string }>
  soak?: { id: string, seconds: number, samplesMiB: number[], growthMiB: number }
  cluster: { skipped?: string, rows?: Array<{ op: string, one: number, two: number, oneP99: number, twoP99: number }> }
}
const f = (x: number | undefined, d = 0): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d))
const out: string[] = []
const m = data.meta
out.push(`Run ${String(m.date)} (${String(m.mode)}): ${String(m.cpu)}, ${String(m.cores)} cores, ${String(m.memGiB)} GiB, Node ${String(m.node)}; ${String(m.rounds)} round(s) of ${String(m.durationSec)} s after ${String(m.warmupSec)} s warm-up; unique-token pools of ${String(m.poolSize)}; servers ${m.runtime === 'compiled' ? 'compiled (node)' : 'under tsx'}.`)
out.push('', `Versions: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`, '')
out.push('| scenario | req/s | x bare | p50 ms | p99 ms | server CPU us/req | server cores | load-gen cores | others\' cores | RSS MiB start -> end | RSS MiB under load | non-2xx |')
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const r of data.rows) {
  if (r.state !== 'ok') { out.push(`| ${r.id}: ${r.title} | ${r.state} |||||||||||`); continue }
  out.push(`| ${r.id}: ${r.title} | ${f(r.rps)} | ${f(r.ratio, 3)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.cpuUsPerReq, 1)} | ${f(r.serverCores, 2)} | ${f(r.loadgenCores, 2)} | ${f(r.otherCores, 2)} | ${f(r.rssStartMiB)} -> ${f(r.rssEndMiB)} | ${f(r.rssLoadedMiB ?? NaN)} | ${r.non2xx} |`)
}
const fixed = data.rows.filter((r) => r.fixedRps !== undefined)
if (fixed.length > 0) {
  out.push('', `Fixed offered rate ${data.fixedRate} req/s (half the bare maximum of ${f(data.bareRps)} req/s in this run), 100 connections:`, '')
  out.push('| scenario | served req/s | p50 ms | p99 ms |', '|---|---:|---:|---:|')
  for (const r of fixed) out.push(`| ${r.id} | ${f(r.fixedRps)} | ${f(r.fixedP50)} | ${f(r.fixedP99)} |`)
}
if (data.cluster.rows !== undefined) {
  out.push('', 'Two instances on PostgreSQL + Redis against one instance (same database, Redis and keys folder; two load generators at half the connections each):', '')
  out.push('| operation | one instance req/s | two instances req/s | x | p99 one -> two ms |', '|---|---:|---:|---:|---:|')
  for (const c of data.cluster.rows) out.push(`| ${c.op} | ${f(c.one)} | ${f(c.two)} | ${f(c.two / c.one, 2)} | ${f(c.oneP99)} -> ${f(c.twoP99)} |`)
} else out.push('', `Two instances on PostgreSQL + Redis: skipped (${data.cluster.skipped}).`)
const deployed = data.rows.filter((r) => DEPLOYED.has(r.id))
if (deployed.length > 0) {
  out.push('', 'As deployed (x bare in this run):', '', '| scenario | req/s | x bare | p99 ms |', '|---|---:|---:|---:|')
  for (const r of deployed) out.push(r.state === 'ok' ? `| ${r.id}: ${r.title} | ${f(r.rps)} | ${f(r.ratio, 3)} | ${f(r.p99)} |` : `| ${r.id}: ${r.title} | ${r.state} |||`)
}
if (data.soak !== undefined) out.push('', `RSS of ${data.soak.id} over a ${data.soak.seconds} s run, sampled every 5 s (MiB): ${data.soak.samplesMiB.join(', ')}.`)
out.push('', '| target | status | measured |', '|---|---|---|')
// The memory targets are computed again from the recorded samples with the current rules.
const memory = memoryTargets(data.rows, data.soak, data.meta.mode === 'quick')
const targets = [...data.targets.filter((t) => !t.name.startsWith('server RSS') && !t.name.startsWith('RSS not growing')), ...memory]
for (const t of targets) out.push(`| ${t.hard ? '**hard** ' : ''}${t.name} | ${t.status} | ${t.detail} |`)
process.stdout.write(out.join('\n') + '\n')
