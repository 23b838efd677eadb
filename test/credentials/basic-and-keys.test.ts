// HTTP Basic verification with its cache, and API keys, through fastify.credentials.
import t from 'tap'
import { createHash } from 'node:crypto'
import { providers, createTestDatabase } from '../helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON } from '../helpers/redis.ts'
import { buildCredentials, codeOf, dumpRows, switchableBus } from './helpers.ts'

const PASSWORD = 'violet tractor evening 42'
const NEW_PASSWORD = 'amber orchard whistle 19'
const OTHER_PASSWORD = 'silent harbour lantern 77'

for (const { provider, skip } of await providers()) {
  t.test(`basic and API keys on ${provider}`, { skip }, async (t) => {
    t.test('Basic: the cache saves argon2 work; without it every request verifies', async (t) => {
      const cached = (await buildCredentials(t, provider)).app
      const user = await cached.credentials.register({ email: 'basic@example.com', password: PASSWORD })
      const start = cached.credentials.stats().argon2Operations
      for (let i = 0; i < 5; i++) t.same(await cached.credentials.verifyBasic('Basic@Example.com', PASSWORD), { userId: user.id })
      t.equal(cached.credentials.stats().argon2Operations - start, 1, 'one argon2 verification for five requests')
      t.equal(cached.credentials.stats().basicCacheHits, 4)

      // A wrong password is never answered from the cache (its key differs) and is not cached.
      for (let i = 0; i < 2; i++) t.match(await codeOf(() => cached.credentials.verifyBasic('basic@example.com', 'wrong ' + PASSWORD)), { code: 'INVALID_CREDENTIALS', headers: { 'www-authenticate': 'Basic realm="gatehouse"' } })
      t.equal(cached.credentials.stats().argon2Operations - start, 3)
      t.match(await codeOf(() => cached.credentials.verifyBasic('nobody@example.com', PASSWORD)), { code: 'INVALID_CREDENTIALS' })

      const uncached = (await buildCredentials(t, provider, { credentials: { basicCacheTtlMs: 0 } })).app
      const u2 = await uncached.credentials.register({ email: 'basic@example.com', password: PASSWORD })
      const s2 = uncached.credentials.stats().argon2Operations
      for (let i = 0; i < 5; i++) t.same(await uncached.credentials.verifyBasic('basic@example.com', PASSWORD), { userId: u2.id })
      t.equal(uncached.credentials.stats().argon2Operations - s2, 5, 'five argon2 verifications without the cache')
    })

    t.test('Basic: a burst of identical requests shares one verification', async (t) => {
      const { app } = await buildCredentials(t, provider)
      const user = await app.credentials.register({ email: 'burst@example.com', password: PASSWORD })
      const start = app.credentials.stats().argon2Operations
      const results = await Promise.all(Array.from({ length: 20 }, () => app.credentials.verifyBasic('burst@example.com', PASSWORD)))
      t.ok(results.every((r) => r.userId === user.id), 'all twenty accepted')
      t.equal(app.credentials.stats().argon2Operations - start, 1, 'one argon2 verification')
      t.equal(app.credentials.stats().basicCacheSharedVerifications, 19)
      const wrong = await Promise.allSettled(Array.from({ length: 5 }, () => app.credentials.verifyBasic('burst@example.com', OTHER_PASSWORD)))
      t.ok(wrong.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'INVALID_CREDENTIALS'), 'a shared failure fails every request')
    })

    t.test('Basic: the cache expires after its TTL', async (t) => {
      const { app } = await buildCredentials(t, provider, { credentials: { basicCacheTtlMs: 150 } })
      await app.credentials.register({ email: 'ttl@example.com', password: PASSWORD })
      const start = app.credentials.stats().argon2Operations
      await app.credentials.verifyBasic('ttl@example.com', PASSWORD)
      await app.credentials.verifyBasic('ttl@example.com', PASSWORD)
      await new Promise((resolve) => setTimeout(resolve, 250))
      await app.credentials.verifyBasic('ttl@example.com', PASSWORD)
      t.equal(app.credentials.stats().argon2Operations - start, 2)
    })

    t.test('Basic: a password change drops the cached verification', async (t) => {
      const { app, logs } = await buildCredentials(t, provider)
      const user = await app.credentials.register({ email: 'change@example.com', password: PASSWORD })
      await app.credentials.verifyBasic('change@example.com', PASSWORD)
      await app.credentials.verifyBasic('change@example.com', PASSWORD)
      t.equal(app.credentials.stats().basicCacheHits, 1)
      t.match(await codeOf(() => app.credentials.changePassword(user.id, 'not the password', NEW_PASSWORD)), { code: 'INVALID_CREDENTIALS', message: 'The current password is incorrect' })
      t.match(await codeOf(() => app.credentials.changePassword(user.id, PASSWORD, 'password1234')), { code: 'WEAK_PASSWORD' })
      await app.credentials.changePassword(user.id, PASSWORD, NEW_PASSWORD)
      t.match(await codeOf(() => app.credentials.verifyBasic('change@example.com', PASSWORD)), { code: 'INVALID_CREDENTIALS' }, 'the old password no longer works, cache or not')
      t.same(await app.credentials.verifyBasic('change@example.com', NEW_PASSWORD), { userId: user.id })
      t.equal((await codeOf(() => app.credentials.login('change@example.com', PASSWORD))).code, 'INVALID_CREDENTIALS')
      t.equal((await app.credentials.login('change@example.com', NEW_PASSWORD)).id, user.id)

      // A notice on channel `user` (what tokens.userChanged and other instances publish) drops it too.
      await app.credentials.verifyBasic('change@example.com', NEW_PASSWORD)
      const hits = app.credentials.stats().basicCacheHits
      await app.credentials.verifyBasic('change@example.com', NEW_PASSWORD)
      t.equal(app.credentials.stats().basicCacheHits, hits + 1)
      await app.bus.publish('user', { userId: user.id })
      const ops = app.credentials.stats().argon2Operations
      await app.credentials.verifyBasic('change@example.com', NEW_PASSWORD)
      t.equal(app.credentials.stats().argon2Operations, ops + 1, 'verified again after the notice')
      const everything = logs.join('\n') + await dumpRows(app)
      t.notOk(everything.includes(PASSWORD) || everything.includes(NEW_PASSWORD), 'no password in logs or rows')
    })

    t.test('API keys: shown once, stored hashed, verified, revoked', async (t) => {
      const { app, logs } = await buildCredentials(t, provider, { credentials: { apiKeyTouchIntervalMs: 60_000 } })
      const prisma = app.store.prisma
      const alice = await app.credentials.register({ email: 'keys@example.com', password: PASSWORD })
      const bob = await app.credentials.register({ email: 'other@example.com', password: PASSWORD })
      const created = await app.credentials.createApiKey(alice.id, 'deploy bot')
      t.match(created.key, /^gh_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
      t.equal(created.prefix, created.key.slice(0, 19))
      const row = await prisma.apiKey.findUniqueOrThrow({ where: { id: created.id } })
      t.equal(row.keyHash, createHash('sha256').update(created.key).digest('base64url'), 'SHA-256 of the key')
      const secretPart = created.key.slice(20)
      const dump = await dumpRows(app)
      t.notOk(dump.includes(created.key) || dump.includes(secretPart), 'the key (and its secret part) is in no row')
      t.notOk(JSON.stringify(await prisma.apiKey.findMany()).includes(secretPart))

      t.same(await app.credentials.verifyApiKey(created.key), { userId: alice.id, apiKeyId: created.id })
      await new Promise((resolve) => setTimeout(resolve, 50))
      const firstUse = (await prisma.apiKey.findUniqueOrThrow({ where: { id: created.id } })).lastUsedAt
      t.ok(firstUse, 'last_used_at set on first use')
      for (let i = 0; i < 5; i++) await app.credentials.verifyApiKey(created.key)
      await new Promise((resolve) => setTimeout(resolve, 50))
      t.same((await prisma.apiKey.findUniqueOrThrow({ where: { id: created.id } })).lastUsedAt, firstUse, 'no write per request')
      t.ok(app.credentials.stats().apiKeyCacheHits >= 5, 'verified keys are cached')

      const tampered = created.key.slice(0, -1) + (created.key.endsWith('A') ? 'B' : 'A')
      for (const bad of [tampered, 'gh_0000000000000000_' + 'A'.repeat(43), 'nonsense', '', created.prefix]) {
        t.match(await codeOf(() => app.credentials.verifyApiKey(bad)), { code: 'INVALID_CREDENTIALS', statusCode: 401 })
      }

      t.match(await codeOf(() => app.credentials.revokeApiKey(bob.id, created.id)), { code: 'NOT_FOUND', statusCode: 404 }, "another user's key is not found")
      t.same(await app.credentials.verifyApiKey(created.key), { userId: alice.id, apiKeyId: created.id }, 'still valid')
      await app.credentials.revokeApiKey(alice.id, created.id)
      t.match(await codeOf(() => app.credentials.verifyApiKey(created.key)), { code: 'INVALID_CREDENTIALS' }, 'refused at once after revocation (cache dropped)')
      t.ok((await prisma.apiKey.findUniqueOrThrow({ where: { id: created.id } })).revokedAt)
      await app.credentials.revokeApiKey(alice.id, created.id)
      t.pass('revoking twice is harmless')
      t.notOk(logs.join('\n').includes(secretPart), 'the key never reaches the logs')
    })
  })
}

