// While the bus cannot deliver notices (bus.healthy false), cached user state and the in-memory
// revoked-session set may be stale: every request then reads the user and the session from the
// database. The bus here is a stand-in whose health the test controls; the store is real.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { store } from '../../plugins/store/index.ts'
import { tokens } from '../../plugins/tokens/index.ts'
import { authenticate } from '../../plugins/authenticate/index.ts'
import type { Bus, BusListener } from '../../plugins/redis/index.ts'
import { errorHandler } from '../../lib/error-handler.ts'
import { createTestDatabase } from '../helpers/databases.ts'

function controllableBus (): Bus & { setHealthy: (value: boolean) => void } {
  let healthy = true
  const listeners = new Map<string, BusListener[]>()
  return {
    async publish (channel, message) { for (const fn of listeners.get(channel) ?? []) fn(message) },
    subscribe (channel, fn) { listeners.set(channel, [...(listeners.get(channel) ?? []), fn]) },
    onResync () {},
    get healthy () { return healthy },
    distributed: true,
    setHealthy (value) { healthy = value }
  }
}

t.test('an unhealthy bus bypasses the cached state', async (t) => {
  const db = await createTestDatabase('sqlite')
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'))
  const bus = controllableBus()
  const app = Fastify()
  app.setErrorHandler(errorHandler)
  await app.register(store, { databaseUrl: db.url })
  app.decorate('bus', bus)
  await app.register(tokens, { issuer: 'http://127.0.0.1:3000', keysDir })
  await app.register(authenticate)
  app.get('/protected', { onRequest: app.authenticate }, async (request) => request.user)
  t.teardown(async () => {
    await app.close()
    await db.drop()
    rmSync(keysDir, { recursive: true, force: true })
  })

  const user = await app.store.prisma.user.create({ data: { email: 'degraded@example.com' } })
  const family = await app.store.prisma.refreshFamily.create({ data: { userId: user.id, clientId: 'gatehouse', absoluteExpiresAt: new Date(Date.now() + 86_400_000) } })
  const { access_token: token } = await app.tokens.sign({ id: user.id, roles: ['user'], tokenVersion: 0 }, { sid: family.id })
  const call = async (): Promise<{ statusCode: number, code?: string }> => {
    const res = await app.inject({ url: '/protected', headers: { authorization: `Bearer ${token}` } })
    return { statusCode: res.statusCode, code: res.json().code }
  }

  t.equal((await call()).statusCode, 200)
  // A change made without a notice (as if the notice were lost): the healthy cache still serves.
  await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } })
  t.equal((await call()).statusCode, 200, 'healthy bus: the cached state is trusted')
  bus.setHealthy(false)
  t.equal((await call()).code, 'ACCOUNT_DISABLED', 'unhealthy bus: the database is read')

  await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'active' } })
  t.equal((await call()).statusCode, 200)
  // A session revoked in the database by another instance whose notice never arrived.
  await app.store.prisma.refreshFamily.update({ where: { id: family.id }, data: { revokedAt: new Date(), revokedReason: 'logout' } })
  t.equal((await call()).code, 'TOKEN_REVOKED', 'unhealthy bus: the session is read from refresh_families')
  t.same(await app.tokens.userState(user.id), { id: user.id, email: 'degraded@example.com', status: 'active', deleted: false, roles: ['user'], tokenVersion: 0 })
})
