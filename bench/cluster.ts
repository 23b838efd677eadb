// Two Gatehouse processes sharing one PostgreSQL database, one Redis and one keys folder, measured
// against one of them alone: verify, login and refresh throughput. Two load generators run at
// once (half the connections each), one per instance, as a load balancer would spread them.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runLoad, startServer, type Measured, type ServerHandle } from './lib/children.ts'
import { CONNECTIONS, LOGIN_CONNECTIONS } from './scenarios.ts'
import type { LoadSpec } from './lib/server-kit.ts'

export interface ClusterRow { op: string, one: number, two: number, oneP99: number, twoP99: number, runs: { one: Measured[], two: Measured[][] } }
export type ClusterOutcome = { skipped: string } | { rows: ClusterRow[], redisUrl: string }

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

export async function runCluster (o: { warmupSec: number, durationSec: number, rounds: number, cores: number, log: (l: string) => void }): Promise<ClusterOutcome> {
  const { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } = await import('../test/helpers/databases.ts')
  if (await postgresAdminUrl() === null) return { skipped: PG_SKIP_REASON }
  const redisUrl = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const { Redis } = await import('ioredis')
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await probe.connect()
    await probe.ping()
  } catch (err) {
    return { skipped: `Redis at ${redisUrl} is not reachable (${(err as Error).message})` }
  } finally {
    probe.disconnect()
  }
  const db = await createTestDatabase('postgresql')
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-cluster-keys-'))
  const env = { DATABASE_URL: db.url, REDIS_URL: redisUrl, AUTH_KEYS_DIR: keysDir }
  const servers: ServerHandle[] = []
  try {
    // One after the other: the first generates the signing key, the second loads it.
    for (let i = 0; i < 2; i++) {
      const started = await startServer('gatehouse.ts', ['cluster'], { env })
      if (!started.ok) return { skipped: `instance ${i + 1} did not start: ${started.reason.split('\n')[0]}` }
      servers.push(started.server)
    }
    const loads = servers[0].announcement.meta!.loads as Record<string, LoadSpec>
    const rows: ClusterRow[] = []
    for (const op of ['verify', 'login', 'refresh']) {
      const connections = op === 'login' ? LOGIN_CONNECTIONS : CONNECTIONS
      const one: Measured[] = []
      const two: Measured[][] = []
      for (let round = 1; round <= o.rounds; round++) {
        one.push(await runLoad({ url: servers[0].url, load: loads[op], connections, warmupSec: o.warmupSec, durationSec: o.durationSec }, [servers[0].pid], o.cores))
        two.push(await Promise.all(servers.map((s) => runLoad({ url: s.url, load: loads[op], connections: connections / 2, warmupSec: o.warmupSec, durationSec: o.durationSec }, [s.pid], o.cores))))
        o.log(`  cluster ${op} round ${round}: one ${Math.round(one[one.length - 1].rps)} req/s, two ${two[two.length - 1].map((m) => Math.round(m.rps)).join(' + ')} req/s`)
      }
      rows.push({
        op,
        one: median(one.map((m) => m.rps)),
        two: median(two.map((pair) => pair[0].rps + pair[1].rps)),
        oneP99: median(one.map((m) => m.latency.p99)),
        twoP99: median(two.map((pair) => Math.max(pair[0].latency.p99, pair[1].latency.p99))),
        runs: { one, two }
      })
    }
    return { rows, redisUrl }
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
    await db.drop()
    rmSync(keysDir, { recursive: true, force: true })
  }
}
