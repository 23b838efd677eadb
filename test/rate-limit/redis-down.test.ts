// Redis down or hanging: auth classes and loginThrottle answer 503 SERVICE_UNAVAILABLE with
// Retry-After (fail closed), other routes keep counting in memory, and everything recovers by
// itself when Redis returns. Each test runs its own redis-server so it can kill and restart it.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { tinyApp, connectRedis, login, PASSWORD } from './helpers.ts'
import { redisServer, eventually, REDIS_SERVER_SKIP_REASON } from './redis-server.ts'

const REFRESH = `3c2b1a09-8f7e-4d6c-9b5a-493827161504.${'r'.repeat(43)}`

async function authRequests (app: FastifyInstance) {
  return {
    login: await login(app, 'someone@example.com', PASSWORD),
    register: await app.inject({ method: 'POST', url: '/auth/register' }),
    refresh: await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: REFRESH } }),
    token: await app.inject({ method: 'POST', url: '/oauth/token' })
  }
}

async function throttleOutcome (app: FastifyInstance): Promise<string> {
  try {
    await (await app.loginThrottle.begin('someone@example.com')).succeed()
    return 'granted'
  } catch (err) {
    return (err as { code: string }).code
  }
}

t.test('Redis killed: auth routes 503 with Retry-After, other routes still limited in memory; recovery when it returns', { skip: REDIS_SERVER_SKIP_REASON }, async (t) => {
  const server = await redisServer(t)
  const { app } = await tinyApp(t, { rateLimit: { redis: await connectRedis(t, server.url), classes: { default: { max: 20 } } } })
  for (const [name, res] of Object.entries(await authRequests(app))) t.equal(res.statusCode, 200, `${name} works with Redis up`)

  await server.kill()
  const me = []
  for (let i = 0; i < 21; i++) me.push((await app.inject({ url: '/auth/me', remoteAddress: '192.0.2.77' })).statusCode)
  t.same(me.slice(0, 20), Array(20).fill(200), 'the default class degrades to counting in memory')
  t.equal(me[20], 429, 'and still limits')

  for (const [name, res] of Object.entries(await authRequests(app))) {
    t.equal(res.statusCode, 503, `${name}: 503 with Redis down`)
    t.equal(res.json().code, 'SERVICE_UNAVAILABLE')
    t.equal(res.headers['retry-after'], '5')
    t.notMatch(res.body, /ECONNREFUSED|writeable|redis/i, 'no internal detail in the body')
  }
  t.equal(await throttleOutcome(app), 'SERVICE_UNAVAILABLE', 'loginThrottle.begin fails closed')


  await server.start()
  t.ok(await eventually(async () => (await login(app, 'someone@example.com', PASSWORD)).statusCode === 200), 'login recovers by itself')
  for (const [name, res] of Object.entries(await authRequests(app))) t.equal(res.statusCode, 200, `${name} works again`)
  t.equal(await throttleOutcome(app), 'granted', 'loginThrottle recovers by itself')
})

t.test('Redis hanging: auth routes answer 503 after the command timeout instead of hanging; recovery on resume', { skip: REDIS_SERVER_SKIP_REASON }, async (t) => {
  const server = await redisServer(t)
  const { app } = await tinyApp(t, { rateLimit: { redis: await connectRedis(t, server.url), commandTimeoutMs: 1000 } })
  t.equal((await app.inject({ method: 'POST', url: '/oauth/token' })).statusCode, 200)
  server.pause()
  t.teardown(() => server.resume())
  const hung = await app.inject({ method: 'POST', url: '/oauth/token' })
  t.equal(hung.statusCode, 503)
  t.equal(hung.json().code, 'SERVICE_UNAVAILABLE')
  t.equal(await throttleOutcome(app), 'SERVICE_UNAVAILABLE')
  server.resume()
  t.ok(await eventually(async () => (await app.inject({ method: 'POST', url: '/oauth/token' })).statusCode === 200), 'recovers when Redis answers again')
  t.equal(await throttleOutcome(app), 'granted')
})

t.test('failOpen: with Redis down auth routes and the throttle count in this instance\'s memory, still limited', { skip: REDIS_SERVER_SKIP_REASON }, async (t) => {
  const server = await redisServer(t)
  const { app, verifications } = await tinyApp(t, { rateLimit: { redis: await connectRedis(t, server.url), failOpen: true } })
  await server.kill()
  const statuses = []
  for (let i = 0; i < 11; i++) statuses.push((await app.inject({ method: 'POST', url: '/oauth/token' })).statusCode)
  t.same(statuses, [...Array(10).fill(200), 429], 'the token class keeps its limit per instance')

  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => login(app, 'open@example.com', 'wrong password guess', `10.20.0.${i + 1}`)))
  t.equal(verifications(), 5, 'the per-account bound holds in memory')
  t.equal(burst.filter((r) => r.statusCode === 429).length, 25)
})

t.test('a Redis fault is logged once when it starts and once when it ends, without secrets', { skip: REDIS_SERVER_SKIP_REASON }, async (t) => {
  const server = await redisServer(t)
  const { default: Fastify } = await import('fastify')
  const { rateLimit } = await import('../../plugins/rate-limit/index.ts')
  const { errorHandler } = await import('../../lib/error-handler.ts')
  const { captureLogs } = await import('../helpers/build.ts')
  const { logger, logs } = captureLogs('info')
  const app = Fastify({ logger })
  app.setErrorHandler(errorHandler)
  t.teardown(() => app.close())
  await app.register(rateLimit, { redis: await connectRedis(t, server.url) })
  app.post('/login', { config: { rateLimitClass: 'login' } }, async () => 'ok')
  await server.kill()
  for (let i = 0; i < 5; i++) t.equal((await app.inject({ method: 'POST', url: '/login', payload: { password: 'hunter2-secret' } })).statusCode, 503)
  const faults = logs.filter((l) => l.includes('Redis unavailable'))
  t.equal(faults.length, 1, 'one fault line, not one per request')
  await server.start()
  t.ok(await eventually(async () => (await app.inject({ method: 'POST', url: '/login' })).statusCode === 200))
  t.equal(logs.filter((l) => l.includes('Redis is back')).length, 1)
  t.notOk(logs.some((l) => l.includes('hunter2-secret')), 'no request body in the logs')
})

t.test('the whole app with REDIS_URL: Redis killed -> /health stays 200, /oauth/token 503; recovery when Redis returns', { skip: REDIS_SERVER_SKIP_REASON }, async (t) => {
  const server = await redisServer(t)
  const { build } = await import('../helpers/build.ts')
  const { app } = await build(t, { env: { REDIS_URL: server.url } })
  const token = () => app.inject({ method: 'POST', url: '/oauth/token', payload: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  const before = await token()
  t.not(before.statusCode, 503, `with Redis up the token endpoint answers (${before.statusCode})`)

  await server.kill()
  t.equal((await app.inject('/health')).statusCode, 200, 'liveness does not depend on Redis')
  const down = await token()
  t.equal(down.statusCode, 503, 'the token endpoint fails closed')
  t.ok(down.headers['retry-after'])

  await server.start()
  t.ok(await eventually(async () => (await token()).statusCode === before.statusCode), 'and recovers by itself')
})
