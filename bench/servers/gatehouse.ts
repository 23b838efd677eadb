// Scenarios 2 and 4-8 and the two-instance scenario: the Gatehouse plugins registered alone in a
// small app (store, redis, audit, credentials, tokens, sessions, trusted-issuers, authenticate,
// rbac; no rate limiting, no request logging, like the bare route), on a fresh database.
//
//   gatehouse.ts token <alg> <pool> [inline]
//                                     GET /protected, one repeated token (pool 0) or <pool> distinct tokens;
//                                     `inline` checks signatures on the JavaScript thread (signatureCheck)
//   gatehouse.ts rbac                 GET /admin-ish route: authenticate + requireRole('user')
//   gatehouse.ts external [pool]      a token of an allowlisted issuer whose JWKS is served on port 0
//                                     (one repeated token, or <pool> distinct tokens of that issuer)
//   gatehouse.ts ratelimit <store>    GET /protected, one repeated token, with gatehouse-rate-limit registered
//                                     as the standalone server does (memory | redis: counters in REDIS_URL)
//   gatehouse.ts basic | apikey       GET /protected with HTTP Basic / ApiKey
//   gatehouse.ts login [concurrency]  POST /login {email, password}: credentials.login + sessions.start
//                                     (hashConcurrency: the default, or the number given)
//   gatehouse.ts refresh <provider>   POST /refresh {refresh_token}: sessions.refresh (sqlite | postgresql)
//   gatehouse.ts cluster              verify, login and refresh on DATABASE_URL/REDIS_URL/AUTH_KEYS_DIR from env
import { createServer } from 'node:http'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { Worker } from 'node:worker_threads'
import { announce, dropRedisKeys, redisUnreachable, skip, tamperJwt, writePool, type Announcement, type LoadSpec } from '../lib/server-kit.ts'

const [mode = 'token', arg1, arg2, arg3] = process.argv.slice(2)
const alg = (mode === 'token' ? arg1 ?? 'RS256' : 'RS256') as 'RS256' | 'ES256' | 'EdDSA'
const poolSize = mode === 'token' ? Number(arg2 ?? 0) : mode === 'external' ? Number(arg1 ?? 0) : 0
const rateLimitStore = mode === 'ratelimit' ? (arg1 ?? 'memory') : undefined
const provider = mode === 'refresh' ? (arg1 ?? 'sqlite') : process.env.DATABASE_URL?.startsWith('postgres') === true ? 'postgresql' : 'sqlite'
const ISSUER = 'http://127.0.0.1:3000'
/** The external pool's signer (a worker thread): the tokens fast-jwt's signer makes (iss, aud, iat, exp), one per line. */
const POOL_SIGNER = `
const { parentPort, workerData } = require('node:worker_threads')
const { sign, randomUUID } = require('node:crypto')
const { writeFileSync } = require('node:fs')
const { key, kid, issuer, audience, users, count, file } = workerData
const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid })).toString('base64url')
const one = (i) => new Promise((resolve, reject) => {
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: 'external-user-' + (i % users), roles: ['user'], jti: randomUUID(), iat: now, exp: now + 86400, iss: issuer, aud: audience }
  const input = header + '.' + Buffer.from(JSON.stringify(claims)).toString('base64url')
  sign('sha256', Buffer.from(input), key, (err, sig) => err ? reject(err) : resolve('Bearer ' + input + '.' + sig.toString('base64url')))
})
const out = new Array(count)
let next = 0
Promise.all(Array.from({ length: 64 }, async () => { for (let i = next++; i < count; i = next++) out[i] = await one(i) }))
  .then(() => { writeFileSync(file, out.join('\\n') + '\\n'); parentPort.postMessage('done') })
`
const PASSWORD = 'bench-correct-horse-battery-staple'
const USERS = 20

async function load<T> (path: string): Promise<T> {
  try {
    return await import(path) as T
  } catch (err) {
    skip(`${path} could not be loaded (${(err as Error).message.split('\n')[0]})`)
  }
}

