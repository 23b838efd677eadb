// A standard OAuth client library (openid-client 6, on oauth4webapi) against a listening server:
// discovery from /.well-known/openid-configuration, then the password, refresh_token and
// client_credentials grants, revocation and introspection, as a third-party client would do them.
import t from 'tap'
import { createServer } from 'node:net'
import * as oidc from 'openid-client'
import { createOAuthClient } from '../../plugins/sessions/clients.ts'
import { createUser, PASSWORD, sessionApp } from '../sessions/helpers.ts'

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

t.test('openid-client completes the grants against a listening Gatehouse', async (t) => {
  const port = await freePort()
  const issuer = `http://127.0.0.1:${port}`
  const { app, logs } = await sessionApp(t, { env: { AUTH_ISSUER: issuer } })
  await app.listen({ port, host: '127.0.0.1' })
  const user = await createUser(app)
  const insecure = { execute: [oidc.allowInsecureRequests] }

  // The built-in public client: no secret (token_endpoint_auth_method none).
  const publicClient = await oidc.discovery(new URL(issuer), 'gatehouse', undefined, oidc.None(), insecure)
  t.equal(publicClient.serverMetadata().token_endpoint, `${issuer}/oauth/token`)

  const first = await oidc.genericGrantRequest(publicClient, 'password', { username: user.email, password: PASSWORD })
  t.equal(first.token_type, 'bearer', 'openid-client normalises the token type')
  t.ok(first.refresh_token)
  t.ok(first.expires_in)

  const second = await oidc.refreshTokenGrant(publicClient, first.refresh_token!)
  t.ok(second.access_token)
  t.not(second.refresh_token, first.refresh_token, 'rotated')
  t.equal((await app.tokens.verify(second.access_token)).id, user.id)

  const replay = await oidc.refreshTokenGrant(publicClient, first.refresh_token!).catch((err: unknown) => err)
  t.ok(replay instanceof oidc.ResponseBodyError, 'a replay is an OAuth error response')
  t.equal((replay as oidc.ResponseBodyError).error, 'invalid_grant')
  t.equal((replay as oidc.ResponseBodyError).status, 400)

  // A confidential client: client_secret_basic, client_credentials, revocation, introspection.
  const registered = await createOAuthClient(app.store.prisma, { name: 'Reports', grants: ['client_credentials'], roles: ['reports'] })
  const confidential = await oidc.discovery(new URL(issuer), registered.clientId, undefined, oidc.ClientSecretBasic(registered.clientSecret), insecure)
  const service = await oidc.clientCredentialsGrant(confidential, { scope: 'reports' })
  t.equal(service.scope, 'reports')
  const fresh = await oidc.genericGrantRequest(publicClient, 'password', { username: user.email, password: PASSWORD })
  const active = await oidc.tokenIntrospection(confidential, fresh.access_token)
  t.equal(active.active, true)
  t.equal(active.sub, user.id)
  await oidc.tokenRevocation(publicClient, fresh.refresh_token!)
  const after = await oidc.tokenIntrospection(confidential, fresh.access_token)
  t.equal(after.active, false, 'revoking the refresh token ended the session')

  const wrong = await oidc.discovery(new URL(issuer), registered.clientId, undefined, oidc.ClientSecretBasic('not-it'), insecure)
  const denied = await oidc.clientCredentialsGrant(wrong).catch((err: unknown) => err)
  // RFC 6749 §5.2: a failed Basic client authentication is a 401 with a Basic challenge.
  t.ok(denied instanceof oidc.WWWAuthenticateChallengeError, 'the library sees the Basic challenge')
  t.equal((denied as oidc.WWWAuthenticateChallengeError).status, 401)
  t.equal((denied as oidc.WWWAuthenticateChallengeError).cause[0].scheme, 'basic')

  for (const secret of [first.refresh_token!, second.refresh_token!, registered.clientSecret, PASSWORD]) {
    t.notOk(logs.some((line) => line.includes(secret.includes('.') ? secret.split('.')[1] : secret)), 'never logged')
  }
})
