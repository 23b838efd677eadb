import { spawn } from 'node:child_process'
import autocannon from 'autocannon'
async function run (mode: string, path: string) {
  const child = spawn(process.execPath, ['--import=tsx', 'test/rate-limit/_server.mts', mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve) => child.stdout.on('data', (d) => resolve(JSON.parse(d.toString()).port)))
  await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections: 20, duration: 2 })
  const r = await autocannon({ url: `http://127.0.0.1:${port}${path}`, connections: 20, duration: 6 })
  child.kill()
  return { rps: r.requests.average, p99: r.latency.p99, non2xx: r.non2xx }
}
const results: Record<string, number[]> = {}
for (let round = 0; round < 2; round++) {
  for (const mode of ['bare', 'upstream', 'memory', 'redis']) {
    const r = await run(mode, '/x')
    ;(results[mode] ??= []).push(r.rps)
    console.log(round, mode, JSON.stringify(r))
  }
}
const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length
for (const m of ['upstream', 'memory', 'redis']) console.log(m, 'ratio to bare', (avg(results[m]) / avg(results.bare)).toFixed(3))
