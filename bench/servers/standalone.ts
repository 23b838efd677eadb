// The standalone server as deployed: buildApp(loadConfig(env)) with every plugin and route group
// (rate limiting, CORS, browser sessions, OpenAPI, ...), on PostgreSQL with REDIS_URL, loaded on
// GET /auth/me with one repeated access token: authenticate, the rate-limit count in Redis, the
// user's row and its second factors read from the database.
//
//   standalone.ts [postgresql | sqlite]
//
// Two differences from a production start, both so the load generator measures the server and
// not itself: LOG_LEVEL=warn (no two log lines per request piped to the runner) and the `default`
// rate-limit class raised (one load generator's address would be refused after 1,000 requests).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { announce, dropRedisKeys, redisUnreachable, skip, tamperJwt } from '../lib/server-kit.ts'

const provider = (process.argv[2] ?? 'postgresql') as 'postgresql' | 'sqlite'
const { buildApp } = await import('../../server/app.ts')
const { loadConfig } = await import('../../server/config.ts')
const { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } = await import('../../test/helpers/databases.ts')

if (provider === 'postgresql' && await postgresAdminUrl() === null) skip(PG_SKIP_REASON)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const unreachable = await redisUnreachable(redisUrl)
if (unreachable !== null) skip(unreachable)

const db = await createTestDatabase(provider)
const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-standalone-'))
const prefix = `gatehouse-bench:${process.pid}:${randomUUID().slice(0, 8)}:`
const config = loadConfig({
  PORT: '0',
  HOST: '127.0.0.1',
  DATABASE_URL: db.url,
  REDIS_URL: redisUrl,
  AUTH_ISSUER: 'http://127.0.0.1:3000',
  AUTH_KEYS_DIR: keysDir,
  MAIL_OUTBOX_DIR: join(keysDir, 'outbox'),
  // Tokens signed at start must outlive a full run.
  ACCESS_TOKEN_TTL: '86400',
  LOG_LEVEL: 'warn'
})
const app = await buildApp(config, { rateLimit: { prefix, classes: { default: { max: 1_000_000_000 } } } })
await app.ready()

const user = await app.store.prisma.user.create({ data: { email: 'bench-me@example.com', passwordHash: await app.credentials.hashPassword('bench-correct-horse-battery-staple'), roles: '["user"]', emailVerifiedAt: new Date() } })
const { access_token: token } = await app.sessions.start({ id: user.id, roles: ['user'], tokenVersion: user.tokenVersion }, {})
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` })

await announce(app, {
  good: { path: '/auth/me', headers: bearer(token) },
  bad: { path: '/auth/me', headers: bearer(tamperJwt(token)) },
  load: { path: '/auth/me', headers: bearer(token) },
  meta: { provider, redis: true, route: 'GET /auth/me', logLevel: 'warn', signingAlgorithm: config.signingAlgorithm }
}, async () => {
  await dropRedisKeys(redisUrl, prefix).catch(() => {})
  await db.drop()
  rmSync(keysDir, { recursive: true, force: true })
})
