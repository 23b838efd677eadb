// The global budget (class `default`): a fixed window per key in memory; with Redis, local counts
// reconciled in batches, with the documented bound on how far N instances can overshoot
// (`N x slack - 1` beyond `max` per key and window), and in-memory counting when Redis is gone.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { errorHandler } from '../../lib/error-handler.ts'
import { rateLimit, resolveOptions, defaultGlobalSlack, RateLimitOptionsError } from '../../plugins/rate-limit/index.ts'
import { GlobalBudget } from '../../plugins/rate-limit/global-budget.ts'
import { MemoryCounters, RedisCounters, StoreHealth } from '../../plugins/rate-limit/counters.ts'
import { redisClient } from '../../plugins/redis/index.ts'
import { tinyApp, connectRedis, manualClock, RATE_LIMITED_BODY } from './helpers.ts'
import { freePort, redisServer, eventually, REDIS_SERVER_SKIP_REASON } from './redis-server.ts'
import { redisUrl, REDIS_SKIP_REASON, uniquePrefix } from '../helpers/redis.ts'

const url = await redisUrl()
const skip = url === null ? REDIS_SKIP_REASON : false

t.test('the default slack is 5% of the budget (exact below 20), at most 1000; it is validated', async (t) => {
  t.equal(resolveOptions().globalSync.slack, 50, '1000 per minute: 50')
  t.equal(resolveOptions().globalSync.intervalMs, 50)
  t.equal(resolveOptions({ classes: { default: { max: 10 } } }).globalSync.slack, 0, 'a small budget is exact')
  t.equal(defaultGlobalSlack(19), 0)
  t.equal(defaultGlobalSlack(20), 1)
  t.equal(defaultGlobalSlack(10_000_000), 1000)
  t.equal(resolveOptions({ globalSync: { slack: 0 } }).globalSync.slack, 0)
  t.throws(() => resolveOptions({ globalSync: { slack: -1 } }), RateLimitOptionsError)
  t.throws(() => resolveOptions({ globalSync: { intervalMs: 0 } }), RateLimitOptionsError)
})

t.test('memory: a fixed window per client, reset when the window ends (injected clock)', async (t) => {
  const clock = manualClock()
  const { app } = await tinyApp(t, { rateLimit: { redis: null, clock: clock.now, classes: { default: { max: 3, timeWindowMs: 10_000 } } } })
  const me = (ip = '192.0.2.1') => app.inject({ url: '/auth/me', remoteAddress: ip })
  for (let i = 0; i < 3; i++) {
    const res = await me()
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-limit'], '3')
    t.equal(res.headers['x-ratelimit-remaining'], String(2 - i))
    t.equal(res.headers['x-ratelimit-reset'], '10')
  }
  clock.advance(4_000)
  const limited = await me()
  t.equal(limited.statusCode, 429)
  t.same(limited.json(), RATE_LIMITED_BODY)
  t.equal(limited.headers['retry-after'], '6', 'the rest of the window')
  t.equal(limited.headers['x-ratelimit-remaining'], '0')
  t.equal((await me('192.0.2.2')).statusCode, 200, 'another client has its own budget')
  clock.advance(6_000)
  const fresh = await me()
  t.equal(fresh.statusCode, 200, 'a new window')
  t.equal(fresh.headers['x-ratelimit-remaining'], '2')
})

t.test('memory: the map of clients stays within maxEntries', async (t) => {
  const clock = manualClock()
  const health = new StoreHealth(Fastify().log)
  const budget = new GlobalBudget({ clock: clock.now, maxEntries: 100, health, fallback: new MemoryCounters(clock.now, 100), sync: null })
  for (let i = 0; i < 1000; i++) t.equal(budget.hit(`ip:10.0.${i >> 8}.${i & 255}`, 5, 60_000), 1)
  t.ok(budget.size <= 100, `${budget.size} entries`)
})

t.test('Redis, one instance: exact (the local view is the whole count)', { skip }, async (t) => {
  const { app } = await tinyApp(t, { rateLimit: { redis: await connectRedis(t, url!), prefix: uniquePrefix(), classes: { default: { max: 60 } }, globalSync: { slack: 8 } } })
  const statuses: number[] = []
  for (let i = 0; i < 70; i++) statuses.push((await app.inject({ url: '/auth/me', remoteAddress: '198.51.100.9' })).statusCode)
  t.same(statuses, [...Array(60).fill(200), ...Array(10).fill(429)])
})

t.test('Redis: one round trip per slack / 2 hits of a key, not one per hit', { skip }, async (t) => {
  const redis = await connectRedis(t, url!)
  const prefix = `${uniquePrefix()}rl:default:`
  const health = new StoreHealth(Fastify().log)
  const budget = new GlobalBudget({
    clock: Date.now,
    maxEntries: 1000,
    health,
    fallback: new MemoryCounters(Date.now, 1000),
    sync: { redis, prefix, slack: 100, intervalMs: 60_000, timeoutMs: 30_000, exact: new RedisCounters(redis, prefix, 30_000) }
  })
  t.teardown(() => budget.close())
  let accepted = 0
  for (let i = 0; i < 1000; i++) {
    const r = budget.hit('ip:203.0.113.50', 10_000, 60_000)
    const current = typeof r === 'number' ? r : (await r).current
    if (current <= 10_000) accepted++
  }
  await budget.flushAll()
  t.equal(accepted, 1000)
  t.ok(budget.reconciles <= 1000 / 50 + 1, `${budget.reconciles} round trips for 1000 hits`)
  t.equal(Number(await redis.get(`${prefix}ip:203.0.113.50`)), 1000, 'every hit reached Redis')
  t.ok(Number(await redis.pttl(`${prefix}ip:203.0.113.50`)) > 0, 'the counter expires')
})

