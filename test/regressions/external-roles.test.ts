// Found by an outside test: a trusted issuer that maps `rolesClaim` could send an HS256 token with
// `roles: ["admin"]`, reach GET /admin/users and make a local user a global admin; a token with an
// `exp` ten years ahead and no `iat` was accepted. CONTRACT §14: the admin API and the management of
// organizations take local users only unless the issuer's entry sets `adminApi: true`, and a token
// that lives longer than the entry's `maxTokenLifetime` (default a day) is INVALID_TOKEN.
import t from 'tap'
import { SignJWT } from 'jose'
import { build } from '../helpers/build.ts'

const SECRET = 'an external issuer secret of 32+ bytes!'
const now = (): number => Math.floor(Date.now() / 1000)

async function external (iss: string, claims: Record<string, unknown>, lifetime: { iat?: number, exp: number }): Promise<string> {
  const jwt = new SignJWT({ roles: ['admin'], ...claims }).setProtectedHeader({ alg: 'HS256' }).setIssuer(iss).setAudience('gatehouse').setSubject('ext-user').setExpirationTime(lifetime.exp)
  if (lifetime.iat !== undefined) jwt.setIssuedAt(lifetime.iat)
  return await jwt.sign(new TextEncoder().encode(SECRET))
}

t.test('external roles do not reach the admin API unless the issuer is trusted for it; long-lived tokens are refused', async (t) => {
  const issuers = [
    { issuer: 'partner-idp', secret: SECRET, algorithms: ['HS256'], audiences: ['gatehouse'], rolesClaim: 'roles' },
    { issuer: 'workforce-idp', secret: SECRET, algorithms: ['HS256'], audiences: ['gatehouse'], rolesClaim: 'roles', adminApi: true, maxTokenLifetime: 3600 }
  ]
  const { app } = await build(t, { env: { TRUSTED_ISSUERS: JSON.stringify(issuers) } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  const base = `http://127.0.0.1:${address.port}`
  const get = async (path: string, token: string): Promise<{ status: number, code?: string }> => {
    const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } })
    const body = await res.json() as { code?: string }
    return { status: res.status, code: body.code }
  }
  const registered = await (await fetch(`${base}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'local@example.com', password: 'a long and decent passphrase 9' }) })).json() as { user: { id: string } }

  const partner = await external('partner-idp', {}, { iat: now(), exp: now() + 600 })
  t.equal((await get('/auth/me', partner)).status, 200, 'the token itself is good')
  t.same(await get('/admin/users', partner), { status: 403, code: 'FORBIDDEN' }, 'roles: ["admin"] from an issuer without adminApi')
  const patch = await fetch(`${base}/admin/users/${registered.user.id}`, { method: 'PATCH', headers: { authorization: `Bearer ${partner}`, 'content-type': 'application/json' }, body: JSON.stringify({ roles: ['admin'] }) })
  t.equal(patch.status, 403, 'and cannot make a local user an admin')
  t.same(JSON.parse((await app.store.prisma.user.findUniqueOrThrow({ where: { id: registered.user.id } })).roles), ['user'], 'the local user is unchanged')

  const workforce = await external('workforce-idp', {}, { iat: now(), exp: now() + 600 })
  t.equal((await get('/admin/users', workforce)).status, 200, 'an issuer entry with adminApi: true is trusted for the admin API')

  t.same(await get('/auth/me', await external('partner-idp', {}, { exp: now() + 10 * 365 * 86_400 })), { status: 401, code: 'INVALID_TOKEN' }, 'exp ten years ahead and no iat')
  t.same(await get('/auth/me', await external('partner-idp', {}, { iat: now(), exp: now() + 2 * 86_400 })), { status: 401, code: 'INVALID_TOKEN' }, 'a two-day lifetime beyond the default day')
  t.equal((await get('/auth/me', await external('partner-idp', {}, { exp: now() + 3600 }))).status, 200, 'an hour without iat is fine')
  t.same(await get('/auth/me', await external('workforce-idp', {}, { iat: now(), exp: now() + 7200 })), { status: 401, code: 'INVALID_TOKEN' }, "the entry's own maxTokenLifetime (1 h)")
})
