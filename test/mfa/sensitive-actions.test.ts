// Sensitive self-service actions over HTTP on SQLite and PostgreSQL (docs/mfa.md, "Sensitive
// self-service actions"): for an account with TOTP, a stolen access token and the known password
// are not enough to change the password or the email, create an API key or turn TOTP off. Each
// needs a multi-factor login at most STEP_UP_MAX_AGE old (the token's auth_time, which a refresh
// keeps) or a current code; otherwise 401 INSUFFICIENT_AUTHENTICATION with an RFC 9470 challenge.
// An account without a second factor is unaffected. One movable clock drives the sessions (so
// auth_time), the step-up check and the TOTP codes: "old" is a clock move, never a wait.
import t, { type Test } from 'tap'
import { providers } from '../helpers/databases.ts'
import { createOAuthClient } from '../../plugins/sessions/clients.ts'
import { createClient, GatehouseHttpError } from '../../client/index.ts'
import { MfaOptionsError, resolveOptions } from '../../plugins/mfa/index.ts'
import { PASSWORD, TestClock, claims, enrolTotp, mfaServer, registerUser, type MfaServer } from './helpers.ts'

const NEW_PASSWORD = 'a second passphrase for this account'
const MAX_AGE = 300
const HIGH = { max: 100_000, timeWindowMs: 60_000 }

async function server (t: Test, provider: 'sqlite' | 'postgresql', env: Record<string, string> = {}): Promise<MfaServer> {
  const clock = new TestClock()
  return await mfaServer(t, {
    provider,
    clock,
    env,
    app: {
      sessions: { clock: clock.now },
      rateLimit: { classes: { login: HIGH, register: HIGH, refresh: HIGH, token: HIGH, mail: HIGH, mail_target: HIGH, default: HIGH }, failedCredentials: HIGH, clock: clock.now }
    }
  })
}

/** Password, then the current TOTP code: a fresh multi-factor session. */
async function loginWithTotp (server: MfaServer, email: string, password: string, secret: string): Promise<{ access: string, refresh: string }> {
  const step = await server.call('POST', '/auth/login', { body: { email, password } })
  if (step.body.code !== 'MFA_REQUIRED') throw new Error(`expected MFA_REQUIRED, got ${JSON.stringify(step.body)}`)
  server.clock.advance(30)
  const done = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, code: server.clock.code(secret) } })
  if (done.status !== 200) throw new Error(`verify answered ${done.status}`)
  return { access: done.body.access_token, refresh: done.body.refresh_token }
}

function expectStepUp (t: Test, res: { status: number, body: any, headers: Headers }, what: string): void {
  t.equal(res.status, 401, what)
  t.equal(res.body.code, 'INSUFFICIENT_AUTHENTICATION', what)
  const challenge = res.headers.get('www-authenticate') ?? ''
  t.match(challenge, /^Bearer error="insufficient_user_authentication"/, `${what}: the RFC 9470 challenge`)
  t.match(challenge, new RegExp(`max_age="${MAX_AGE}"`), `${what}: with max_age`)
}

async function passwordWorks (server: MfaServer, email: string, password: string): Promise<boolean> {
  const res = await server.call('POST', '/auth/login', { body: { email, password } })
  return res.body.code === 'MFA_REQUIRED' || res.status === 200
}

