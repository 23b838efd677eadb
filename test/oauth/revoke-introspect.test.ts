// POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662) on SQLite and PostgreSQL.
import t from 'tap'
import { providers } from '../helpers/databases.ts'
import { createOAuthClient } from '../../plugins/sessions/clients.ts'
import { accessVerdict, login, refresh, sessionApp } from '../sessions/helpers.ts'
import { basic, isOAuthError, token } from './helpers.ts'

for (const { provider, skip } of await providers()) {
  t.test(`revoke and introspect on ${provider}`, { skip }, async (t) => {
    const { app } = await sessionApp(t, { provider })
    const resource = await createOAuthClient(app.store.prisma, { id: 'resource-api', name: 'Resource API', grants: ['client_credentials'], roles: ['introspector'] })
    const asResource = { authorization: basic(resource.clientId, resource.clientSecret) }
    const revoke = (fields: Record<string, string>, headers: Record<string, string> = {}) => token(app, fields, headers, '/oauth/revoke')
    const introspect = (fields: Record<string, string>, headers: Record<string, string> = asResource) => token(app, fields, headers, '/oauth/introspect')

    t.test('revoking a refresh token ends its session', async (t) => {
      const { tokens } = await login(app)
      const res = await revoke({ token: tokens.refresh_token, token_type_hint: 'refresh_token' })
      t.equal(res.statusCode, 200)
      t.equal(res.headers['cache-control'], 'no-store')
      t.equal((await refresh(app, tokens.refresh_token)).json().code, 'TOKEN_REVOKED')
      t.equal(await accessVerdict(app, tokens.access_token), 'TOKEN_REVOKED', 'RFC 7009 §2.1: its access tokens too')
    })

    t.test('revoking an access token ends its session', async (t) => {
      const { tokens } = await login(app)
      t.equal((await revoke({ token: tokens.access_token })).statusCode, 200)
      t.equal(await accessVerdict(app, tokens.access_token), 'TOKEN_REVOKED')
      t.equal((await refresh(app, tokens.refresh_token)).json().code, 'TOKEN_REVOKED')
    })

    t.test('unknown, malformed and foreign tokens: 200 and nothing happens (RFC 7009 §2.2)', async (t) => {
      const { tokens } = await login(app)
      for (const value of ['nope', 'x'.repeat(10_000), `${tokens.refresh_token.split('.')[0]}.${'B'.repeat(43)}`, 'a.b.c']) {
        t.equal((await revoke({ token: value })).statusCode, 200)
      }
      // Another client may not revoke the public client's token.
      t.equal((await revoke({ token: tokens.refresh_token }, asResource)).statusCode, 200)
      t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200, 'the token was not revoked')
      isOAuthError(t, await revoke({}), 400, 'invalid_request')
      isOAuthError(t, await revoke({ token: 'x' }, { authorization: basic(resource.clientId, 'wrong') }), 401, 'invalid_client')
    })

    t.test('a client token cannot be revoked: unsupported_token_type', async (t) => {
      const issued = await token(app, { grant_type: 'client_credentials' }, asResource)
      isOAuthError(t, await revoke({ token: issued.json().access_token }, asResource), 400, 'unsupported_token_type')
    })

    t.test('introspection needs client authentication', async (t) => {
      const { tokens } = await login(app)
      isOAuthError(t, await introspect({ token: tokens.access_token }, {}), 401, 'invalid_client')
      isOAuthError(t, await introspect({ token: tokens.access_token }, { authorization: basic(resource.clientId, 'wrong') }), 401, 'invalid_client')
    })

    t.test('an active access token', async (t) => {
      const { user, tokens } = await login(app)
      const res = await introspect({ token: tokens.access_token })
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.equal(body.active, true)
      t.equal(body.sub, user.id)
      t.equal(body.client_id, 'gatehouse')
      t.equal(body.sid, tokens.refresh_token.split('.')[0])
      t.equal(body.token_type, 'Bearer')
      t.equal(body.iss, app.tokens.issuer)
      t.equal(body.aud, app.tokens.audience)
      t.ok(body.exp > body.iat)
      t.equal(body.username, user.email)
    })

    t.test('a client token carries its client and scope', async (t) => {
      const issued = (await token(app, { grant_type: 'client_credentials' }, asResource)).json()
      const body = (await introspect({ token: issued.access_token })).json()
      t.equal(body.active, true)
      t.equal(body.client_id, resource.clientId)
      t.equal(body.scope, 'introspector')
    })

    t.test('anything not valid is { active: false }', async (t) => {
      const { tokens } = await login(app)
      const tampered = tokens.access_token.slice(0, -4) + (tokens.access_token.endsWith('AAAA') ? 'BBBB' : 'AAAA')
      for (const value of ['', 'garbage', tampered, 'x'.repeat(9000), tokens.refresh_token]) {
        const res = await introspect({ token: value })
        if (value === '') {
          isOAuthError(t, res, 400, 'invalid_request')
          continue
        }
        t.same(res.json(), { active: false }, 'inactive')
      }
      await app.sessions.logout(tokens.refresh_token.split('.')[0])
      t.same((await introspect({ token: tokens.access_token })).json(), { active: false }, 'revoked')
    })

    t.test('a client may introspect its own refresh tokens', async (t) => {
      const { user, tokens } = await login(app, { clientId: resource.clientId })
      const body = (await introspect({ token: tokens.refresh_token, token_type_hint: 'refresh_token' })).json()
      t.equal(body.active, true)
      t.equal(body.token_type, 'refresh_token')
      t.equal(body.sub, user.id)
      t.equal(body.client_id, resource.clientId)
      await app.sessions.refresh(tokens.refresh_token, { clientId: resource.clientId })
      t.same((await introspect({ token: tokens.refresh_token })).json(), { active: false }, 'used up')
    })
  })
}
