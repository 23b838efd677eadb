import Fastify from 'fastify'
import { rateLimit } from '../../plugins/rate-limit/index.ts'
import { redisClient } from '../../plugins/redis/index.ts'
const mode = process.argv[2]
const app = Fastify()
if (mode === 'upstream') {
  const { default: rl } = await import('@fastify/rate-limit')
  await app.register(rl, { max: 1_000_000_000 })
} else if (mode !== 'bare') {
  let redis = null
  if (mode === 'redis') { redis = redisClient('redis://127.0.0.1:6379'); await redis.connect() }
  await app.register(rateLimit, { redis, prefix: `bench:${process.pid}:`, classes: { default: { max: 1_000_000_000 }, login: { max: 1_000_000_000 } } })
}
app.get('/x', async () => ({ ok: true }))
app.post('/login', { config: { rateLimitClass: 'login' } }, async () => ({ ok: true }))
await app.listen({ port: 0, host: '127.0.0.1' })
console.log(JSON.stringify({ port: (app.server.address() as any).port }))
