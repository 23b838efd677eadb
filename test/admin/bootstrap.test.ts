// The bootstrap admin (ADMIN_EMAIL/ADMIN_PASSWORD): created with the password hashed, or an
// existing account promoted; idempotent across restarts; the password never logged.
import t from 'tap'
import { buildApp } from '../../server/app.ts'
import { captureLogs, testConfig } from '../helpers/build.ts'
import { createTestDatabase, providers } from '../helpers/databases.ts'
import { call, login } from '../rbac/fixtures.ts'

const PASSWORD = 'bootstrap-admin-passphrase-4471'

for (const { provider, skip } of await providers()) {
  t.test(`bootstrap admin on ${provider}`, { skip }, async (t) => {
    const db = await createTestDatabase(provider)
    t.teardown(() => db.drop())
    const env = { DATABASE_URL: db.url, ADMIN_EMAIL: ' Root@Example.com ', ADMIN_PASSWORD: PASSWORD }

    async function start () {
      const { logger, logs } = captureLogs()
      const app = await buildApp(testConfig(env), { logger })
      await app.ready()
      return { app, logs }
    }

    const first = await start()
    const user = await first.app.store.prisma.user.findUniqueOrThrow({ where: { email: 'root@example.com' } })
    t.same(JSON.parse(user.roles), ['admin'], 'created with the admin role')
    t.match(user.passwordHash, /^\$argon2id\$/, 'the password is stored as an argon2id hash')
    t.ok(await first.app.credentials.verifyPassword(user.passwordHash ?? '', PASSWORD), 'and verifies')
    t.ok(first.logs.some((l) => l.includes('bootstrap admin root@example.com: created')), 'a line says so')
    t.notOk(first.logs.join('\n').includes(PASSWORD), 'the password is never logged')
    const { token } = await login(first.app, user.id)
    t.equal((await call(first.app, 'GET', '/admin/users', token)).status, 200, 'the account reaches the admin API')
    await first.app.close()

    const second = await start()
    t.equal(await second.app.store.prisma.user.count({ where: { email: 'root@example.com' } }), 1, 'a restart creates nothing')
    t.ok(second.logs.some((l) => l.includes('already admin')))
    const same = await second.app.store.prisma.user.findUniqueOrThrow({ where: { email: 'root@example.com' } })
    t.equal(same.passwordHash, user.passwordHash, 'the password is left as it was')
    await second.app.store.prisma.user.update({ where: { id: user.id }, data: { roles: '["user"]', status: 'disabled' } })
    await second.app.close()

    const third = await start()
    const promoted = await third.app.store.prisma.user.findUniqueOrThrow({ where: { email: 'root@example.com' } })
    t.same(JSON.parse(promoted.roles), ['admin', 'user'], 'an existing account is promoted')
    t.equal(promoted.status, 'active', 'and enabled')
    t.ok(third.logs.some((l) => l.includes('promoted to admin')))
    await third.app.audit.flush()
    const events = await third.app.store.prisma.auditEvent.findMany({ where: { subjectId: user.id, type: 'roles_changed' } })
    t.equal(events.length, 2, 'creation and promotion are audited')
    t.notOk(JSON.stringify(events).includes(PASSWORD))
    await third.app.close()
  })
}

t.test('a weak ADMIN_PASSWORD stops start-up naming the variable', async (t) => {
  const db = await createTestDatabase('sqlite')
  t.teardown(() => db.drop())
  const { logger } = captureLogs()
  await t.rejects(buildApp(testConfig({ DATABASE_URL: db.url, ADMIN_EMAIL: 'root@example.com', ADMIN_PASSWORD: 'password' }), { logger }), /^ADMIN_PASSWORD: does not meet the password policy/)
})
