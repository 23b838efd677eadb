// The rotation's statements through the store's own connection (the driver adapter, without
// Prisma's client runtime) must read and write exactly what the Prisma raw-query path does, on
// SQLite and on PostgreSQL.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createRotationStore, type RotationWrite } from '../../plugins/sessions/rotation-store.ts'
import { createPrismaClient } from '../../plugins/store/client.ts'
import { createTestDatabase, providers } from '../helpers/databases.ts'

for (const { provider, skip } of await providers()) t.test(`${provider}: the direct path and the Prisma path agree`, { skip }, async (t) => {
  const db = await createTestDatabase(provider)
  const { prisma, sqlite, postgres } = await createPrismaClient(db.url)
  t.teardown(async () => { await prisma.$disconnect(); await db.drop() })
  t.ok(provider === 'sqlite' ? sqlite : postgres, 'the client the store creates has its connection')
  const direct = createRotationStore(prisma, provider, sqlite, postgres)
  const viaPrisma = createRotationStore(prisma, provider)

  const now = new Date('2026-12-06T10:00:00.123Z')
  const later = new Date(now.getTime() + 3_600_000)
  const user = await prisma.user.create({ data: { email: 'rot@example.com', roles: '["user","admin"]', tokenVersion: 3 } })
  const family = await prisma.refreshFamily.create({
    data: {
      userId: user.id,
      clientId: 'gatehouse',
      absoluteExpiresAt: later,
      createdAt: now,
      authentication: { create: { amr: '["pwd","otp"]', authTime: now } }
    }
  })
  await prisma.refreshToken.create({ data: { familyId: family.id, userId: user.id, clientId: 'gatehouse', tokenHash: 'hash-1', idleExpiresAt: later, absoluteExpiresAt: later, createdAt: now } })
  const plain = await prisma.refreshFamily.create({ data: { userId: user.id, clientId: 'gatehouse', absoluteExpiresAt: later, createdAt: now } })
  await prisma.refreshToken.create({ data: { familyId: plain.id, userId: user.id, clientId: 'gatehouse', tokenHash: 'hash-plain', idleExpiresAt: later, absoluteExpiresAt: later, createdAt: now } })

  for (const hash of ['hash-1', 'hash-plain', 'no-such-hash']) {
    t.same(await direct.read(hash), await viaPrisma.read(hash), `read(${hash}) is the same on both paths`)
  }
  const row = await direct.read('hash-1')
  t.ok(row?.idleExpiresAt instanceof Date && row.idleExpiresAt.getTime() === later.getTime(), 'dates come back as Dates, to the millisecond')
  t.equal(row?.user.tokenVersion, 3, 'integers as numbers')
  t.same(row?.authentication, { amr: '["pwd","otp"]', authTime: now })
  t.equal((await direct.read('hash-plain'))?.authentication, null, 'no authentication row: null')

  const write = (tokenHash: string, over: Partial<RotationWrite> = {}): RotationWrite => ({
    tokenHash,
    clientId: 'gatehouse',
    now: new Date(now.getTime() + 1000),
    roles: '["user","admin"]',
    tokenVersion: 3,
    successor: { id: randomUUID(), tokenHash: `${tokenHash}-next-${randomUUID()}`, idleExpiresAt: later, absoluteExpiresAt: later },
    activity: { ip: '203.0.113.9', userAgent: 'agent/1' },
    ...over
  })

  t.equal(await direct.rotate(write('hash-1', { tokenVersion: 4 })), false, 'a changed token version: not rotated')
  t.equal(await direct.rotate(write('hash-1', { clientId: 'other' })), false, 'another client: not rotated')
  t.equal(await prisma.refreshToken.count({ where: { familyId: family.id } }), 1, 'no successor for a refused rotation')

  const w = write('hash-1')
  const results = await Promise.all([direct.rotate(w), direct.rotate(write('hash-1')), viaPrisma.rotate(write('hash-1'))])
  t.same(results.filter(Boolean).length, 1, 'of three concurrent rotations of one token exactly one wins')
  t.equal(results[0], true, 'the first asked wins')
  const used = await prisma.refreshToken.findUnique({ where: { tokenHash: 'hash-1' } })
  t.equal(used?.successorId, w.successor.id)
  t.equal(used?.usedAt?.getTime(), w.now.getTime())
  const successor = await prisma.refreshToken.findUnique({ where: { id: w.successor.id } })
  t.equal(successor?.tokenHash, w.successor.tokenHash)
  t.equal(successor?.parentId, used?.id)
  t.equal(successor?.familyId, family.id)
  t.equal(successor?.idleExpiresAt.getTime(), later.getTime())
  t.equal(await prisma.refreshToken.count({ where: { familyId: family.id } }), 2, 'one successor only')
  // SQLite records the session's last use in the rotation's transaction; PostgreSQL in a statement of its own.
  t.equal(direct.recordsActivity, provider === 'sqlite')
  if (!direct.recordsActivity) await direct.noteActivity(family.id, w.now, w.activity)
  const after = await prisma.refreshFamily.findUnique({ where: { id: family.id } })
  t.equal(after?.lastUsedAt?.getTime(), w.now.getTime(), 'the session\'s last use')
  t.equal(after?.ip, '203.0.113.9')
  t.equal(after?.userAgent, 'agent/1')

  // The successor is read back by the Prisma path as it was written by the direct one.
  t.same(await direct.read(w.successor.tokenHash), await viaPrisma.read(w.successor.tokenHash))
})

