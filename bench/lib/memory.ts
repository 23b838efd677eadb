// The two memory targets, computed from recorded samples (by the runner, and again by report.ts
// for a saved results file): server RSS at most 200 MiB, and RSS not growing over the soak.
export interface Target { name: string, hard: boolean, status: 'pass' | 'short' | 'n/a', detail: string }
export interface RssRow { id: string, state: string, rssStartMiB: number, rssEndMiB: number, rssLoadedMiB?: number }
export interface Soak { id: string, seconds: number, samplesMiB: number[] }

/** The target, in MiB as /proc reports it. */
export const RSS_LIMIT_MIB = 200
/** Allowed growth of the RSS floor over the soak. */
export const RSS_GROWTH_MIB = 10

/**
 * Growth of the low points. The heap of a garbage-collected server rises and falls (a sawtooth);
 * what must not rise is the level it falls back to. The lowest sample of the second half against
 * the lowest one between the first quarter (caches fill at first) and the middle.
 */
export function floorGrowth (samples: number[]): number {
  const quarter = Math.floor(samples.length / 4)
  const middle = Math.floor(samples.length / 2)
  if (samples.length < 4) return NaN
  const before = Math.min(...samples.slice(quarter, middle))
  const after = Math.min(...samples.slice(middle))
  return Math.round((after - before) * 10) / 10
}

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-')

export function memoryTargets (rows: RssRow[], soak: Soak | undefined, quick: boolean): Target[] {
  const targets: Target[] = []
  // Every RSS the runner saw: each scenario's at the start of its first measured window, the
  // largest at the start or end of any window (under load), after the last one, and each soak sample.
  const seen: Array<{ id: string, mib: number }> = []
  for (const r of rows) {
    if (r.state !== 'ok' || r.id === 'argon2-raw') continue
    for (const mib of [r.rssStartMiB, r.rssEndMiB, r.rssLoadedMiB ?? NaN]) if (Number.isFinite(mib)) seen.push({ id: r.id, mib })
  }
  for (const mib of soak?.samplesMiB ?? []) seen.push({ id: `${soak!.id} (soak)`, mib })
  const biggest = seen.reduce<{ id: string, mib: number } | undefined>((a, b) => (a === undefined || b.mib > a.mib ? b : a), undefined)
  targets.push(biggest === undefined
    ? { name: 'server RSS <= 200 MiB', hard: false, status: 'n/a', detail: 'nothing measured' }
    : { name: 'server RSS <= 200 MiB', hard: false, status: biggest.mib <= RSS_LIMIT_MIB ? 'pass' : 'short', detail: `largest ${fmt(biggest.mib)} MiB (${biggest.id}); the limit is ${fmt(RSS_LIMIT_MIB)} MiB` })
  if (soak === undefined) {
    targets.push({ name: 'RSS not growing over a 60 s run', hard: false, status: 'n/a', detail: quick ? 'not part of --quick' : 'gh-RS256-uniq did not run' })
  } else {
    const growth = floorGrowth(soak.samplesMiB)
    targets.push({
      name: `RSS not growing over a ${soak.seconds} s run`,
      hard: false,
      status: !Number.isFinite(growth) ? 'n/a' : growth <= RSS_GROWTH_MIB ? 'pass' : 'short',
      detail: `${soak.id}: ${soak.samplesMiB.join(' -> ')} MiB; lowest point ${Math.min(...soak.samplesMiB.slice(Math.floor(soak.samplesMiB.length / 2)))} MiB in the second half, growth of the lowest point ${growth} MiB (allowed ${RSS_GROWTH_MIB})`
    })
  }
  return targets
}
