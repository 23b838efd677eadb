// The scenarios of the suite. Each names its server (one process per scenario), how many
// connections load it, and which targets read it.
export type Alg = 'RS256' | 'ES256' | 'EdDSA'
export const ALGS: Alg[] = ['RS256', 'ES256', 'EdDSA']

export interface Scenario {
  id: string
  title: string
  /** A file under bench/servers, or a probe under bench/ run instead of a load job. */
  server: string
  args: string[]
  env?: Record<string, string>
  connections: number
  /** A raw-rate probe (no HTTP server): bench/<probe> is run in place of the load generator. */
  probe?: string
  /** p99 must stay under the hard floor (token validation at 100 connections). */
  hardFloor?: boolean
  /** Left out of --quick. */
  fullOnly?: boolean
  /** An "as deployed" scenario (rate limiting registered, the standalone server): its ratio is reported on its own. */
  deployed?: boolean
}

function redisEnv (): Record<string, string> {
  return { REDIS_URL: process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' }
}

export const HARD_FLOOR_P99_MS = 50
export const CONNECTIONS = 100
/** Login saturates at the argon2 rate long before 100 connections; more would only queue. */
export const LOGIN_CONNECTIONS = 16
/** Login against the raw argon2 verify rate (same parameters, same verifications in flight). */
export const LOGIN_RATIO = 0.85
/** Refresh rotation on PostgreSQL before the rotation work of issue 22 (req/s, full run). */
export const REFRESH_BEFORE_RPS = 184

export function scenarios (quick: boolean, poolSize: number): Scenario[] {
  const list: Scenario[] = [
    { id: 'bare', title: 'Fastify bare route', server: 'bare.ts', args: [], connections: CONNECTIONS }
  ]
  for (const alg of ALGS) {
    list.push({ id: `jwt-${alg}`, title: `@fastify/jwt ${alg}, repeated token`, server: 'fastify-jwt.ts', args: [alg, '0'], connections: CONNECTIONS })
  }
  for (const alg of ALGS) {
    list.push({ id: `gh-${alg}-rep`, title: `Gatehouse authenticate ${alg}, repeated token`, server: 'gatehouse.ts', args: ['token', alg, '0'], connections: CONNECTIONS, hardFloor: true })
    list.push({ id: `gh-${alg}-uniq`, title: `Gatehouse authenticate ${alg}, unique tokens`, server: 'gatehouse.ts', args: ['token', alg, String(poolSize)], connections: CONNECTIONS, hardFloor: true })
  }
  // The same with every signature checked on the JavaScript thread (signatureCheck: 'inline').
  list.push({ id: 'gh-RS256-uniq-inline', title: 'Gatehouse authenticate RS256, unique tokens, signatures inline', server: 'gatehouse.ts', args: ['token', 'RS256', String(poolSize), 'inline'], connections: CONNECTIONS, hardFloor: true, fullOnly: true })
  list.push(
    { id: 'gh-rbac', title: 'Gatehouse RS256 + requireRole', server: 'gatehouse.ts', args: ['rbac'], connections: CONNECTIONS },
    { id: 'gh-external', title: 'Gatehouse external issuer RS256, JWKS cached', server: 'gatehouse.ts', args: ['external'], connections: CONNECTIONS, hardFloor: true },
    { id: 'gh-external-uniq', title: 'Gatehouse external issuer RS256, unique tokens', server: 'gatehouse.ts', args: ['external', String(poolSize)], connections: CONNECTIONS },
    { id: 'gh-basic', title: 'Gatehouse HTTP Basic (verification cache)', server: 'gatehouse.ts', args: ['basic'], connections: CONNECTIONS },
    { id: 'gh-apikey', title: 'Gatehouse API key', server: 'gatehouse.ts', args: ['apikey'], connections: CONNECTIONS },
    { id: 'argon2-raw', title: 'raw @node-rs/argon2 verify (same parameters)', server: '', args: [], connections: LOGIN_CONNECTIONS, probe: 'probes/argon2.ts' },
    { id: 'gh-login', title: 'Gatehouse login (argon2id)', server: 'gatehouse.ts', args: ['login'], connections: LOGIN_CONNECTIONS },
    { id: 'gh-refresh-sqlite', title: 'Gatehouse refresh rotation, SQLite', server: 'gatehouse.ts', args: ['refresh', 'sqlite'], connections: CONNECTIONS },
    { id: 'gh-refresh-pg', title: 'Gatehouse refresh rotation, PostgreSQL', server: 'gatehouse.ts', args: ['refresh', 'postgresql'], connections: CONNECTIONS }
  )
  // As deployed: the protected route with gatehouse-rate-limit counting every request (in memory,
  // and in Redis as with REDIS_URL), and the standalone server's GET /auth/me on PostgreSQL + Redis.
  list.push(
    { id: 'gh-ratelimit-mem', title: 'Gatehouse RS256 + rate limit, counters in memory', server: 'gatehouse.ts', args: ['ratelimit', 'memory'], connections: CONNECTIONS, deployed: true },
    { id: 'gh-ratelimit-redis', title: 'Gatehouse RS256 + rate limit, counters in Redis', server: 'gatehouse.ts', args: ['ratelimit', 'redis'], env: redisEnv(), connections: CONNECTIONS, deployed: true },
    { id: 'server-me', title: 'standalone server GET /auth/me, PostgreSQL + Redis', server: 'standalone.ts', args: ['postgresql'], env: redisEnv(), connections: CONNECTIONS, deployed: true }
  )
  return quick ? list.filter((s) => s.fullOnly !== true) : list
}

/** Scenarios measured again at a fixed offered rate of half the bare maximum. */
export function fixedRateIds (quick: boolean): string[] {
  return quick ? ['bare', 'gh-RS256-rep'] : ['bare', 'gh-RS256-rep', 'gh-ES256-rep', 'gh-EdDSA-rep', 'gh-RS256-uniq']
}