t.test('Redis, N instances hammering one client: accepted <= max + N x slack - 1, then refused on every instance', { skip, timeout: 120_000 }, async (t) => {
  const N = 3
  const max = 300
  const slack = 20
  const prefix = uniquePrefix()
  const ip = '203.0.113.77'
  const apps: FastifyInstance[] = []
  for (let i = 0; i < N; i++) {
    apps.push((await tinyApp(t, { rateLimit: { redis: await connectRedis(t, url!), prefix, classes: { default: { max } }, globalSync: { slack, intervalMs: 50 }, commandTimeoutMs: 30_000 } })).app)
  }
  const bound = max + N * slack - 1
  // A generous command timeout: on a busy machine a slow answer must not count as a Redis fault
  // (a fault lets each instance count alone, which the test of the bound is not about).
  // Every instance at once, many requests in flight on each: far more than the budget.
  const burst = await Promise.all(Array.from({ length: N * 250 }, (_, i) => apps[i % N].inject({ url: '/auth/me', remoteAddress: ip })))
  let accepted = burst.filter((r) => r.statusCode === 200).length
  t.ok(burst.every((r) => r.statusCode === 200 || r.statusCode === 429), 'only 200 and 429')
  t.ok(accepted >= max, `at least the budget is served (${accepted})`)
  t.ok(accepted <= bound, `burst: ${accepted} accepted <= ${bound}`)

  // Keep asking each instance until it refuses: it must, and the total stays within the bound.
  for (const app of apps) {
    let refused = false
    for (let i = 0; i <= bound && !refused; i++) {
      const res = await app.inject({ url: '/auth/me', remoteAddress: ip })
      if (res.statusCode === 200) accepted++
      else refused = res.statusCode === 429
    }
    t.ok(refused, 'the instance refuses')
  }
  t.ok(accepted <= bound, `in all ${accepted} accepted <= max + N x slack - 1 = ${bound}`)
  for (const app of apps) {
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/auth/me', remoteAddress: ip })).statusCode, 429, 'and keeps refusing for the rest of the window')
  }
  t.equal((await apps[0].inject({ url: '/auth/me', remoteAddress: '203.0.113.78' })).statusCode, 200, 'another client is not affected')

  // Closing sends the last local counts: Redis then holds exactly what was accepted.
  for (const app of apps) await app.close()
  const check = await connectRedis(t, url!)
  t.equal(Number(await check.get(`${prefix}rl:default:ip:${ip}`)), accepted, 'the shared counter is the number of accepted requests')
})

t.test('Redis unreachable (nothing listening): the global budget counts in memory, auth classes answer 503', async (t) => {
  const port = await freePort()
  const client = redisClient(`redis://127.0.0.1:${port}`)
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const app = Fastify()
  app.setErrorHandler(errorHandler)
  t.teardown(() => app.close())
  await app.register(rateLimit, { redis: client, classes: { default: { max: 40 } }, globalSync: { slack: 4 } })
  app.get('/open', async () => ({ ok: true }))
  app.post('/token', { config: { rateLimitClass: 'token' } }, async () => ({ ok: true }))
  const statuses: number[] = []
  for (let i = 0; i < 41; i++) statuses.push((await app.inject({ url: '/open', remoteAddress: '192.0.2.80' })).statusCode)
  t.same(statuses, [...Array(40).fill(200), 429], 'still limited, in this instance\'s memory: never unlimited, never 503')
  const token = await app.inject({ method: 'POST', url: '/token', remoteAddress: '192.0.2.80' })
  t.equal(token.statusCode, 503, 'an exact class fails closed')
  t.equal(token.json().code, 'SERVICE_UNAVAILABLE')
  const exact = Fastify()
  exact.setErrorHandler(errorHandler)
  t.teardown(() => exact.close())
  await exact.register(rateLimit, { redis: client, classes: { default: { max: 5 } } })
  exact.get('/open', async () => ({ ok: true }))
  const exactStatuses: number[] = []
  for (let i = 0; i < 6; i++) exactStatuses.push((await exact.inject({ url: '/open', remoteAddress: '192.0.2.81' })).statusCode)
  t.same(exactStatuses, [...Array(5).fill(200), 429], 'slack 0 (exact) degrades the same way')
})

t.test('Redis hanging: a hit that finds the slack spent waits at most commandTimeoutMs, then counts in memory; the late answer is neither lost nor counted twice', { skip: REDIS_SERVER_SKIP_REASON, timeout: 120_000 }, async (t) => {
  const server = await redisServer(t)
  const redis = await connectRedis(t, server.url)
  const prefix = uniquePrefix()
  const { app } = await tinyApp(t, { rateLimit: { redis, prefix, classes: { default: { max: 30 } }, globalSync: { slack: 4, intervalMs: 50 }, commandTimeoutMs: 300 } })
  const me = () => app.inject({ url: '/auth/me', remoteAddress: '192.0.2.90' })
  server.pause()
  t.teardown(() => server.resume())
  const statuses: number[] = []
  for (let i = 0; i < 31; i++) statuses.push((await me()).statusCode)
  t.same(statuses, [...Array(30).fill(200), 429], 'still limited while Redis hangs')
  server.resume()
  const key = `${prefix}rl:default:ip:192.0.2.90`
  t.ok(await eventually(async () => Number(await redis.get(key)) === 30), 'once Redis answers, it holds every accepted hit exactly once')
  t.equal((await me()).statusCode, 429)
  t.equal(Number(await redis.get(key)), 30, 'refused hits are not counted')
})
