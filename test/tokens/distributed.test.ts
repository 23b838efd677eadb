// Two instances sharing one database, one keys folder and one Redis: a revocation or a user
// change made on one is effective on the other at its next request; while the Redis
// subscription is down the cached user state is bypassed; a database fault is a 503, never a
// 200 or a 401.
import t from 'tap'
import { connect, createServer, type Socket } from 'node:net'
import { createTestDatabase, providers } from '../helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON } from '../helpers/redis.ts'
import { buildProtected, createUser, tokenFor, bearer } from './helpers.ts'

const redis = await redisUrl()

t.test('two instances through Redis', { skip: redis === null ? REDIS_SKIP_REASON : false }, async (t) => {
  const env = { REDIS_URL: redis as string }
  const a = await buildProtected(t, { env })
  const b = await buildProtected(t, { env, databaseUrl: a.databaseUrl, keysDir: a.config.keysDir })
  t.ok(a.app.bus.distributed && b.app.bus.distributed, 'both instances use Redis')

  const user = await createUser(a.app)
  const one = await tokenFor(a.app, user)
  const two = await tokenFor(a.app, user)
  t.equal((await b.app.inject({ url: '/protected', headers: bearer(one.token) })).statusCode, 200, 'B accepts (and caches) a token signed by A')
  t.equal((await b.app.inject({ url: '/protected', headers: bearer(two.token) })).statusCode, 200)

  await a.app.tokens.revokeSids([one.sid], Math.floor(Date.now() / 1000) + 900)
  await t.resolves(waitFor(async () => (await b.app.inject({ url: '/protected', headers: bearer(one.token) })).json().code === 'TOKEN_REVOKED'), 'B refuses the session A revoked')
  t.equal((await b.app.inject({ url: '/protected', headers: bearer(two.token) })).statusCode, 200)

  await a.app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } })
  await a.app.tokens.userChanged(user.id)
  await t.resolves(waitFor(async () => (await b.app.inject({ url: '/protected', headers: bearer(two.token) })).json().code === 'ACCOUNT_DISABLED'), 'B drops its cached state when A announces a change')
})

/** Polls `check` until it holds; the notice travels through Redis, so it is not synchronous. */
async function waitFor (check: () => Promise<boolean>, attempts = 50): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error('condition not reached')
}

t.test('a database fault on a state miss is a 503', { skip: (await providers())[1].skip }, async (t) => {
  // The app reaches PostgreSQL through a TCP proxy that the test then kills: a database outage.
  const db = await createTestDatabase('postgresql')
  t.teardown(() => db.drop())
  const target = new URL(db.url)
  const sockets = new Set<Socket>()
  const proxy = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const drop = (): void => { client.destroy(); upstream.destroy() }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const viaProxy = new URL(db.url)
  viaProxy.hostname = '127.0.0.1'
  viaProxy.port = String((proxy.address() as { port: number }).port)

  const { app } = await buildProtected(t, { provider: 'postgresql', databaseUrl: viaProxy.toString() })
  const user = await createUser(app)
  const { token } = await tokenFor(app, user)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  await app.tokens.userChanged(user.id)

  await new Promise<void>((resolve) => {
    proxy.close(() => resolve())
    for (const socket of sockets) socket.destroy()
  })
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 503, 'the user state cannot be read: 503, not 200 and not 401')
  t.equal(res.json().code, 'SERVICE_UNAVAILABLE')
})