const sharedRedis = await redisUrl()
t.test('two instances on one database and one Redis: a password change drops the other instance\'s Basic cache', { skip: sharedRedis === null ? REDIS_SKIP_REASON : false }, async (t) => {
  const url = sharedRedis as string
  const db = await createTestDatabase('sqlite')
  t.teardown(() => db.drop())
  const a = (await buildCredentials(t, 'sqlite', { db, redisUrl: url })).app
  const b = (await buildCredentials(t, 'sqlite', { db, redisUrl: url })).app
  const user = await a.credentials.register({ email: 'multi@example.com', password: PASSWORD })
  await b.credentials.verifyBasic('multi@example.com', PASSWORD)
  await b.credentials.verifyBasic('multi@example.com', PASSWORD)
  t.equal(b.credentials.stats().basicCacheHits, 1, 'B answers from its cache')
  const key = await a.credentials.createApiKey(user.id, 'shared')
  await b.credentials.verifyApiKey(key.key)

  await a.credentials.changePassword(user.id, PASSWORD, NEW_PASSWORD)
  await a.credentials.revokeApiKey(user.id, key.id)
  // The notice travels through Redis pub/sub.
  for (let i = 0; i < 50 && b.credentials.stats().basicCacheSize > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(await codeOf(() => b.credentials.verifyBasic('multi@example.com', PASSWORD)), { code: 'INVALID_CREDENTIALS' }, 'B refuses the old password')
  t.match(await codeOf(() => b.credentials.verifyApiKey(key.key)), { code: 'INVALID_CREDENTIALS' }, 'B refuses the revoked key')
  t.same(await b.credentials.verifyBasic('multi@example.com', NEW_PASSWORD), { userId: user.id })
})

t.test('while the bus is unhealthy the caches are bypassed; a resync empties them', async (t) => {
  const bus = switchableBus()
  const { app } = await buildCredentials(t, 'sqlite', { bus })
  const user = await app.credentials.register({ email: 'bus@example.com', password: PASSWORD })
  const key = await app.credentials.createApiKey(user.id, 'bus')
  await app.credentials.verifyBasic('bus@example.com', PASSWORD)
  await app.credentials.verifyApiKey(key.key)
  let ops = app.credentials.stats().argon2Operations
  await app.credentials.verifyBasic('bus@example.com', PASSWORD)
  t.equal(app.credentials.stats().argon2Operations, ops, 'healthy: answered from the cache')

  bus.setHealthy(false)
  const apiHits = app.credentials.stats().apiKeyCacheHits
  await app.credentials.verifyBasic('bus@example.com', PASSWORD)
  await app.credentials.verifyApiKey(key.key)
  t.equal(app.credentials.stats().argon2Operations, ops + 1, 'unhealthy: argon2 runs again')
  t.equal(app.credentials.stats().apiKeyCacheHits, apiHits, 'unhealthy: the key is read from the database')
  // A revocation made elsewhere while notices are lost is seen at once.
  await app.store.prisma.apiKey.update({ where: { id: key.id }, data: { revokedAt: new Date() } })
  t.match(await codeOf(() => app.credentials.verifyApiKey(key.key)), { code: 'INVALID_CREDENTIALS' })

  bus.setHealthy(true)
  bus.resync()
  t.equal(app.credentials.stats().basicCacheSize, 0, 'the resync emptied the Basic cache')
  t.equal(app.credentials.stats().apiKeyCacheSize, 0, 'and the API key cache')
  ops = app.credentials.stats().argon2Operations
  await app.credentials.verifyBasic('bus@example.com', PASSWORD)
  t.equal(app.credentials.stats().argon2Operations, ops + 1)
  t.match(await codeOf(() => app.credentials.verifyApiKey(key.key)), { code: 'INVALID_CREDENTIALS' }, 'the revoked key stays refused')
})
