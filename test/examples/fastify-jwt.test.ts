// examples/fastify-jwt, the code of docs/fastify-jwt.md: a resource server that keeps
// @fastify/jwt + get-jwks verifying Gatehouse's access tokens through its JWKS, and the same
// server on gatehouse/trusted-issuers + gatehouse/authenticate, both against a listening
// Gatehouse server.
import t from 'tap'
import { createServer } from 'node:net'
import { SignJWT, generateKeyPair } from 'jose'
import { build } from '../helpers/build.ts'
import { buildWithFastifyJwt } from '../../examples/fastify-jwt/before.ts'
import { buildWithGatehouse } from '../../examples/fastify-jwt/after.ts'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

t.test('@fastify/jwt + get-jwks, then gatehouse/authenticate, on Gatehouse\'s tokens', async (t) => {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const { app: gatehouse } = await build(t, { env: { AUTH_ISSUER: issuer }, app: { credentials: { argon2: { memoryCost: 8192, timeCost: 1 } } } })
  await gatehouse.listen({ port, host: '127.0.0.1' })
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    await fetch(`${issuer}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  const account = { email: 'lin@example.com', password: 'correct horse battery staple' }
  t.equal((await post('/auth/register', account)).status, 201)
  const login = await (await post('/auth/login', account)).json() as { access_token: string, user: { id: string } }
  const token = login.access_token
  const tampered = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
  // A token from a key that is not Gatehouse's, claiming another issuer.
  const other = await generateKeyPair('RS256')
  const foreign = await new SignJWT({ sub: 'mallory', aud: 'gatehouse' }).setProtectedHeader({ alg: 'RS256', kid: 'other', typ: 'at+jwt' })
    .setIssuer('https://other.example').setIssuedAt().setExpirationTime('5m').sign(other.privateKey)

  const before = await buildWithFastifyJwt({ issuer })
  const after = await buildWithGatehouse({ issuer })
  t.teardown(async () => { await before.close(); await after.close() })
  const me = async (app: typeof before, bearer?: string): Promise<{ status: number, body: Record<string, unknown>, challenge?: string }> => {
    const res = await app.inject({ url: '/me', headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } })
    return { status: res.statusCode, body: res.json(), challenge: res.headers['www-authenticate'] as string | undefined }
  }

  t.test('both accept a Gatehouse access token, with the key from its JWKS', async (t) => {
    const a = await me(before, token)
    t.equal(a.status, 200, '@fastify/jwt + get-jwks')
    t.same(a.body, { sub: login.user.id, roles: ['user'] })
    const b = await me(after, token)
    t.equal(b.status, 200, 'gatehouse/authenticate')
    t.same(b.body, { sub: login.user.id, roles: ['user'] })
  })

  t.test('both refuse what is not a valid Gatehouse token; Gatehouse says why in a code and a challenge', async (t) => {
    // get-jwks's refusal of an issuer outside its list carries no status: @fastify/jwt answers 500.
    const cases = [['no token', undefined, 401, 'MISSING_AUTHORIZATION'], ['a forged signature', tampered, 401, 'INVALID_SIGNATURE'], ['another issuer', foreign, 500, 'UNTRUSTED_ISSUER']] as const
    for (const [name, bearer, fastifyJwtStatus, code] of cases) {
      const a = await me(before, bearer)
      t.equal(a.status, fastifyJwtStatus, `${name}: @fastify/jwt refuses it with ${fastifyJwtStatus} (${String(a.body.code)})`)
      const b = await me(after, bearer)
      t.equal(b.status, 401, `${name}: gatehouse/authenticate answers 401`)
      t.equal(b.body.code, code, `with ${code}`)
      t.match(b.challenge ?? '', /^Bearer /, 'and a Bearer challenge')
    }
  })

  t.test('gatehouse/rbac guards a route on the token\'s roles', async (t) => {
    const res = await after.inject({ url: '/admin', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'FORBIDDEN')
  })

  t.test('with JWKS alone, neither sees a logout before the token expires', async (t) => {
    const loggedOut = await post('/auth/logout', {}, { authorization: `Bearer ${token}` })
    t.ok(loggedOut.status < 300, 'logout succeeds at Gatehouse')
    t.equal((await fetch(`${issuer}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status, 401, 'Gatehouse itself refuses the revoked token')
    t.equal((await me(before, token)).status, 200, '@fastify/jwt still accepts it (signature and exp only)')
    t.equal((await me(after, token)).status, 200, 'so does a JWKS-only gatehouse/authenticate: revocation needs the store (docs/fastify-jwt.md)')
  })
})
