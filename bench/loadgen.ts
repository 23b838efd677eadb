// The load generator: autocannon in its own process, so it never shares the server's event loop.
// Reads one JSON job from argv[2], warms up, prints {"event":"measure-start"}, measures, prints
// {"event":"result", ...}. Unique credentials rotate round robin through a pool file, from
// `poolStart` on and through the warm-up and the measured window without starting over (the
// result's `poolNext` is where the next job of the scenario goes on), so that no credential comes
// back before the whole pool has been sent; refresh
// rotation takes a refresh token from a queue that each response refills with the rotated one.
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'
import type { LoadSpec } from './lib/server-kit.ts'

export interface LoadJob {
  url: string
  load: LoadSpec
  connections: number
  warmupSec: number
  durationSec: number
  /** Fixed offered rate in requests per second over all connections (autocannon overallRate). */
  overallRate?: number
  /** Where the pool rotation starts (the `poolNext` of the scenario's previous job). */
  poolStart?: number
}

export interface LoadResult {
  durationSec: number
  requests: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  /** 2xx responses per second over the measured window. */
  rps: number
  latency: { p50: number, p90: number, p99: number, max: number, mean: number }
  statusCodes: Record<string, number>
  /** Where the pool rotation stopped: the next job's `poolStart`. */
  poolNext?: number
}

const job = JSON.parse(process.argv[2]) as LoadJob

async function fetchFamilies (count: number): Promise<string[]> {
  const res = await fetch(job.url + job.load.refresh!.familiesPath, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ count })
  })
  if (res.status !== 200) throw new Error(`refresh families: HTTP ${res.status}`)
  return ((await res.json()) as { refreshTokens: string[] }).refreshTokens
}

/** The pool's rotation, shared by the warm-up and the measured run. */
let pool: string[] | undefined
let next = 0

async function requestsFor (): Promise<autocannon.Request[]> {
  const { load } = job
  const base: autocannon.Request = { method: load.method ?? 'GET', path: load.path, headers: { ...load.headers } }
  if (load.body !== undefined) {
    base.body = load.body
    base.headers = { 'content-type': 'application/json', ...base.headers }
  }
  if (load.poolFile !== undefined) {
    if (pool === undefined) {
      pool = readFileSync(load.poolFile, 'utf8').split('\n').filter((l) => l !== '')
      next = (job.poolStart ?? 0) % pool.length
    }
    const values = pool
    const header = load.poolHeader ?? 'authorization'
    return [{
      ...base,
      setupRequest: (req) => {
        const value = values[next]
        next = (next + 1) % values.length
        return { ...req, headers: { ...req.headers, [header]: value } }
      }
    }]
  }
  if (load.refresh !== undefined) {
    // Spare families so a failed rotation (its chain ends) does not starve a connection.
    const queue = await fetchFamilies(job.connections * 3)
    return [{
      ...base,
      method: 'POST',
      headers: { ...base.headers, 'content-type': 'application/json' },
      setupRequest: (req) => {
        const token = queue.shift()
        if (token === undefined) return req
        return { ...req, body: JSON.stringify({ refresh_token: token }) }
      },
      onResponse: (status, body) => {
        if (status === 200) queue.push((JSON.parse(body) as { refresh_token: string }).refresh_token)
      }
    }]
  }
  return [base]
}

function run (durationSec: number, requests: autocannon.Request[]): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const options: autocannon.Options = {
      url: job.url,
      connections: job.connections,
      duration: durationSec,
      requests,
      timeout: 10
    }
    if (job.overallRate !== undefined) options.overallRate = job.overallRate
    const instance = autocannon(options, (err, result) => (err ? reject(err) : resolve(result)))
    instance.on('error', reject)
  })
}

if (job.warmupSec > 0) await run(job.warmupSec, await requestsFor())
const requests = await requestsFor()
process.stdout.write(JSON.stringify({ event: 'measure-start' }) + '\n')
const r = await run(job.durationSec, requests)
const durationSec = r.duration
const ok = r['2xx']
const statusCodes: Record<string, number> = {}
for (const [code, stat] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = (stat as { count: number }).count
const result: LoadResult = {
  durationSec,
  requests: r.requests.total,
  ok,
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  rps: ok / durationSec,
  latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.mean },
  statusCodes,
  ...(pool !== undefined ? { poolNext: next } : {})
}
process.stdout.write(JSON.stringify({ event: 'result', ...result }) + '\n')
