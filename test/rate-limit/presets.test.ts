// The per-IP presets of each route class, their 429 answer and its headers, in memory and in Redis.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { rateLimit, resolveOptions, RateLimitOptionsError, DEFAULT_CLASSES } from '../../plugins/rate-limit/index.ts'
import { errorHandler } from '../../lib/error-handler.ts'
import { tinyApp, variants, manualClock, PASSWORD, login, RATE_LIMITED_BODY } from './helpers.ts'

const REFRESH_A = `0b0c3f9e-7f2a-4c1e-9d59-2d1f7b3c8a11.${'a'.repeat(43)}`
const REFRESH_B = `5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b.${'b'.repeat(43)}`

function assertLimited (t: Test, res: { statusCode: number, json: () => unknown, headers: Record<string, unknown> }, max: number): number {
  t.equal(res.statusCode, 429)
  t.same(res.json(), RATE_LIMITED_BODY, 'the coded RATE_LIMITED body')
  t.equal(res.headers['x-ratelimit-limit'], String(max))
  t.equal(res.headers['x-ratelimit-remaining'], '0')
  t.ok(res.headers['x-ratelimit-reset'] !== undefined, 'x-ratelimit-reset')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After is a whole number of seconds (${String(res.headers['retry-after'])})`)
  return retryAfter
}

/** Retry-After is the rest of the window that opened at `started` (however slow the machine is). */
function assertRestOfWindow (t: Test, retryAfter: number, windowSeconds: number, started: number): void {
  const elapsed = Math.ceil((Date.now() - started) / 1000)
  t.ok(retryAfter <= windowSeconds && retryAfter >= windowSeconds - elapsed,
    `Retry-After ${retryAfter} is the rest of the ${windowSeconds} s window (${elapsed} s elapsed)`)
}

t.test('the defaults are the documented presets', async (t) => {
  const o = resolveOptions()
  t.same(o.classes, {
    login: { max: 10, timeWindowMs: 60_000 },
    token: { max: 10, timeWindowMs: 60_000 },
    register: { max: 5, timeWindowMs: 3_600_000 },
    refresh: { max: 30, timeWindowMs: 60_000 },
    mail: { max: 10, timeWindowMs: 3_600_000 },
    mail_target: { max: 3, timeWindowMs: 900_000 },
    invite: { max: 30, timeWindowMs: 3_600_000 },
    default: { max: 1000, timeWindowMs: 60_000 }
  })
  t.same(o.loginThrottle, { freeAttempts: 5, baseDelayMs: 1000, maxDelayMs: 900_000, reservationTimeoutMs: 30_000, forgetAfterMs: 43_200_000 })
  t.equal(o.failOpen, false)
  t.equal(o.ipv6Subnet, 64)
  t.ok(Object.isFrozen(o) && Object.isFrozen(o.classes.login), 'resolved options are frozen')
  t.equal(DEFAULT_CLASSES.login.max, 10)
})

t.test('bad options are refused at registration', async (t) => {
  t.throws(() => resolveOptions({ classes: { login: { max: 0 } } }), RateLimitOptionsError)
  t.throws(() => resolveOptions({ classes: { login: { timeWindowMs: 1.5 } } }), RateLimitOptionsError)
  t.throws(() => resolveOptions({ classes: { nope: { max: 1 } } as never }), RateLimitOptionsError)
  t.throws(() => resolveOptions({ loginThrottle: { baseDelayMs: 5000, maxDelayMs: 1000 } }), RateLimitOptionsError)
  t.throws(() => resolveOptions({ ipv6Subnet: 129 }), RateLimitOptionsError)
  const input = { classes: { login: { max: 3 } } }
  resolveOptions(input)
  t.same(input, { classes: { login: { max: 3 } } }, 'the caller\'s object is not changed')
})

t.test('an unknown rateLimitClass on a route fails at start, naming the route', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(rateLimit, {})
  t.throws(() => app.get('/x', { config: { rateLimitClass: 'logon' as never } }, async () => 'x'), /GET \/x: unknown config.rateLimitClass "logon"/)
})

for (const variant of await variants()) {
  t.test(`${variant.name} store`, { skip: variant.skip }, async (t) => {
    t.test('login: 10 per minute per IP, then 429 with Retry-After and the rate-limit headers', async (t) => {
      const { app } = await tinyApp(t, { rateLimit: await variant.store(t) })
      const started = Date.now()
      for (let i = 0; i < 10; i++) {
        const res = await login(app, `user${i}@example.com`, PASSWORD, '203.0.113.7')
        t.equal(res.statusCode, 200, `login ${i + 1} passes`)
        t.equal(res.headers['x-ratelimit-remaining'], String(9 - i))
      }
      const limited = await login(app, 'user10@example.com', PASSWORD, '203.0.113.7')
      const retryAfter = assertLimited(t, limited, 10)
      assertRestOfWindow(t, retryAfter, 60, started)
      t.equal((await login(app, 'user10@example.com', PASSWORD, '203.0.113.8')).statusCode, 200, 'another address has its own budget')
      t.equal((await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '203.0.113.7' })).statusCode, 200, 'the token class has its own budget')
    })

    t.test('token (/oauth/token): 10 per minute per IP', async (t) => {
      const { app } = await tinyApp(t, { rateLimit: await variant.store(t) })
      const token = () => app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '198.51.100.1' })
      const started = Date.now()
      for (let i = 0; i < 10; i++) t.equal((await token()).statusCode, 200)
      assertRestOfWindow(t, assertLimited(t, await token(), 10), 60, started)
    })

    t.test('register: 5 per hour per IP', async (t) => {
      const { app } = await tinyApp(t, { rateLimit: await variant.store(t) })
      const register = (ip = '198.51.100.2') => app.inject({ method: 'POST', url: '/auth/register', remoteAddress: ip })
      const started = Date.now()
      for (let i = 0; i < 5; i++) t.equal((await register()).statusCode, 200)
      assertRestOfWindow(t, assertLimited(t, await register(), 5), 3600, started)
      t.equal((await register('198.51.100.3')).statusCode, 200)
    })

    t.test('refresh: 30 per minute per token family; malformed tokens are counted by address', async (t) => {
      const { app } = await tinyApp(t, { rateLimit: await variant.store(t) })
      const refresh = (token: unknown, ip = '192.0.2.10') => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token }, remoteAddress: ip })
      const started = Date.now()
      for (let i = 0; i < 30; i++) t.equal((await refresh(REFRESH_A, `192.0.2.${i + 20}`)).statusCode, 200, 'one family from many addresses')
      assertRestOfWindow(t, assertLimited(t, await refresh(REFRESH_A, '192.0.2.99'), 30), 60, started)
      t.equal((await refresh(REFRESH_B)).statusCode, 200, 'another family is not limited')
      for (let i = 0; i < 30; i++) t.equal((await refresh('not-a-refresh-token')).statusCode, 200)
      assertLimited(t, await refresh('garbage'), 30)
      t.equal((await refresh('garbage', '192.0.2.11')).statusCode, 200, 'a malformed token from another address has its own budget')
    })

    t.test('everything else: 1000 per minute per IP on every route', async (t) => {
      const { app } = await tinyApp(t, { rateLimit: await variant.store(t) })
      const me = () => app.inject({ url: '/auth/me', remoteAddress: '192.0.2.200' })
      for (let i = 0; i < 999; i++) {
        const res = await me()
        if (res.statusCode !== 200) t.fail(`request ${i + 1} answered ${res.statusCode}`)
      }
      t.equal((await app.inject({ url: '/explicit-default', remoteAddress: '192.0.2.200' })).statusCode, 200, 'class default shares the global budget')
      assertLimited(t, await me(), 1000)
      assertLimited(t, await app.inject({ url: '/explicit-default', remoteAddress: '192.0.2.200' }), 1000)
    })

    t.test('every class is configurable through options, and per route through config.rateLimit', async (t) => {
      const { app } = await tinyApp(t, { rateLimit: { ...await variant.store(t), classes: { token: { max: 2, timeWindowMs: 30_000 } } } })
      app.log.level = 'silent'
      const token = () => app.inject({ method: 'POST', url: '/oauth/token' })
      const started = Date.now()
      t.equal((await token()).statusCode, 200)
      t.equal((await token()).statusCode, 200)
      assertRestOfWindow(t, assertLimited(t, await token(), 2), 30, started)

      const custom = Fastify()
      custom.setErrorHandler(errorHandler)
      t.teardown(() => custom.close())
      await custom.register(rateLimit, await variant.store(t))
      custom.post('/tight', { config: { rateLimitClass: 'login', rateLimit: { max: 1 } } }, async () => 'ok')
      custom.post('/off', { config: { rateLimitClass: 'login', rateLimit: false } }, async () => 'ok')
      t.equal((await custom.inject({ method: 'POST', url: '/tight' })).statusCode, 200)
      assertLimited(t, await custom.inject({ method: 'POST', url: '/tight' }), 1)
      for (let i = 0; i < 15; i++) t.equal((await custom.inject({ method: 'POST', url: '/off' })).statusCode, 200, 'config.rateLimit: false turns the class off')
    })

    t.test('routes in encapsulated plugins get their class; each route of a class has its own budget', async (t) => {
      const app = Fastify()
      app.setErrorHandler(errorHandler)
      t.teardown(() => app.close())
      await app.register(rateLimit, { ...await variant.store(t), classes: { token: { max: 2 } } })
      await app.register(async (scope) => {
        scope.post('/token', { config: { rateLimitClass: 'token' } }, async () => 'ok')
        scope.post('/revoke', { config: { rateLimitClass: 'token' } }, async () => 'ok')
      }, { prefix: '/oauth' })
      for (const url of ['/oauth/token', '/oauth/revoke']) {
        t.equal((await app.inject({ method: 'POST', url })).statusCode, 200)
        t.equal((await app.inject({ method: 'POST', url })).statusCode, 200)
        assertLimited(t, await app.inject({ method: 'POST', url }), 2)
      }
    })
  })
}

t.test('Retry-After and x-ratelimit-reset follow the window (memory, injected clock)', async (t) => {
  const clock = manualClock()
  const { app } = await tinyApp(t, { rateLimit: { clock: clock.now } })
  const register = () => app.inject({ method: 'POST', url: '/auth/register' })
  for (let i = 0; i < 5; i++) t.equal((await register()).statusCode, 200)
  t.equal(Number((await register()).headers['retry-after']), 3600)
  clock.advance(59 * 60_000 + 500)
  const late = await register()
  t.equal(late.statusCode, 429)
  t.equal(late.headers['retry-after'], '60', 'the 59.5 s that are left round up')
  t.equal(late.headers['x-ratelimit-reset'], '60')
  clock.advance(30_000)
  t.equal((await register()).headers['retry-after'], '30')
  clock.advance(30_000)
  const fresh = await register()
  t.equal(fresh.statusCode, 200, 'a new window starts when the hour is over')
  t.equal(fresh.headers['x-ratelimit-remaining'], '4')

  for (let i = 0; i < 10; i++) await login(app, `a${i}@example.com`, PASSWORD)
  clock.advance(15_000)
  const limited = await login(app, 'b@example.com', PASSWORD)
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['retry-after'], '45')
  clock.advance(45_000)
  t.equal((await login(app, 'b@example.com', PASSWORD)).statusCode, 200)
})

t.test('works alone in a plain Fastify app: its default error handler sends the same 429', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(rateLimit, { classes: { login: { max: 1 } } })
  app.post('/login', { config: { rateLimitClass: 'login' } }, async (request) => {
    const attempt = await app.loginThrottle.begin((request.body as { email: string }).email)
    await attempt.fail()
    return 'wrong'
  })
  t.equal((await app.inject({ method: 'POST', url: '/login', payload: { email: 'a@example.com' } })).statusCode, 200)
  const limited = await app.inject({ method: 'POST', url: '/login', payload: { email: 'a@example.com' } })
  t.equal(limited.statusCode, 429)
  t.same(limited.json(), RATE_LIMITED_BODY)
  t.ok(Number(limited.headers['retry-after']) >= 59)

  const other = Fastify()
  t.teardown(() => other.close())
  await other.register(rateLimit, { classes: { login: { max: 100 } } })
  other.post('/login', { config: { rateLimitClass: 'login' } }, async () => {
    const attempt = await other.loginThrottle.begin('b@example.com')
    await attempt.fail()
    return 'wrong'
  })
  for (let i = 0; i < 5; i++) await other.inject({ method: 'POST', url: '/login' })
  const backoff = await other.inject({ method: 'POST', url: '/login' })
  t.equal(backoff.statusCode, 429)
  t.same(backoff.json(), RATE_LIMITED_BODY, 'the throttle\'s 429 has the same body')
  t.equal(backoff.headers['retry-after'], '1')
})