type Mod = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const [{ errorHandler }, { store }, { redis }, { audit }, { migrate }, { credentials }, { tokens }, { sessions }, { trustedIssuers }, { authenticate }, { rbac }, { rateLimit }] = await Promise.all([
  load<Mod>('../../lib/error-handler.ts'),
  load<Mod>('../../plugins/store/index.ts'),
  load<Mod>('../../plugins/redis/index.ts'),
  load<Mod>('../../plugins/audit/index.ts'),
  load<Mod>('../../plugins/store/migrate.ts'),
  load<Mod>('../../plugins/credentials/index.ts'),
  load<Mod>('../../plugins/tokens/index.ts'),
  load<Mod>('../../plugins/sessions/index.ts'),
  load<Mod>('../../plugins/trusted-issuers/index.ts'),
  load<Mod>('../../plugins/authenticate/index.ts'),
  load<Mod>('../../plugins/rbac/index.ts'),
  load<Mod>('../../plugins/rate-limit/index.ts')
])

// ---- database and keys ------------------------------------------------------------------------
const cleanups: Array<() => Promise<void>> = []
let databaseUrl = process.env.DATABASE_URL
if (databaseUrl === undefined) {
  if (provider === 'postgresql') {
    const { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } = await load<Mod>('../../test/helpers/databases.ts')
    if (await postgresAdminUrl() === null) skip(PG_SKIP_REASON)
    const db = await createTestDatabase('postgresql')
    databaseUrl = db.url
    cleanups.push(db.drop)
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-db-'))
    databaseUrl = `file:${join(dir, 'bench.db')}`
    await migrate(databaseUrl)
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
  }
}
let keysDir = process.env.AUTH_KEYS_DIR
if (keysDir === undefined) {
  keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-keys-'))
  const dir = keysDir
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
}

// ---- Redis for the rate-limit counters (mode ratelimit redis) ---------------------------------------
let redisUrl = process.env.REDIS_URL
// Counters of this run only, removed at the end (other processes may share the Redis).
const rateLimitPrefix = `gatehouse-bench:${process.pid}:${randomUUID().slice(0, 8)}:`
if (rateLimitStore === 'redis') {
  redisUrl ??= 'redis://127.0.0.1:6379'
  const reason = await redisUnreachable(redisUrl)
  if (reason !== null) skip(reason)
  const url = redisUrl
  cleanups.push(async () => { await dropRedisKeys(url, rateLimitPrefix) })
} else if (rateLimitStore !== undefined && rateLimitStore !== 'memory') {
  skip(`unknown rate-limit store ${rateLimitStore} (memory | redis)`)
}

// ---- an external issuer with a JWKS on port 0 (mode external) ---------------------------------
let external: { issuer: string, sign: (claims: Record<string, unknown>) => string, signPool: (count: number, file: string) => Promise<void>, close: () => void } | undefined
if (mode === 'external') {
  const { createSigner } = await import('fast-jwt')
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const kid = randomUUID()
  const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }
  const jwks = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
  const port = (jwks.address() as { port: number }).port
  const issuer = `http://127.0.0.1:${port}`
  const signer = createSigner({ key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), algorithm: 'RS256', kid, iss: issuer, aud: 'bench-api', expiresIn: 86_400_000 })
  // Many distinct tokens, signed in a worker thread, 64 at a time on the thread pool, and written
  // to the pool file there: one by one on this thread, 24,000 RSA signatures would add half a
  // minute to every run's start; here, their strings and buffers stayed in this server's heap
  // (about 80 MiB of RSS before the measurement began). The worker's heap goes with it.
  const signPool = async (count: number, file: string): Promise<void> => {
    const worker = new Worker(POOL_SIGNER, { eval: true, workerData: { key: pair.privateKey, kid, issuer, audience: 'bench-api', users: USERS, count, file } })
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve())
      worker.once('error', reject)
      worker.once('exit', (code) => { if (code !== 0) reject(new Error(`pool signer exited with ${code}`)) })
    })
    await worker.terminate()
  }
  external = { issuer, sign: (claims) => signer(claims), signPool, close: () => jwks.close() }
}

