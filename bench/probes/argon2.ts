// The raw @node-rs/argon2 verify rate with the login server's parameters and the same number of
// verifications in flight as the login scenario has connections: the ceiling login is read against.
// Speaks the load generator's protocol (measure-start, then result) so the runner treats it alike.
import { hash, verify } from '@node-rs/argon2'

const job = JSON.parse(process.argv[2]) as { connections: number, warmupSec: number, durationSec: number, params: { memoryCost: number, timeCost: number, parallelism: number } | null }
const params = job.params ?? { memoryCost: 19_456, timeCost: 2, parallelism: 1 }
const password = 'bench-correct-horse-battery-staple'
const encoded = await hash(password, { ...params, algorithm: 2 })

async function run (seconds: number): Promise<{ count: number, latencies: number[], elapsed: number }> {
  const end = performance.now() + seconds * 1000
  const latencies: number[] = []
  let count = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: job.connections }, async () => {
    while (performance.now() < end) {
      const t = performance.now()
      if (!(await verify(encoded, password))) throw new Error('argon2 verify returned false')
      latencies.push(performance.now() - t)
      count++
    }
  }))
  return { count, latencies, elapsed: (performance.now() - start) / 1000 }
}

if (job.warmupSec > 0) await run(job.warmupSec)
process.stdout.write(JSON.stringify({ event: 'measure-start' }) + '\n')
const { count, latencies, elapsed } = await run(job.durationSec)
latencies.sort((a, b) => a - b)
const q = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN)
process.stdout.write(JSON.stringify({
  event: 'result',
  durationSec: elapsed,
  requests: count,
  ok: count,
  non2xx: 0,
  errors: 0,
  timeouts: 0,
  rps: count / elapsed,
  latency: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1), mean: Math.round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)) },
  statusCodes: { 200: count },
  params
}) + '\n')
