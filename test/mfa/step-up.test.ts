// Step-up (RFC 9470) and amr over HTTP: ADMIN_REQUIRE_MFA puts /admin/* behind a second factor;
// config.rbac.mfa and requireMfa read our tokens' amr and trusted issuers' amr/acr; introspection
// returns amr; an admin (and the CLI's service) can turn a user's MFA off, with an audit event.
import t from 'tap'
import { SignJWT } from 'jose'
import { providers } from '../helpers/databases.ts'
import { createOAuthClient } from '../../plugins/sessions/clients.ts'
import { PASSWORD, claims, enrolTotp, mfaServer, registerUser, type MfaServer } from './helpers.ts'

const HS_SECRET = 'step-up-test-shared-secret-0123456789abcdef'
const EXTERNAL = { issuer: 'ext-idp', secret: HS_SECRET, algorithms: ['HS256'], audiences: ['gatehouse'] }
const ADMIN_EMAIL = 'admin@example.com'

async function externalToken (extra: Record<string, unknown>): Promise<string> {
  return new SignJWT({ ...extra }).setProtectedHeader({ alg: 'HS256' }).setIssuer('ext-idp').setAudience('gatehouse')
    .setSubject('ext-user-1').setIssuedAt().setExpirationTime('5m').sign(Buffer.from(HS_SECRET))
}

async function loginWithTotp (server: MfaServer, email: string, secret: string): Promise<string> {
  const step = await server.call('POST', '/auth/login', { body: { email, password: PASSWORD } })
  if (step.body.code !== 'MFA_REQUIRED') throw new Error(`expected MFA_REQUIRED, got ${JSON.stringify(step.body)}`)
  server.clock.advance(30)
  const done = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, code: server.clock.code(secret) } })
  if (done.status !== 200) throw new Error(`verify answered ${done.status}`)
  return done.body.access_token
}

for (const { provider, skip } of await providers()) {
  t.test(`ADMIN_REQUIRE_MFA on ${provider}`, { skip }, async (t) => {
    const server = await mfaServer(t, {
      provider,
      env: { ADMIN_REQUIRE_MFA: 'true', ADMIN_EMAIL, ADMIN_PASSWORD: PASSWORD }
    })
    const password = await server.call('POST', '/auth/login', { body: { email: ADMIN_EMAIL, password: PASSWORD } })
    t.equal(password.status, 200)
    t.same(claims(password.body.access_token).amr, ['pwd'])

    const refused = await server.call('GET', '/admin/users', { token: password.body.access_token })
    t.equal(refused.status, 401)
    t.equal(refused.body.code, 'INSUFFICIENT_AUTHENTICATION')
    t.match(refused.headers.get('www-authenticate'), /^Bearer error="insufficient_user_authentication"/)
    const basic = await server.call('GET', '/admin/users', { authorization: `Basic ${Buffer.from(`${ADMIN_EMAIL}:${PASSWORD}`).toString('base64')}` })
    t.equal(basic.body.code, 'INSUFFICIENT_AUTHENTICATION', 'HTTP Basic is a password alone')

    const { secret } = await enrolTotp(server, password.body.access_token)
    const strong = await loginWithTotp(server, ADMIN_EMAIL, secret)
    t.same(claims(strong).amr, ['pwd', 'otp', 'mfa'])
    const listed = await server.call('GET', '/admin/users', { token: strong })
    t.equal(listed.status, 200, 'an admin with a second factor gets in')

    const user = await registerUser(server)
    const userSecret = (await enrolTotp(server, user.token)).secret
    const userStrong = await loginWithTotp(server, user.email, userSecret)
    t.equal((await server.call('GET', '/admin/users', { token: userStrong })).status, 403, 'a second factor gives no role: FORBIDDEN before step-up')
    t.equal((await server.call('GET', '/admin/users', { token: user.token })).status, 403, 'a non-admin is told FORBIDDEN, not to step up')

    // The admin turns the user's MFA off (lost phone).
    const reset = await server.call('DELETE', `/admin/users/${user.id}/mfa`, { token: strong })
    t.equal(reset.status, 204)
    const again = await server.call('POST', '/auth/login', { body: { email: user.email, password: PASSWORD } })
    t.equal(again.status, 200, 'the user logs in with the password alone again')
    t.same((await server.call('GET', '/auth/me', { token: again.body.access_token })).body.mfa, { totp: false, passkeys: 0 })
    const audit = await server.call('GET', `/admin/audit?type=mfa_reset&user=${user.id}`, { token: strong })
    t.equal(audit.status, 200)
    t.equal(audit.body.items.length, 1)
    t.equal(audit.body.items[0].actorId, claims(strong).sub, 'the audit event names the admin')
    t.equal(audit.body.items[0].subjectId, user.id)
    t.equal((await server.call('DELETE', `/admin/users/${user.id}/mfa`, { token: password.body.access_token })).body.code, 'INSUFFICIENT_AUTHENTICATION', 'the reset itself is behind the step-up')
  })
}