// ---- the app --------------------------------------------------------------------------------
const app: FastifyInstance = Fastify({ logger: false })
app.setErrorHandler(errorHandler)
await app.register(store, { databaseUrl })
await app.register(redis, { url: redisUrl })
await app.register(audit)
if (rateLimitStore !== undefined) {
  // As the standalone server registers it (after redis and audit, before the credentials), with the
  // default class raised so one load generator's address is never refused: what is measured is the
  // counting of every request, not the 429s.
  await app.register(rateLimit, { prefix: rateLimitPrefix, classes: { default: { max: 1_000_000_000 } } })
}
await app.register(credentials, mode === 'login' && arg1 !== undefined ? { hashConcurrency: Number(arg1) } : {})
// Tokens signed at start must outlive a full run (about 30 min): a day instead of the 15 min default.
await app.register(tokens, { issuer: ISSUER, keysDir, signingAlgorithm: alg, accessTokenTtl: 86_400, ...(mode === 'token' && arg3 === 'inline' ? { signatureCheck: 'inline' } : {}) })
await app.register(sessions, {})
await app.register(trustedIssuers, {
  issuers: external === undefined ? [] : [{ issuer: external.issuer, jwksUri: `${external.issuer}/jwks`, audiences: ['bench-api'], algorithms: ['RS256'] }]
})
await app.register(authenticate)
await app.register(rbac, {})

app.get('/protected', { onRequest: app.authenticate }, async (request) => ({ ok: true, sub: request.user!.sub }))
app.get('/rbac', { onRequest: app.authenticate, preHandler: app.requireRole('user') }, async (request) => ({ ok: true, sub: request.user!.sub }))
app.post('/login', async (request) => {
  const { email, password } = request.body as { email: string, password: string }
  const user = await app.credentials.login(email, password, request)
  return await app.sessions.start({ id: user.id, roles: JSON.parse(user.roles) as string[], tokenVersion: user.tokenVersion }, { request })
})
app.post('/refresh', async (request) => {
  const { refresh_token: token } = request.body as { refresh_token: string }
  return await app.sessions.refresh(token, { request })
})
// Bench-only: fresh refresh families for the load generator's rotation chains (not measured).
app.post('/__bench/families', async (request) => {
  const { count } = request.body as { count: number }
  const refreshTokens: string[] = []
  for (let i = 0; i < Math.min(count, 2000); i++) refreshTokens.push((await app.sessions.start(users[0], {})).refresh_token)
  return { refreshTokens }
})
// Bench-only: how many tokens the verified-token caches hold (unique-token scenarios must leave them empty).
app.get('/__bench/stats', async () => ({ verifiedCacheSize: app.tokens.stats().verifiedCacheSize + app.trustedIssuers.stats().verifiedCacheSize }))
await app.ready()

// ---- users and credentials --------------------------------------------------------------------
const prisma = app.store.prisma
const passwordHash = await app.credentials.hashPassword(PASSWORD)
const users: Array<{ id: string, email: string, roles: string[], tokenVersion: number }> = []
for (let i = 0; i < (mode === 'token' ? USERS : 1); i++) {
  const email = `bench${i}@example.com`
  const row = await prisma.user.upsert({ where: { email }, update: {}, create: { email, passwordHash, roles: '["user"]' } })
  users.push({ id: row.id, email, roles: JSON.parse(row.roles), tokenVersion: row.tokenVersion })
}
const user = users[0]
const sessionsOf = await Promise.all(users.map((u) => app.sessions.start(u, {})))
const sidOf = (accessToken: string): string => (JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()) as { sid: string }).sid


