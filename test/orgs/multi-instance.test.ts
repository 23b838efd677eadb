// Two instances sharing one database, one keys folder and Redis: a membership removed or
// demoted through one instance stops working on the other, whose membership cache was warm.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../server/app.ts'
import { captureLogs, testConfig } from '../helpers/build.ts'
import { createTestDatabase, postgresAdminUrl } from '../helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON } from '../helpers/redis.ts'
import { startSmtp } from '../helpers/smtp.ts'
import { call } from '../rbac/fixtures.ts'
import { join as joinOrg, verifiedAccount } from './helpers.ts'

const redis = await redisUrl()

t.test('membership changes reach every instance through the bus', { skip: redis === null ? REDIS_SKIP_REASON : false }, async (t) => {
  const db = await createTestDatabase(await postgresAdminUrl() === null ? 'sqlite' : 'postgresql')
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'))
  const smtp = await startSmtp()
  t.teardown(() => smtp.close())
  const env = { DATABASE_URL: db.url, REDIS_URL: redis ?? '', AUTH_KEYS_DIR: keysDir, SMTP_URL: smtp.url }
  const one = await buildApp(testConfig(env), { logger: captureLogs().logger })
  await one.ready()
  const two = await buildApp(testConfig(env), { logger: captureLogs().logger })
  await two.ready()
  t.teardown(async () => {
    await Promise.all([one.close(), two.close()])
    await db.drop()
    rmSync(keysDir, { recursive: true, force: true })
  })
  t.ok(one.bus.distributed && two.bus.distributed, 'both instances are on Redis')

  const ada = await verifiedAccount(one, { email: 'ada@example.com' })
  const bob = await verifiedAccount(one, { email: 'bob@example.com' })
  const org = (await call(one, 'POST', '/orgs', ada, { name: 'Shared' })).body.id as string
  await joinOrg(one, smtp, org, ada, bob, 'admin')

  async function eventually (check: () => Promise<boolean>): Promise<boolean> {
    // A bound for a loaded CI machine, not a latency assertion: notices usually arrive in milliseconds.
    for (let i = 0; i < 250; i++) {
      if (await check()) return true
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return false
  }

  t.ok(await eventually(async () => (await call(two, 'GET', `/orgs/${org}`, bob)).status === 200), 'bob reads through instance two (its cache is now warm)')
  t.equal((await call(two, 'GET', `/orgs/${org}`, bob)).status, 200)

  t.equal((await call(one, 'PATCH', `/orgs/${org}/members/${bob.id}`, ada, { role: 'viewer' })).status, 200, 'demoted through instance one')
  t.ok(await eventually(async () => (await call(two, 'POST', `/orgs/${org}/members`, bob, { email: 'ada@example.com', role: 'viewer' })).status === 403),
    'instance two refuses bob\'s admin action')
  t.equal((await call(two, 'GET', `/orgs/${org}`, bob)).status, 200, 'viewer rights remain')

  t.equal((await call(one, 'DELETE', `/orgs/${org}/members/${bob.id}`, ada)).status, 204, 'removed through instance one')
  t.ok(await eventually(async () => (await call(two, 'GET', `/orgs/${org}`, bob)).status === 404), 'instance two refuses bob')
})
