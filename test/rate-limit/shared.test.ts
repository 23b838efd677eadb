// Two app instances on one Redis enforce one limit: per-IP presets, the global default and
// the per-account throttle. Once with tiny apps, once with the whole Gatehouse app (REDIS_URL).
import t from 'tap'
import { tinyApp, connectRedis, login, PASSWORD } from './helpers.ts'
import { redisUrl, REDIS_SKIP_REASON, uniquePrefix } from '../helpers/redis.ts'
import { build } from '../helpers/build.ts'

const url = await redisUrl()
const skip = url === null ? REDIS_SKIP_REASON : false

t.test('two instances share the per-IP budgets and the account back-off', { skip }, async (t) => {
  const prefix = uniquePrefix()
  const a = await tinyApp(t, { rateLimit: { redis: await connectRedis(t, url!), prefix, classes: { default: { max: 10 } } } })
  const b = await tinyApp(t, { rateLimit: { redis: await connectRedis(t, url!), prefix, classes: { default: { max: 10 } } } })

  const me = []
  for (let i = 0; i < 11; i++) me.push((await (i % 2 === 0 ? a : b).app.inject({ url: '/auth/me', remoteAddress: '198.51.100.1' })).statusCode)
  t.same(me, [...Array(10).fill(200), 429], 'the global default: 10 requests over both instances, then 429 on either')
  t.equal((await a.app.inject({ url: '/auth/me', remoteAddress: '198.51.100.1' })).statusCode, 429)

  const register = []
  for (let i = 0; i < 6; i++) register.push((await (i % 2 === 0 ? a : b).app.inject({ method: 'POST', url: '/auth/register', remoteAddress: '198.51.100.2' })).statusCode)
  t.same(register, [200, 200, 200, 200, 200, 429], 'register: 5 per hour over both instances')

  for (let i = 0; i < 5; i++) t.equal((await login(i % 2 === 0 ? a.app : b.app, 'acct@example.com', 'wrong password guess', `10.30.0.${i}`)).statusCode, 401)
  t.equal((await login(b.app, 'acct@example.com', PASSWORD, '10.30.1.1')).statusCode, 429, 'failures on both instances count against one account')
})

t.test('two whole Gatehouse apps with REDIS_URL enforce one limit', { skip }, async (t) => {
  const prefix = uniquePrefix()
  const options = { env: { REDIS_URL: url! }, app: { rateLimit: { prefix, classes: { default: { max: 6 } } } } }
  const one = await build(t, options)
  const two = await build(t, options)
  const statuses = []
  for (let i = 0; i < 7; i++) statuses.push((await (i % 2 === 0 ? one : two).app.inject({ url: '/health', remoteAddress: '198.51.100.3' })).statusCode)
  t.same(statuses, [...Array(6).fill(200), 429])
  const limited = await two.app.inject({ url: '/health', remoteAddress: '198.51.100.3' })
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.equal(limited.headers['x-ratelimit-limit'], '6')
})
