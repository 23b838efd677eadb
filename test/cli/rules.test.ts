// The CLI cannot break a rule the HTTP API enforces: it goes through fastify.users, so roles
// must be roles of the hierarchy, the last active admin cannot be disabled or demoted, every
// change is audited (via: cli) and takes effect at once on a running instance.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { createTestDatabase } from '../helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON } from '../helpers/redis.ts'
import { buildApp } from '../../server/app.ts'
import { testConfig, captureLogs } from '../helpers/build.ts'
import { cli } from './helpers.ts'

const PASSWORD = 'a passphrase long enough for the policy'

t.test('the CLI keeps the rules of the admin API', { timeout: 180_000 }, async (t) => {
  const redis = await redisUrl()
  const db = await createTestDatabase('sqlite')
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-rules-'))
  t.teardown(async () => { await db.drop(); rmSync(keysDir, { recursive: true, force: true }) })
  const env: Record<string, string> = { DATABASE_URL: db.url, AUTH_KEYS_DIR: keysDir, AUTH_ISSUER: 'http://127.0.0.1:3000', ...(redis === null ? {} : { REDIS_URL: redis }) }
  const app = await buildApp(testConfig(env), { logger: captureLogs().logger })
  t.teardown(() => app.close())
  await app.ready()
  const prisma = app.store.prisma

  const root = await cli(['users', 'create', 'root@example.com', '--role', 'admin', '--password-stdin'], env, `${PASSWORD}\n`)
  t.equal(root.code, 0, root.stderr)

  t.test('roles must be roles of the global hierarchy', async (t) => {
    const created = await cli(['users', 'create', 'odd@example.com', '--role', 'superuser', '--password-stdin'], env, `${PASSWORD}\n`)
    t.equal(created.code, 1)
    t.match(created.stderr, /INVALID_ROLE/)
    t.equal(await prisma.user.count({ where: { email: 'odd@example.com' } }), 0, 'nothing is created')
    const set = await cli(['users', 'set-role', 'root@example.com', 'admin,superuser'], env)
    t.equal(set.code, 1)
    t.match(set.stderr, /INVALID_ROLE/)
    t.same(JSON.parse((await prisma.user.findUniqueOrThrow({ where: { email: 'root@example.com' } })).roles), ['admin'], 'the roles are unchanged')
  })

  t.test('the last active admin cannot be demoted or disabled', async (t) => {
    const demote = await cli(['users', 'set-role', 'root@example.com', 'user'], env)
    t.equal(demote.code, 1)
    t.match(demote.stderr, /CONFLICT/)
    const disable = await cli(['users', 'disable', 'root@example.com'], env)
    t.equal(disable.code, 1)
    t.match(disable.stderr, /CONFLICT/)
    const row = await prisma.user.findUniqueOrThrow({ where: { email: 'root@example.com' } })
    t.equal(row.status, 'active')
    t.same(JSON.parse(row.roles), ['admin'])

    // The HTTP API answers the same rule the same way.
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'root@example.com', password: PASSWORD } })
    const http = await app.inject({ method: 'PATCH', url: `/admin/users/${row.id}`, headers: { authorization: `Bearer ${login.json().access_token}` }, payload: { disabled: true } })
    t.equal(http.json().code, 'CONFLICT')

    t.equal((await cli(['users', 'create', 'second@example.com', '--role', 'admin', '--password-stdin'], env, `${PASSWORD}\n`)).code, 0)
    const allowed = await cli(['users', 'set-role', 'root@example.com', 'user'], env)
    t.equal(allowed.code, 0, allowed.stderr)
  })

  t.test('a CLI change is audited and takes effect at once on a running instance', { skip: redis === null ? REDIS_SKIP_REASON : false }, async (t) => {
    const email = `dev-${randomUUID()}@example.com`
    t.equal((await cli(['users', 'create', email, '--password-stdin'], env, `${PASSWORD}\n`)).code, 0)
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })
    const auth = { authorization: `Bearer ${login.json().access_token}` }
    t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: auth })).statusCode, 200, 'the user state is cached by the running instance')

    const disabled = await cli(['users', 'disable', email], env)
    t.equal(disabled.code, 0, disabled.stderr)
    // Redis delivers in order: once this instance hears its own later notice, it has heard the CLI's.
    const sentinel = `cli-rules-${randomUUID()}`
    const heard = new Promise<void>((resolve) => app.bus.subscribe(sentinel, () => resolve()))
    await app.bus.publish(sentinel, {})
    await heard
    const after = await app.inject({ method: 'GET', url: '/auth/me', headers: auth })
    t.equal(after.statusCode, 401)
    t.equal(after.json().code, 'ACCOUNT_DISABLED', 'the cached state was dropped by the CLI\'s notice')

    const user = await prisma.user.findUniqueOrThrow({ where: { email } })
    const events = await prisma.auditEvent.findMany({ where: { subjectId: user.id, type: 'user_disabled' } })
    t.equal(events.length, 1)
    t.same(JSON.parse(events[0].details ?? '{}'), { via: 'cli' })
    t.equal(events[0].actorId, null)
  })
})