t.test('without ADMIN_REQUIRE_MFA a password-only admin token is enough (the default)', async (t) => {
  const server = await mfaServer(t, { env: { ADMIN_EMAIL, ADMIN_PASSWORD: PASSWORD } })
  const res = await server.call('POST', '/auth/login', { body: { email: ADMIN_EMAIL, password: PASSWORD } })
  t.equal((await server.call('GET', '/admin/users', { token: res.body.access_token })).status, 200)
})

t.test('config.rbac.mfa reads our amr and trusted issuers\' amr and acr; introspection returns amr', async (t) => {
  const server = await mfaServer(t, {
    env: { TRUSTED_ISSUERS: JSON.stringify([EXTERNAL]) },
    app: { rbac: { mfaAcrValues: ['urn:example:acr:mfa'] } },
    routes (app) {
      app.get('/step-up', { onRequest: app.authenticate, config: { rbac: { mfa: true } } }, async (request) => ({ sub: request.user?.sub }))
      app.get('/guarded', { onRequest: app.authenticate, preHandler: app.requireMfa() }, async () => ({ ok: true }))
    }
  })
  const user = await registerUser(server)
  const weak = await server.call('GET', '/step-up', { token: user.token })
  t.equal(weak.status, 401)
  t.equal(weak.body.code, 'INSUFFICIENT_AUTHENTICATION')
  t.match(weak.headers.get('www-authenticate'), /insufficient_user_authentication/)
  t.equal((await server.call('GET', '/step-up')).body.code, 'MISSING_AUTHORIZATION')

  const { secret } = await enrolTotp(server, user.token)
  const strong = await loginWithTotp(server, user.email, secret)
  t.equal((await server.call('GET', '/step-up', { token: strong })).status, 200)
  t.equal((await server.call('GET', '/guarded', { token: strong })).status, 200)
  t.equal((await server.call('GET', '/guarded', { token: user.token })).status, 401, 'the token issued before enrolment says ["pwd"]')

  const cases: Array<[Record<string, unknown>, number, string]> = [
    [{ amr: ['pwd', 'otp'] }, 200, 'two kinds of method without "mfa"'],
    [{ amr: ['mfa'] }, 200, '"mfa"'],
    [{ amr: ['pwd'] }, 401, 'a password alone'],
    [{ amr: 'mfa' }, 401, 'amr that is not an array says nothing'],
    [{}, 401, 'no amr'],
    [{ acr: 'urn:example:acr:mfa' }, 200, 'an acr listed in mfaAcrValues'],
    [{ acr: 'urn:example:acr:pwd' }, 401, 'another acr']
  ]
  for (const [extra, status, what] of cases) {
    const res = await server.call('GET', '/step-up', { token: await externalToken(extra) })
    t.equal(res.status, status, `external token: ${what}`)
  }

  const client = await createOAuthClient(server.app.store.prisma, { id: 'resource-api', name: 'Resource API', grants: ['client_credentials'], roles: [] })
  const basic = `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`
  const introspected = await server.call('POST', '/oauth/introspect', { authorization: basic, form: { token: strong } })
  t.equal(introspected.status, 200)
  t.equal(introspected.body.active, true)
  t.same(introspected.body.amr, ['pwd', 'otp', 'mfa'])
  const weakIntrospected = await server.call('POST', '/oauth/introspect', { authorization: basic, form: { token: user.token } })
  t.same(weakIntrospected.body.amr, ['pwd'])
})