for (const { provider, skip } of await providers()) {
  t.test(`password and email changes, API keys, for an account with TOTP, on ${provider}`, { skip }, async (t) => {
    const s = await server(t, provider)
    const user = await registerUser(s)
    const { secret, recoveryCodes } = await enrolTotp(s, user.token)

    // The token from before enrolment is fresh but says ["pwd"]: a password alone is not enough.
    t.same(claims(user.token).amr, ['pwd'])
    expectStepUp(t, await s.call('POST', '/auth/password', { token: user.token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } }), 'a fresh password-only token')

    const fresh = await loginWithTotp(s, user.email, PASSWORD, secret)
    t.same(claims(fresh.access).amr, ['pwd', 'otp', 'mfa'])
    t.equal(claims(fresh.access).auth_time, Math.floor(s.clock.now() / 1000), 'auth_time is the login\'s')
    const changed = await s.call('POST', '/auth/password', { token: fresh.access, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } })
    t.equal(changed.status, 204, 'a multi-factor login of a moment ago changes the password without a code')
    t.ok(await passwordWorks(s, user.email, NEW_PASSWORD))

    const email = await s.call('POST', '/auth/email', { token: fresh.access, body: { new_email: `fresh-${user.email}`, current_password: NEW_PASSWORD } })
    t.equal(email.status, 202, 'and asks for an email change')
    const key = await s.call('POST', '/auth/api-keys', { token: fresh.access, body: { name: 'fresh' } })
    t.equal(key.status, 201, 'and creates an API key')

    // The same session, STEP_UP_MAX_AGE + 1 s later.
    s.clock.advance(MAX_AGE + 1)
    const old = fresh.access
    expectStepUp(t, await s.call('POST', '/auth/password', { token: old, body: { current_password: NEW_PASSWORD, new_password: PASSWORD } }), 'password change with an old token')
    t.ok(await passwordWorks(s, user.email, NEW_PASSWORD), 'the password did not change')
    expectStepUp(t, await s.call('POST', '/auth/email', { token: old, body: { new_email: `old-${user.email}`, current_password: NEW_PASSWORD } }), 'email change with an old token')
    expectStepUp(t, await s.call('POST', '/auth/api-keys', { token: old, body: { name: 'old' } }), 'API key with an old token')
    expectStepUp(t, await s.call('POST', '/auth/password', { token: old, body: { current_password: 'not the password at all', new_password: PASSWORD } }), 'even before the password is checked')
    t.equal((await s.call('GET', '/auth/api-keys', { token: old })).body.length, 1, 'no key was created')

    // A current code instead of a recent login.
    const wrongCode = s.clock.code(secret, 90)
    const wrong = await s.call('POST', '/auth/password', { token: old, body: { current_password: NEW_PASSWORD, new_password: PASSWORD, code: wrongCode } })
    t.equal(wrong.status, 401)
    t.equal(wrong.body.code, 'INVALID_MFA_CODE', 'a wrong code')
    t.ok(await passwordWorks(s, user.email, NEW_PASSWORD), 'changes nothing')
    s.clock.advance(30)
    const code = s.clock.code(secret)
    const badPassword = await s.call('POST', '/auth/password', { token: old, body: { current_password: 'not the password at all', new_password: PASSWORD, code } })
    t.equal(badPassword.body.code, 'INVALID_CREDENTIALS', 'the current password is still required, and checked before the code')
    const withCode = await s.call('POST', '/auth/password', { token: old, body: { current_password: NEW_PASSWORD, new_password: PASSWORD, code } })
    t.equal(withCode.status, 204, 'an old token with a current code (not used up by the refused attempt)')
    t.ok(await passwordWorks(s, user.email, PASSWORD))
    const replay = await s.call('POST', '/auth/email', { token: old, body: { new_email: `replay-${user.email}`, current_password: PASSWORD, code } })
    t.equal(replay.body.code, 'INVALID_MFA_CODE', 'a code works once')

    s.clock.advance(30)
    const viaCode = await s.call('POST', '/auth/email', { token: old, body: { new_email: `code-${user.email}`, current_password: PASSWORD, code: s.clock.code(secret) } })
    t.equal(viaCode.status, 202, 'email change with a current code')
    const viaRecovery = await s.call('POST', '/auth/api-keys', { token: old, body: { name: 'recovery', recovery_code: recoveryCodes[0] } })
    t.equal(viaRecovery.status, 201, 'an API key with a recovery code')
    t.equal((await s.call('GET', '/auth/mfa', { token: old })).body.recovery_codes, 9, 'which is used up')
    const both = await s.call('POST', '/auth/api-keys', { token: old, body: { name: 'both', code: '123456', recovery_code: recoveryCodes[1] } })
    t.equal(both.status, 400, 'not both at once')
    t.equal((await s.call('GET', '/auth/mfa', { token: old })).body.recovery_codes, 9, 'and nothing is used up then')

    await s.app.audit.flush()
    const refusals = await s.app.store.prisma.auditEvent.findMany({ where: { subjectId: user.id, reason: 'step_up_required' } })
    t.same([...new Set(refusals.map((r) => r.type))].sort(), ['api_key_created', 'email_change_requested', 'password_change'], 'refusals are audited under each action')
  })

  t.test(`TOTP off, recovery codes, refreshed tokens and accounts without MFA, on ${provider}`, { skip }, async (t) => {
    const s = await server(t, provider)
    const user = await registerUser(s)
    const { secret } = await enrolTotp(s, user.token)

    // A refresh keeps the login's auth_time: "recent" is the last real authentication.
    const session = await loginWithTotp(s, user.email, PASSWORD, secret)
    const authTime = claims(session.access).auth_time
    s.clock.advance(MAX_AGE + 1)
    const refreshed = await s.call('POST', '/auth/refresh', { body: { refresh_token: session.refresh } })
    t.equal(refreshed.status, 200)
    t.equal(claims(refreshed.body.access_token).auth_time, authTime, 'the refreshed token keeps auth_time')
    t.same(claims(refreshed.body.access_token).amr, ['pwd', 'otp', 'mfa'], 'and amr')
    const again = await s.call('POST', '/auth/refresh', { body: { refresh_token: refreshed.body.refresh_token } })
    t.equal(claims(again.body.access_token).auth_time, authTime, 'through every rotation')
    const client = await createOAuthClient(s.app.store.prisma, { id: 'resource-api', name: 'Resource API', grants: ['client_credentials'], roles: [] })
    const introspected = await s.call('POST', '/oauth/introspect', { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, form: { token: again.body.access_token } })
    t.equal(introspected.body.auth_time, authTime, 'introspection returns it')
    const stale = again.body.access_token

    expectStepUp(t, await s.call('DELETE', '/auth/mfa/totp', { token: stale }), 'TOTP off with a refreshed but old session')
    expectStepUp(t, await s.call('POST', '/auth/mfa/recovery-codes', { token: stale }), 'new recovery codes with it')
    s.clock.advance(30)
    const off = await s.call('DELETE', '/auth/mfa/totp', { token: stale, body: { code: s.clock.code(secret) } })
    t.equal(off.status, 204, 'TOTP off with a current code')
    t.same((await s.call('GET', '/auth/mfa', { token: stale })).body, { totp: false, passkeys: 0, recovery_codes: 0 })

    // Enrolled again: a fresh multi-factor login turns it off without a code.
    const second = await enrolTotp(s, stale)
    const strong = await loginWithTotp(s, user.email, PASSWORD, second.secret)
    const codes = await s.call('POST', '/auth/mfa/recovery-codes', { token: strong.access })
    t.equal(codes.status, 200, 'new recovery codes after a fresh multi-factor login')
    t.equal(codes.body.recovery_codes.length, 10)
    const offFresh = await s.call('DELETE', '/auth/mfa/totp', { token: strong.access })
    t.equal(offFresh.status, 204, 'TOTP off after a fresh multi-factor login, without a code')

    // No second factor any more: the current password is enough again, whatever the token's age.
    s.clock.advance(10 * MAX_AGE)
    const changed = await s.call('POST', '/auth/password', { token: stale, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } })
    t.equal(changed.status, 204, 'an account without a second factor changes its password with the password')
    const plain = await registerUser(s)
    s.clock.advance(10 * MAX_AGE)
    t.equal((await s.call('POST', '/auth/password', { token: plain.token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD } })).status, 204, 'never had one: unaffected')
    t.equal((await s.call('POST', '/auth/email', { token: plain.token, body: { new_email: `moved-${plain.email}`, current_password: NEW_PASSWORD } })).status, 202)
    t.equal((await s.call('POST', '/auth/api-keys', { token: plain.token, body: { name: 'ci' } })).status, 201)
    const ignored = await s.call('POST', '/auth/api-keys', { token: plain.token, body: { name: 'ci-2', code: '000000' } })
    t.equal(ignored.status, 201, 'a code sent for an account without a second factor is not asked for, and not checked')
  })
}

