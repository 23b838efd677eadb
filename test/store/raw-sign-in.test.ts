// The raw statements of a password sign-in and of a new session (plugins/credentials/user-store.ts,
// plugins/sessions/family-store.ts) on SQLite and PostgreSQL, through Prisma's raw queries and
// through the driver adapter connection of the client the store creates: what they write reads back through the
// ORM exactly as the ORM would have written it, and the login stamp stays conditional.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createTestDatabase, providers } from '../helpers/databases.ts'
import { createPrismaClient } from '../../plugins/store/client.ts'
import { createSignInStore } from '../../plugins/credentials/user-store.ts'
import { createFamilyStore } from '../../plugins/sessions/family-store.ts'

const paths = [{ path: 'raw queries', direct: false }, { path: 'the adapter connection', direct: true }]

for (const { provider, skip } of await providers()) for (const { path, direct } of paths) {
  t.test(`raw sign-in statements on ${provider}, ${path}`, { skip }, async (t) => {
    const db = await createTestDatabase(provider)
    const { prisma, sqlite, postgres } = await createPrismaClient(db.url)
    t.teardown(async () => { await prisma.$disconnect(); await db.drop() })
    if (direct) t.ok(provider === 'sqlite' ? sqlite : postgres, 'the client the store creates offers its connection')
    const signIns = direct ? createSignInStore(prisma, sqlite, postgres) : createSignInStore(prisma)
    const createFamily = direct ? createFamilyStore(prisma, provider, sqlite, postgres) : createFamilyStore(prisma, provider)

    const created = await prisma.user.create({
      data: { email: 'raw@example.com', name: 'Raw Reader', passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', roles: '["user","auditor"]', tokenVersion: 3, passwordChangedAt: new Date('2026-01-02T03:04:05.678Z'), emailVerifiedAt: new Date('2026-02-03T04:05:06.789Z') }
    })

    t.test('findByEmail reads every column as the ORM does', async (t) => {
      const raw = await signIns.findByEmail('raw@example.com')
      const orm = await prisma.user.findUnique({ where: { email: 'raw@example.com' } })
      t.same(raw, orm)
      t.ok(raw?.createdAt instanceof Date && raw.passwordChangedAt instanceof Date, 'timestamps are Dates')
      t.equal(raw?.tokenVersion, 3)
      t.equal(await signIns.findByEmail('nobody@example.com'), null, 'no row: null')
      t.equal(await signIns.findByEmail("raw@example.com' OR '1'='1"), null, 'the email is a parameter, not SQL')
    })

    t.test('stampLogin writes lastLoginAt only while the verified hash is still stored', async (t) => {
      const at = new Date('2026-12-01T10:11:12.345Z')
      t.equal(await signIns.stampLogin(created.id, created.passwordHash!, at), true)
      const after = await prisma.user.findUniqueOrThrow({ where: { id: created.id } })
      t.same(after.lastLoginAt, at, 'read back by the ORM, to the millisecond')
      t.same(after.updatedAt, at, 'updatedAt moves as with the ORM')
      t.equal(after.passwordHash, created.passwordHash, 'nothing else changed')

      // A password change between the verification and the stamp: the stamp writes nothing.
      await prisma.user.update({ where: { id: created.id }, data: { passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3' } })
      const later = new Date('2026-12-02T00:00:00.000Z')
      t.equal(await signIns.stampLogin(created.id, created.passwordHash!, later), false)
      t.same((await prisma.user.findUniqueOrThrow({ where: { id: created.id } })).lastLoginAt, at, 'the stamp did not land')
    })

    t.test('createFamily stores a password-only session as the nested ORM create did', async (t) => {
      const id = randomUUID()
      const now = new Date('2026-12-03T08:00:00.123Z')
      const absoluteExpiresAt = new Date('2027-01-02T08:00:00.123Z')
      const idleExpiresAt = new Date('2026-12-10T08:00:00.123Z')
      await createFamily({ id, userId: created.id, clientId: 'gatehouse', now, absoluteExpiresAt, activity: { ip: '203.0.113.9', userAgent: 'tap' }, token: { tokenHash: `hash-${id}`, idleExpiresAt }, authentication: null })
      const family = await prisma.refreshFamily.findUniqueOrThrow({ where: { id }, include: { tokens: true, authentication: true } })
      t.same(
        { userId: family.userId, clientId: family.clientId, createdAt: family.createdAt, absoluteExpiresAt: family.absoluteExpiresAt, revokedAt: family.revokedAt, revokedReason: family.revokedReason, lastUsedAt: family.lastUsedAt, ip: family.ip, userAgent: family.userAgent, authentication: family.authentication },
        { userId: created.id, clientId: 'gatehouse', createdAt: now, absoluteExpiresAt, revokedAt: null, revokedReason: null, lastUsedAt: null, ip: '203.0.113.9', userAgent: 'tap', authentication: null }
      )
      t.equal(family.tokens.length, 1)
      const [token] = family.tokens
      t.match(token.id, /^[0-9a-f-]{36}$/, 'the token row has a UUID like the ORM default')
      t.same(
        { userId: token.userId, clientId: token.clientId, tokenHash: token.tokenHash, parentId: token.parentId, usedAt: token.usedAt, successorId: token.successorId, revokedAt: token.revokedAt, idleExpiresAt: token.idleExpiresAt, absoluteExpiresAt: token.absoluteExpiresAt, createdAt: token.createdAt },
        { userId: created.id, clientId: 'gatehouse', tokenHash: `hash-${id}`, parentId: null, usedAt: null, successorId: null, revokedAt: null, idleExpiresAt, absoluteExpiresAt, createdAt: now }
      )
    })

    t.test('createFamily stores the authentication of a session that is not password-only', async (t) => {
      const id = randomUUID()
      const now = new Date('2026-12-03T09:00:00.000Z')
      await createFamily({ id, userId: created.id, clientId: 'gatehouse', now, absoluteExpiresAt: new Date(now.getTime() + 86_400_000), activity: { ip: null, userAgent: null }, token: { tokenHash: `hash-${id}`, idleExpiresAt: new Date(now.getTime() + 3_600_000) }, authentication: { amr: '["pwd","otp","mfa"]', authTime: now } })
      const family = await prisma.refreshFamily.findUniqueOrThrow({ where: { id }, include: { tokens: true, authentication: true } })
      t.same(family.authentication, { familyId: id, amr: '["pwd","otp","mfa"]', authTime: now })
      t.equal(family.tokens.length, 1)
      t.equal(family.ip, null)
    })

    t.test('createFamily is all or nothing', async (t) => {
      const id = randomUUID()
      const now = new Date()
      // The token hash is unique: a second session with a taken hash fails and leaves no family behind.
      const taken = (await prisma.refreshToken.findFirstOrThrow()).tokenHash
      await t.rejects(createFamily({ id, userId: created.id, clientId: 'gatehouse', now, absoluteExpiresAt: new Date(now.getTime() + 1000), activity: { ip: null, userAgent: null }, token: { tokenHash: taken, idleExpiresAt: new Date(now.getTime() + 1000) }, authentication: null }))
      t.equal(await prisma.refreshFamily.findUnique({ where: { id } }), null, 'no family without its token')
      await t.rejects(createFamily({ id, userId: randomUUID(), clientId: 'gatehouse', now, absoluteExpiresAt: new Date(now.getTime() + 1000), activity: { ip: null, userAgent: null }, token: { tokenHash: `hash-${id}`, idleExpiresAt: new Date(now.getTime() + 1000) }, authentication: null }), 'an unknown user is refused by the foreign key')
      t.equal(await prisma.refreshFamily.findUnique({ where: { id } }), null)
    })
  })
}
