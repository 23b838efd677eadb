// POST /oauth/token: the three grants and every RFC 6749 §5.2 error, on SQLite and PostgreSQL.
import t from 'tap'
import { providers } from '../helpers/databases.ts'
import { createOAuthClient } from '../../plugins/sessions/clients.ts'
import { accessVerdict, createUser, login, PASSWORD, sessionApp } from '../sessions/helpers.ts'
import { basic, isOAuthError, token } from './helpers.ts'

for (const { provider, skip } of await providers()) {
  t.test(`/oauth/token on ${provider}`, { skip }, async (t) => {
    const { app, logs } = await sessionApp(t, { provider })
    const user = await createUser(app)
    const service = await createOAuthClient(app.store.prisma, { name: 'Billing service', grants: ['client_credentials'], roles: ['service', 'billing'] })
    const webapp = await createOAuthClient(app.store.prisma, { id: 'web-app', name: 'Web app', grants: ['password', 'refresh_token'], roles: [] })

    t.test('password grant with the built-in public client', async (t) => {
      const res = await token(app, { grant_type: 'password', username: user.email, password: PASSWORD })
      t.equal(res.statusCode, 200)
      t.equal(res.headers['cache-control'], 'no-store', 'RFC 6749 §5.1')
      t.equal(res.headers.pragma, 'no-cache')
      const body = res.json()
      t.equal(body.token_type, 'Bearer')
      t.type(body.expires_in, 'number')
      t.match(body.refresh_token, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/)
      t.equal(await accessVerdict(app, body.access_token), 'ok')
      const family = await app.store.prisma.refreshFamily.findUniqueOrThrow({ where: { id: body.refresh_token.split('.')[0] } })
      t.equal(family.clientId, 'gatehouse')
    })

    t.test('password and refresh_token grants with a confidential client (client_secret_post and basic)', async (t) => {
      const first = await token(app, { grant_type: 'password', username: user.email, password: PASSWORD, client_id: webapp.clientId, client_secret: webapp.clientSecret })
      t.equal(first.statusCode, 200)
      const rotated = await token(app, { grant_type: 'refresh_token', refresh_token: first.json().refresh_token }, { authorization: basic(webapp.clientId, webapp.clientSecret) })
      t.equal(rotated.statusCode, 200)
      const publicTry = await token(app, { grant_type: 'refresh_token', refresh_token: rotated.json().refresh_token })
      isOAuthError(t, publicTry, 400, 'invalid_grant')
      const unauthenticated = await token(app, { grant_type: 'refresh_token', refresh_token: rotated.json().refresh_token, client_id: webapp.clientId })
      isOAuthError(t, unauthenticated, 401, 'invalid_client')
    })

    t.test('refresh_token grant rotates; replay is invalid_grant and revokes the family', async (t) => {
      const { tokens } = await login(app)
      const res = await token(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
      t.equal(res.statusCode, 200)
      const replay = await token(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
      isOAuthError(t, replay, 400, 'invalid_grant')
      t.equal(await accessVerdict(app, res.json().access_token), 'TOKEN_REVOKED')
      isOAuthError(t, await token(app, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(10_240) }), 400, 'invalid_grant')
      isOAuthError(t, await token(app, { grant_type: 'refresh_token', refresh_token: "' OR 1=1 --" }), 400, 'invalid_grant')
      isOAuthError(t, await token(app, { grant_type: 'refresh_token' }), 400, 'invalid_request')
    })

    t.test('client_credentials: client_secret_basic and client_secret_post', async (t) => {
      const res = await token(app, { grant_type: 'client_credentials' }, { authorization: basic(service.clientId, service.clientSecret) })
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.equal(body.scope, 'service billing')
      t.equal(body.refresh_token, undefined, 'RFC 6749 §4.4.3: no refresh token')
      const principal = await app.tokens.verify(body.access_token)
      t.equal(principal.clientId, service.clientId)
      t.same(principal.roles, ['service', 'billing'])
      const post = await token(app, { grant_type: 'client_credentials', client_id: service.clientId, client_secret: service.clientSecret, scope: 'billing' })
      t.equal(post.statusCode, 200)
      t.equal(post.json().scope, 'billing', 'a subset of the client\'s roles may be asked for')
    })

    t.test('every RFC 6749 §5.2 error', async (t) => {
      isOAuthError(t, await token(app, { grant_type: 'authorization_code', code: 'x' }), 400, 'unsupported_grant_type')
      isOAuthError(t, await token(app, { username: 'a' }), 400, 'invalid_request')
      isOAuthError(t, await token(app, { grant_type: 'password', username: user.email }), 400, 'invalid_request')
      isOAuthError(t, await token(app, { grant_type: 'password', username: user.email, password: 'wrong password entirely' }), 400, 'invalid_grant')
      isOAuthError(t, await token(app, { grant_type: 'password', username: 'nobody@example.com', password: PASSWORD }), 400, 'invalid_grant')
      isOAuthError(t, await token(app, { grant_type: 'password', username: user.email, password: PASSWORD, scope: 'admin' }), 400, 'invalid_scope')
      isOAuthError(t, await token(app, { grant_type: 'client_credentials', scope: 'root' }, { authorization: basic(service.clientId, service.clientSecret) }), 400, 'invalid_scope')
      isOAuthError(t, await token(app, { grant_type: 'password', username: user.email, password: PASSWORD }, { authorization: basic(service.clientId, service.clientSecret) }), 400, 'unauthorized_client')
      isOAuthError(t, await token(app, { grant_type: 'client_credentials' }, { authorization: basic(webapp.clientId, webapp.clientSecret) }), 400, 'unauthorized_client')
      isOAuthError(t, await token(app, { grant_type: 'client_credentials', client_id: service.clientId, client_secret: service.clientSecret }, { authorization: basic(service.clientId, service.clientSecret) }), 400, 'invalid_request')

      const wrongSecret = await token(app, { grant_type: 'client_credentials' }, { authorization: basic(service.clientId, 'not-the-secret') })
      isOAuthError(t, wrongSecret, 401, 'invalid_client')
      t.equal(wrongSecret.headers['www-authenticate'], 'Basic realm="gatehouse"', 'RFC 6749 §5.2: a challenge for Basic')
      isOAuthError(t, await token(app, { grant_type: 'client_credentials', client_id: 'no-such-client', client_secret: 'x' }), 401, 'invalid_client')
      isOAuthError(t, await token(app, { grant_type: 'client_credentials' }), 401, 'invalid_client')
      isOAuthError(t, await token(app, { grant_type: 'client_credentials' }, { authorization: 'Bearer abc' }), 401, 'invalid_client')
      isOAuthError(t, await token(app, { grant_type: 'password', username: user.email, password: PASSWORD, client_secret: 'x' }), 401, 'invalid_client')

      const json = await app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'text/plain' }, payload: 'grant_type=password' })
      isOAuthError(t, json, 400, 'invalid_request')
      const repeated = await app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=password&grant_type=refresh_token' })
      isOAuthError(t, repeated, 400, 'invalid_request')
    })

    t.test('a disabled account is invalid_grant at the token endpoint', async (t) => {
      const { user: victim, tokens } = await login(app)
      await app.store.prisma.user.update({ where: { id: victim.id }, data: { status: 'disabled' } })
      isOAuthError(t, await token(app, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }), 400, 'invalid_grant')
    })

    t.test('no secret in any log line', async (t) => {
      const res = await token(app, { grant_type: 'password', username: user.email, password: PASSWORD })
      const { refresh_token: refreshToken, access_token: accessToken } = res.json()
      await token(app, { grant_type: 'refresh_token', refresh_token: refreshToken })
      for (const secret of [PASSWORD, refreshToken.split('.')[1], accessToken.split('.')[2], service.clientSecret, webapp.clientSecret]) {
        t.notOk(logs.some((line) => line.includes(secret)), 'not logged')
      }
    })
  })
}

t.test('rate limiting and database faults keep the OAuth error shape', async (t) => {
  const { app } = await sessionApp(t, { app: { rateLimit: { classes: { token: { max: 2, timeWindowMs: 60_000 } } } } })
  await token(app, { grant_type: 'authorization_code' })
  await token(app, { grant_type: 'authorization_code' })
  const limited = await token(app, { grant_type: 'authorization_code' })
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().error, 'temporarily_unavailable')
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After kept')
})