const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` })
/** The pool written to a temporary file, removed when the server stops. */
const poolFile = (pool: string[]): string => {
  const file = writePool(pool)
  cleanups.push(async () => rmSync(dirname(file), { recursive: true, force: true }))
  return file
}
const basic = (email: string, pw: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${email}:${pw}`).toString('base64')}` })
const tamperTail = (s: string): string => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A')
const argon2 = /\$argon2id\$v=\d+\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(passwordHash)
const argon2Params = argon2 === null ? null : { memoryCost: Number(argon2[1]), timeCost: Number(argon2[2]), parallelism: Number(argon2[3]) }

let announcement: Announcement
const token = sessionsOf[0].access_token
if (mode === 'token') {
  let load: LoadSpec = { path: '/protected', headers: bearer(token) }
  if (poolSize > 0) {
    const pool: string[] = []
    for (let i = 0; i < poolSize; i++) {
      const u = users[i % users.length]
      pool.push(`Bearer ${(await app.tokens.sign(u, { sid: sidOf(sessionsOf[i % users.length].access_token) })).access_token}`)
    }
    load = { path: '/protected', poolFile: poolFile(pool), poolHeader: 'authorization' }
  }
  announcement = { good: { path: '/protected', headers: bearer(token) }, bad: { path: '/protected', headers: bearer(tamperJwt(token)) }, load, meta: { alg, poolSize, users: users.length, verifiedCacheSize: app.tokens.stats().verifiedCacheSize } }
} else if (mode === 'rbac') {
  announcement = { good: { path: '/rbac', headers: bearer(token) }, bad: { path: '/rbac', headers: bearer(tamperJwt(token)) }, load: { path: '/rbac', headers: bearer(token) }, meta: { alg, role: 'user' } }
} else if (mode === 'ratelimit') {
  announcement = { good: { path: '/protected', headers: bearer(token) }, bad: { path: '/protected', headers: bearer(tamperJwt(token)) }, load: { path: '/protected', headers: bearer(token) }, meta: { alg, rateLimitStore, redis: rateLimitStore === 'redis' } }
} else if (mode === 'external') {
  const ext = external!.sign({ sub: 'external-user', roles: ['user'] })
  let load: LoadSpec = { path: '/protected', headers: bearer(ext) }
  if (poolSize > 0) {
    // Distinct tokens (sub and jti differ), more than any verified-token cache holds.
    // An empty pool file (removed when the server stops), which the signer fills.
    const file = poolFile([])
    await external!.signPool(poolSize, file)
    load = { path: '/protected', poolFile: file, poolHeader: 'authorization' }
  }
  announcement = { good: { path: '/protected', headers: bearer(ext) }, bad: { path: '/protected', headers: bearer(tamperJwt(ext)) }, load, meta: { alg: 'RS256', issuer: external!.issuer, poolSize } }
} else if (mode === 'basic') {
  announcement = { good: { path: '/protected', headers: basic(user.email, PASSWORD) }, bad: { path: '/protected', headers: basic(user.email, PASSWORD + 'x') }, load: { path: '/protected', headers: basic(user.email, PASSWORD) }, meta: { argon2: argon2Params } }
} else if (mode === 'apikey') {
  const { key } = await app.credentials.createApiKey(user.id, 'bench')
  const h = (k: string): Record<string, string> => ({ authorization: `ApiKey ${k}` })
  announcement = { good: { path: '/protected', headers: h(key) }, bad: { path: '/protected', headers: h(tamperTail(key)) }, load: { path: '/protected', headers: h(key) } }
} else if (mode === 'login') {
  const body = (pw: string): string => JSON.stringify({ email: user.email, password: pw })
  announcement = { good: { method: 'POST', path: '/login', body: body(PASSWORD) }, bad: { method: 'POST', path: '/login', body: body(PASSWORD + 'x') }, load: { method: 'POST', path: '/login', body: body(PASSWORD) }, meta: { argon2: argon2Params } }
} else if (mode === 'refresh' || mode === 'cluster') {
  const fresh = (await app.sessions.start(user, {})).refresh_token
  const refreshLoad: LoadSpec = { method: 'POST', path: '/refresh', refresh: { familiesPath: '/__bench/families' } }
  announcement = {
    good: { method: 'POST', path: '/refresh', body: JSON.stringify({ refresh_token: fresh }) },
    bad: { method: 'POST', path: '/refresh', body: JSON.stringify({ refresh_token: tamperTail(sessionsOf[0].refresh_token) }) },
    load: refreshLoad,
    meta: {
      provider,
      argon2: argon2Params,
      loads: {
        verify: { path: '/protected', headers: bearer(token) },
        login: { method: 'POST', path: '/login', body: JSON.stringify({ email: user.email, password: PASSWORD }) },
        refresh: refreshLoad
      }
    }
  }
} else {
  skip(`unknown mode ${mode}`)
}

await announce(app, announcement, async () => {
  external?.close()
  for (const c of cleanups) await c()
})
