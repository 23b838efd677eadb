// Through the whole Gatehouse app: the password grant of /oauth/token (and /auth/login when it is
// registered) under a burst of 100 parallel wrong passwords from 100 addresses. The count of
// argon2 operations comes from the credentials plugin's own counter.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helpers/build.ts'
import { redisUrl, REDIS_SKIP_REASON, uniquePrefix } from '../helpers/redis.ts'

const BURST = 100
const FREE = 5
const PASSWORD = 'correct horse battery staple'
const url = await redisUrl()

const variants: Array<{ name: string, skip: string | false, env: Record<string, string>, prefix?: string }> = [
  { name: 'memory', skip: false, env: {} },
  { name: 'redis', skip: url === null ? REDIS_SKIP_REASON : false, env: url === null ? {} : { REDIS_URL: url }, prefix: uniquePrefix() }
]

function argon2Operations (app: FastifyInstance): number {
  return app.credentials.stats().argon2Operations
}

function passwordGrant (app: FastifyInstance, email: string, password: string, ip: string) {
  return app.inject({
    method: 'POST',
    url: '/oauth/token',
    remoteAddress: ip,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'password', username: email, password }).toString()
  })
}

for (const variant of variants) {
  t.test(`${variant.name}: ${BURST} parallel wrong password grants for one account reach argon2 ${FREE} times`, { skip: variant.skip }, async (t) => {
    // A stopped clock for the throttle: the 1 s back-off cannot end during the test on a slow machine.
    const stopped = Date.now()
    const { app } = await build(t, { env: variant.env, app: { rateLimit: { prefix: variant.prefix, clock: () => stopped } } })
    await app.credentials.register({ email: 'burst@example.com', password: PASSWORD })
    const before = argon2Operations(app)
    const responses = await Promise.all(Array.from({ length: BURST }, (_, i) =>
      passwordGrant(app, i % 2 === 0 ? 'burst@example.com' : 'BURST@Example.com', 'wrong password guess', `172.20.${i >> 8}.${(i & 255) + 1}`)))
    t.equal(argon2Operations(app) - before, FREE, `argon2 ran ${argon2Operations(app) - before} times for ${BURST} attempts`)
    const statuses = responses.map((r) => r.statusCode)
    t.equal(statuses.filter((s) => s === 429).length, BURST - FREE, 'every other attempt was refused before the hash')
    t.equal(statuses.filter((s) => s !== 429).length, FREE)
    t.ok(responses.filter((r) => r.statusCode === 429).every((r) => Number(r.headers['retry-after']) >= 1), 'with Retry-After')

    const right = await passwordGrant(app, 'burst@example.com', PASSWORD, '172.21.0.1')
    t.equal(right.statusCode, 429, 'the right password is refused during the back-off')
    t.equal(right.body, responses.find((r) => r.statusCode === 429)!.body, 'with the same body')
  })
}

t.test('the /auth routes: burst bound and per-address presets', async (t) => {
  const stopped = Date.now()
  const { app } = await build(t, { app: { rateLimit: { clock: () => stopped } } })
  const registered = app.hasRoute({ method: 'POST', url: '/auth/login' })
  t.test(`POST /auth/login: ${BURST} parallel wrong passwords reach argon2 ${FREE} times`, { skip: registered ? false : 'POST /auth/login is not registered in this build' }, async (t) => {
    await app.credentials.register({ email: 'login-burst@example.com', password: PASSWORD })
    const before = argon2Operations(app)
    const responses = await Promise.all(Array.from({ length: BURST }, (_, i) => app.inject({
      method: 'POST', url: '/auth/login', remoteAddress: `172.22.0.${i + 1}`, payload: { email: 'login-burst@example.com', password: 'wrong password guess' }
    })))
    t.equal(argon2Operations(app) - before, FREE)
    t.equal(responses.filter((r) => r.statusCode === 401).length, FREE)
    t.equal(responses.filter((r) => r.statusCode === 429 && r.json().code === 'RATE_LIMITED').length, BURST - FREE)
  })

  t.test('one address, many usernames: the 11th login within a minute is 429', { skip: registered ? false : 'POST /auth/login is not registered in this build' }, async (t) => {
    const statuses = []
    for (let i = 0; i < 11; i++) {
      statuses.push((await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '198.51.100.200', payload: { email: `stuffing${i}@example.com`, password: 'wrong password guess' } })).statusCode)
    }
    t.same(statuses, [...Array(10).fill(401), 429])
  })

  t.test('register: the 6th within an hour from one address is 429', { skip: app.hasRoute({ method: 'POST', url: '/auth/register' }) ? false : 'POST /auth/register is not registered in this build' }, async (t) => {
    const statuses = []
    for (let i = 0; i < 6; i++) {
      statuses.push((await app.inject({ method: 'POST', url: '/auth/register', remoteAddress: '198.51.100.201', payload: { email: `new${i}@example.com`, password: PASSWORD } })).statusCode)
    }
    t.same(statuses, [...Array(5).fill(201), 429])
  })
})

t.test('POST /auth/refresh', async (t) => {
  const { app } = await build(t)
  const skip = app.hasRoute({ method: 'POST', url: '/auth/refresh' }) ? false : 'POST /auth/refresh is not registered in this build'
  t.test('30 per minute per token family', { skip }, async (t) => {
    const token = `9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a.${'z'.repeat(43)}`
    const statuses = []
    for (let i = 0; i < 31; i++) statuses.push((await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: `198.51.100.${i + 1}`, payload: { refresh_token: token } })).statusCode)
    t.same(statuses.slice(0, 30), Array(30).fill(401), 'an unknown family is refused as invalid ...')
    t.equal(statuses[30], 429, '... and limited after 30 tries from 30 addresses')
  })
})
