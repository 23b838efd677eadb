import t from 'tap'
import Fastify from 'fastify'
import { store, isUniqueViolation } from '../../plugins/store/index.ts'
import { isGatehouseError } from '../../lib/errors.ts'
import { createTestDatabase, providers } from '../helpers/databases.ts'

for (const { provider, skip } of await providers()) {
  t.test(`store on ${provider}`, { skip }, async (t) => {
    const db = await createTestDatabase(provider)
    const app = Fastify()
    await app.register(store, { databaseUrl: db.url })
    t.teardown(async () => { await app.close(); await db.drop() })
    await app.ready()
    const { prisma } = app.store
    t.equal(app.store.provider, provider)
    t.equal(await app.store.ping(), true, 'the database answers')

    const user = await prisma.user.create({ data: { email: 'ada@example.com', name: 'Ada', passwordHash: '$argon2id$stub' } })
    t.match(user.id, /^[0-9a-f-]{36}$/, 'ids are uuids')
    t.same(JSON.parse(user.roles), ['user'], 'default global role')
    t.equal(user.status, 'active')
    t.equal(user.tokenVersion, 0)

    const org = await prisma.organization.create({ data: { name: 'Acme', slug: 'acme' } })
    await prisma.membership.create({ data: { orgId: org.id, userId: user.id, role: 'admin' } })
    const family = await prisma.refreshFamily.create({ data: { userId: user.id, clientId: 'gatehouse', absoluteExpiresAt: new Date(Date.now() + 60_000) } })
    await prisma.refreshToken.create({
      data: { familyId: family.id, userId: user.id, clientId: 'gatehouse', tokenHash: 'h1', idleExpiresAt: new Date(Date.now() + 60_000), absoluteExpiresAt: family.absoluteExpiresAt }
    })
    await prisma.apiKey.create({ data: { userId: user.id, name: 'ci', prefix: 'gh_abc', keyHash: 'k1' } })
    await prisma.oAuthClient.create({ data: { id: 'svc', name: 'Service', secretHash: 'x', grants: '["client_credentials"]' } })
    await prisma.auditEvent.create({ data: { type: 'login', outcome: 'success', actorId: user.id } })

    const loaded = await prisma.user.findUnique({ where: { email: 'ada@example.com' }, include: { memberships: true, refreshTokens: true, apiKeys: true } })
    t.equal(loaded?.memberships[0].role, 'admin')
    t.equal(loaded?.refreshTokens.length, 1)
    t.equal(loaded?.apiKeys[0].prefix, 'gh_abc')

    // A conditional update reports how many rows it changed: the basis of atomic rotation.
    const first = await prisma.refreshToken.updateMany({ where: { tokenHash: 'h1', usedAt: null }, data: { usedAt: new Date() } })
    const second = await prisma.refreshToken.updateMany({ where: { tokenHash: 'h1', usedAt: null }, data: { usedAt: new Date() } })
    t.equal(first.count, 1)
    t.equal(second.count, 0)

    const duplicate = await prisma.user.create({ data: { email: 'ada@example.com' } }).catch((err: unknown) => err)
    t.ok(isUniqueViolation(duplicate), 'a unique violation becomes CONFLICT')
    t.equal((duplicate as { statusCode: number }).statusCode, 409)

    const missing = await prisma.user.update({ where: { id: '00000000-0000-0000-0000-000000000000' }, data: { name: 'x' } }).catch((err: unknown) => err)
    t.ok(isGatehouseError(missing) && missing.code === 'NOT_FOUND', 'record not found becomes NOT_FOUND')

    const inTx = await prisma.$transaction(async (tx) => {
      await tx.user.update({ where: { id: user.id }, data: { tokenVersion: { increment: 1 } } })
      return tx.user.findUniqueOrThrow({ where: { id: user.id } })
    })
    t.equal(inTx.tokenVersion, 1, 'interactive transactions work')

    await prisma.user.delete({ where: { id: user.id } })
    t.equal(await prisma.membership.count(), 0, 'memberships cascade with their user')
  })
}

t.test('an unreachable PostgreSQL gives SERVICE_UNAVAILABLE, not a stack', async (t) => {
  const app = Fastify()
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  await app.register(store, { databaseUrl: 'postgresql://postgres@127.0.0.1:1/none', migrations: 'skip' })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(await app.store.ping(500), false)
  const err = await app.store.prisma.user.findFirst().catch((e: unknown) => e)
  t.ok(isGatehouseError(err), 'a coded error')
  t.equal((err as { code: string }).code, 'SERVICE_UNAVAILABLE')
  t.equal((err as { statusCode: number }).statusCode, 503)
})

t.test('an app can hand the store its own Prisma client', async (t) => {
  const db = await createTestDatabase('sqlite')
  const { createPrismaClient } = await import('../../plugins/store/client.ts')
  const { prisma } = await createPrismaClient(db.url)
  const app = Fastify()
  await app.register(store, { prisma, provider: 'sqlite' })
  t.teardown(async () => { await app.close(); await prisma.$disconnect(); await db.drop() })
  await app.ready()
  t.equal(await app.store.prisma.user.count(), 0)
  await app.close()
  t.equal(await prisma.user.count(), 0, 'the app\'s own client stays connected after close')
})
