// Found by an outside test: an API key made with a stolen 15-minute token still worked after
// POST /auth/password and POST /auth/logout-all; keys never expired and could not be listed.
// CONTRACT §3 and §14: keys are listed (never shown again), may expire, record their last use, are
// revoked with logout-all and a password change, and an admin can list and revoke a user's keys.
import t from 'tap'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'

const PASSWORD = 'a long and decent passphrase 9'
const NEW_PASSWORD = 'another long decent passphrase 10'

for (const { provider, skip } of await providers()) {
  t.test(`API keys end with the sessions that made them, expire, and are listed, on ${provider}`, { skip }, async (t) => {
    const { app } = await build(t, { provider, env: { ADMIN_EMAIL: 'root@example.com', ADMIN_PASSWORD: PASSWORD } })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('no address')
    const base = `http://127.0.0.1:${address.port}`
    const call = async (method: string, path: string, authorization?: string, body?: unknown): Promise<{ status: number, body: any }> => {
      const headers: Record<string, string> = {}
      if (authorization !== undefined) headers.authorization = authorization
      if (body !== undefined) headers['content-type'] = 'application/json'
      const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
      const text = await res.text()
      return { status: res.status, body: text === '' ? null : JSON.parse(text) }
    }
    const bearer = (token: string): string => `Bearer ${token as string}`
    const apiKey = (key: string): string => `ApiKey ${key}`

    const ada = (await call('POST', '/auth/register', undefined, { email: 'ada@example.com', password: PASSWORD })).body
    const stolen = ada.access_token as string

    // A key made with a stolen token dies with a password change.
    const first = (await call('POST', '/auth/api-keys', bearer(stolen), { name: 'attacker' })).body
    t.equal(first.expires_at, null, 'a key without expires_in does not expire')
    t.equal((await call('GET', '/auth/me', apiKey(first.key))).status, 200)
    const login = (await call('POST', '/auth/login', undefined, { email: 'ada@example.com', password: PASSWORD })).body
    t.equal((await call('POST', '/auth/password', bearer(login.access_token), { current_password: PASSWORD, new_password: NEW_PASSWORD })).status, 204)
    t.equal((await call('GET', '/auth/me', apiKey(first.key))).status, 401, 'a password change revokes the key')

    // And with logout-all.
    const second = (await call('POST', '/auth/api-keys', bearer(login.access_token), { name: 'ci', expires_in: 3600 })).body
    const expiresAt = Date.parse(second.expires_at)
    t.ok(Math.abs(expiresAt - (Date.now() + 3600_000)) < 120_000, 'expires_at is an hour ahead')
    t.equal((await call('GET', '/auth/me', apiKey(second.key))).status, 200)
    await app.credentials.drain()
    const listed = (await call('GET', '/auth/api-keys', bearer(login.access_token))).body as Array<Record<string, unknown>>
    t.equal(listed.length, 1, 'only working keys are listed')
    t.same(Object.keys(listed[0]).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'prefix'], 'never the key or its hash')
    t.equal(listed[0].id, second.id)
    t.ok(typeof listed[0].last_used_at === 'string', 'its last use is recorded')
    t.notOk(JSON.stringify(listed).includes(second.key), 'the key is not shown again')
    t.equal((await call('POST', '/auth/logout-all', bearer(login.access_token))).status, 204)
    t.equal((await call('GET', '/auth/me', apiKey(second.key))).status, 401, 'logout-all revokes the key')

    // Expiry: a key past its expires_at stops working and is no longer listed.
    const fresh = (await call('POST', '/auth/login', undefined, { email: 'ada@example.com', password: NEW_PASSWORD })).body
    const third = (await call('POST', '/auth/api-keys', bearer(fresh.access_token), { name: 'short', expires_in: 60 })).body
    await app.store.prisma.apiKey.update({ where: { id: third.id }, data: { expiresAt: new Date(Date.now() - 1000) } })
    t.equal((await call('GET', '/auth/me', apiKey(third.key))).status, 401, 'an expired key is refused')
    t.same((await call('GET', '/auth/api-keys', bearer(fresh.access_token))).body, [], 'and not listed')
    t.equal((await call('POST', '/auth/api-keys', bearer(fresh.access_token), { name: 'x', expires_in: 10 })).status, 400, 'expires_in below a minute is refused')

    // An admin lists and revokes a user's keys.
    const fourth = (await call('POST', '/auth/api-keys', bearer(fresh.access_token), { name: 'deploy' })).body
    const root = (await call('POST', '/auth/login', undefined, { email: 'root@example.com', password: PASSWORD })).body
    const adminList = await call('GET', `/admin/users/${ada.user.id as string}/api-keys`, bearer(root.access_token))
    t.equal(adminList.status, 200)
    t.same(adminList.body.map((k: { id: string }) => k.id), [fourth.id])
    t.equal((await call('GET', `/admin/users/${ada.user.id as string}/api-keys`, bearer(fresh.access_token))).status, 403, 'not for a non-admin')
    t.equal((await call('DELETE', `/admin/users/${ada.user.id as string}/api-keys/${fourth.id as string}`, bearer(root.access_token))).status, 204)
    t.equal((await call('GET', '/auth/me', apiKey(fourth.key))).status, 401, 'the admin revoked it')
    t.equal((await call('GET', '/admin/users/00000000-0000-4000-8000-000000000000/api-keys', bearer(root.access_token))).status, 404)
  })
}