t.test('SQLite direct path: a failure inside the transaction rolls it all back', async (t) => {
  const db = await createTestDatabase('sqlite')
  const { prisma, sqlite } = await createPrismaClient(db.url)
  t.teardown(async () => { await prisma.$disconnect(); await db.drop() })
  const direct = createRotationStore(prisma, 'sqlite', sqlite)
  const now = new Date()
  const later = new Date(now.getTime() + 3_600_000)
  const user = await prisma.user.create({ data: { email: 'fail@example.com' } })
  const family = await prisma.refreshFamily.create({ data: { userId: user.id, clientId: 'gatehouse', absoluteExpiresAt: later } })
  const first = await prisma.refreshToken.create({ data: { familyId: family.id, userId: user.id, clientId: 'gatehouse', tokenHash: 'h-a', idleExpiresAt: later, absoluteExpiresAt: later } })
  await prisma.refreshToken.create({ data: { familyId: family.id, userId: user.id, clientId: 'gatehouse', tokenHash: 'h-taken', idleExpiresAt: later, absoluteExpiresAt: later } })

  // The successor's hash collides with an existing token: the INSERT fails after the UPDATE matched.
  const err = await direct.rotate({
    tokenHash: 'h-a',
    clientId: 'gatehouse',
    now,
    roles: user.roles,
    tokenVersion: user.tokenVersion,
    successor: { id: randomUUID(), tokenHash: 'h-taken', idleExpiresAt: later, absoluteExpiresAt: later },
    activity: { ip: null, userAgent: null }
  }).catch((e: unknown) => e)
  t.ok(err instanceof Error, 'the rotation fails')
  const row = await prisma.refreshToken.findUnique({ where: { id: first.id } })
  t.equal(row?.usedAt, null, 'the conditional update was rolled back')
  t.equal(row?.successorId, null)
  t.equal(await prisma.refreshToken.count({ where: { familyId: family.id } }), 2, 'no successor')
  t.equal((await prisma.refreshFamily.findUnique({ where: { id: family.id } }))?.lastUsedAt, null)
  // The connection is usable again: no transaction left open, the lock released.
  t.equal(await direct.rotate({
    tokenHash: 'h-a',
    clientId: 'gatehouse',
    now,
    roles: user.roles,
    tokenVersion: user.tokenVersion,
    successor: { id: randomUUID(), tokenHash: 'h-fresh', idleExpiresAt: later, absoluteExpiresAt: later },
    activity: { ip: null, userAgent: null }
  }), true, 'the same token rotates afterwards')
  t.equal(await prisma.user.count(), 1, 'and Prisma\'s own queries still run')
})
