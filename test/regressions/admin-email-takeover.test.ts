// Found by an outside test: with no ADMIN_EMAIL set, anyone registered `Boss@Example.com` with a
// password of their own; a restart with ADMIN_EMAIL=boss@example.com promoted that account and
// left its password unchanged, so the registrant reached the admin API and the operator's
// ADMIN_PASSWORD was refused. CONTRACT §2: the account is promoted only with ADMIN_PASSWORD as its
// password, and its sessions, access tokens and API keys are revoked, with a warning.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../server/app.ts'
import { captureLogs, testConfig } from '../helpers/build.ts'
import { createTestDatabase, providers } from '../helpers/databases.ts'

const ATTACKER_PASSWORD = 'attacker-chose-this-passphrase-1'
const ADMIN_PASSWORD = 'operator-admin-passphrase-7731'

async function listen (env: Record<string, string>): Promise<{ app: FastifyInstance, base: string, logs: string[] }> {
  const { logger, logs } = captureLogs()
  const app = await buildApp(testConfig(env), { logger })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return { app, base: `http://127.0.0.1:${address.port}`, logs }
}

async function call (base: string, method: string, path: string, init: { token?: string, authorization?: string, body?: unknown } = {}): Promise<{ status: number, body: any }> {
  const headers: Record<string, string> = {}
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
  if (init.authorization !== undefined) headers.authorization = init.authorization
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(base + path, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? null : JSON.parse(text) }
}

for (const { provider, skip } of await providers()) {
  t.test(`ADMIN_EMAIL cannot be taken over by registering first, on ${provider}`, { skip }, async (t) => {
    const db = await createTestDatabase(provider)
    t.teardown(() => db.drop())
    // The same signing keys across the restarts, as a real deployment has.
    const keys = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'))
    t.teardown(() => rmSync(keys, { recursive: true, force: true }))

    // Before ADMIN_EMAIL is set: someone registers the address, logs in and makes an API key.
    const before = await listen({ DATABASE_URL: db.url, AUTH_KEYS_DIR: keys })
    const registered = await call(before.base, 'POST', '/auth/register', { body: { email: 'Boss@Example.com', password: ATTACKER_PASSWORD } })
    t.equal(registered.status, 201)
    const stolen = registered.body as { access_token: string, refresh_token: string }
    const key = await call(before.base, 'POST', '/auth/api-keys', { token: stolen.access_token, body: { name: 'mine' } })
    t.equal(key.status, 201)
    await before.app.close()

    // The operator starts with ADMIN_EMAIL and ADMIN_PASSWORD.
    const after = await listen({ DATABASE_URL: db.url, AUTH_KEYS_DIR: keys, ADMIN_EMAIL: 'boss@example.com', ADMIN_PASSWORD })
    t.teardown(() => after.app.close())
    const warning = after.logs.map((l) => JSON.parse(l) as { level: number, msg: string }).find((l) => l.msg.includes('bootstrap admin'))
    t.equal(warning?.level, 40, 'the promotion is a warning')
    t.match(warning?.msg, /password is now ADMIN_PASSWORD/)
    t.notOk(after.logs.join('\n').includes(ADMIN_PASSWORD), 'the password is never logged')

    const attacker = await call(after.base, 'POST', '/auth/login', { body: { email: 'boss@example.com', password: ATTACKER_PASSWORD } })
    t.equal(attacker.status, 401, "the registrant's password no longer works")
    t.equal(attacker.body.code, 'INVALID_CREDENTIALS')
    t.equal((await call(after.base, 'GET', '/admin/users', { token: stolen.access_token })).body.code, 'TOKEN_REVOKED', 'nor its access token')
    t.equal((await call(after.base, 'POST', '/auth/refresh', { body: { refresh_token: stolen.refresh_token } })).status, 401, 'nor its refresh token')
    t.equal((await call(after.base, 'GET', '/auth/me', { authorization: `ApiKey ${key.body.key as string}` })).status, 401, 'nor its API key')

    const operator = await call(after.base, 'POST', '/auth/login', { body: { email: 'boss@example.com', password: ADMIN_PASSWORD } })
    t.equal(operator.status, 200, 'ADMIN_PASSWORD logs in')
    t.equal((await call(after.base, 'GET', '/admin/users', { token: operator.body.access_token })).status, 200, 'and reaches the admin API')
    await after.app.close()

    // A restart leaves an active admin alone (its password may have been changed since).
    const again = await listen({ DATABASE_URL: db.url, AUTH_KEYS_DIR: keys, ADMIN_EMAIL: 'boss@example.com', ADMIN_PASSWORD })
    t.teardown(() => again.app.close())
    t.ok(again.logs.some((l) => l.includes('already admin')))
    const still = await call(again.base, 'GET', '/admin/users', { token: operator.body.access_token })
    t.equal(still.status, 200, "the operator's session survives a restart")
  })
}