t.test('the client helper surfaces INSUFFICIENT_AUTHENTICATION and keeps the session', async (t) => {
  const s = await server(t, 'sqlite')
  const user = await registerUser(s)
  const { secret } = await enrolTotp(s, user.token)
  const client = createClient({ baseUrl: s.base, mfa: () => { s.clock.advance(30); return { code: s.clock.code(secret) } } })
  t.teardown(() => client.close())
  await client.login(user.email, PASSWORD)
  s.clock.advance(MAX_AGE + 1)
  const change = (body: Record<string, string>) => client.json('/auth/password', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const err = await change({ current_password: PASSWORD, new_password: NEW_PASSWORD }).catch((e: unknown) => e)
  t.ok(err instanceof GatehouseHttpError, 'a GatehouseHttpError')
  t.equal((err as GatehouseHttpError).code, 'INSUFFICIENT_AUTHENTICATION')
  t.equal((err as GatehouseHttpError).status, 401)
  t.equal(await client.isAuthenticated(), true, 'the session is not dropped: a refresh would not help, a code does')
  s.clock.advance(30)
  t.equal(await change({ current_password: PASSWORD, new_password: NEW_PASSWORD, code: s.clock.code(secret) }), undefined, 'the same call with a code succeeds (204)')
  t.equal((await client.me()).email, user.email, 'and the session carries on')
})

t.test('STEP_UP_MAX_AGE sets the window', async (t) => {
  const s = await server(t, 'sqlite', { STEP_UP_MAX_AGE: '60' })
  const user = await registerUser(s)
  const { secret } = await enrolTotp(s, user.token)
  const session = await loginWithTotp(s, user.email, PASSWORD, secret)
  s.clock.advance(59)
  t.equal((await s.call('POST', '/auth/api-keys', { token: session.access, body: { name: 'within' } })).status, 201, '59 s after the login')
  s.clock.advance(2)
  const late = await s.call('POST', '/auth/api-keys', { token: session.access, body: { name: 'late' } })
  t.equal(late.body.code, 'INSUFFICIENT_AUTHENTICATION', '61 s after it')
  t.match(late.headers.get('www-authenticate'), /max_age="60"/)
  t.throws(() => resolveOptions({ keysDir: s.config.keysDir, stepUpMaxAge: 0 }), MfaOptionsError, 'the plugin option is checked')
})
