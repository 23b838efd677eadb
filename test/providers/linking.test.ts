// Which account a provider identity signs in: automatic linking only when both the provider and
// the account have verified the address, the pre-hijacking case, explicit linking from a
// signed-in session, unlinking (never the last way in), the password reset of a passwordless
// account, MFA at the exchange, disabled accounts, the admin view and the audit trail.
import t from 'tap'
import { TOTP, Secret } from 'otpauth'
import { buildGatehouse, loginAtOidc, startOidcProvider, type GatehouseApp, type LoopbackOidc, type TestContext } from './helpers.ts'
import { callback, exchange, loginBody, me, oidcSignIn, register, returned } from './flow.ts'
import { startSmtp, linkToken, type TestSmtp } from '../helpers/smtp.ts'
import { providers as databases } from '../helpers/databases.ts'
import type { Provider } from '../../plugins/store/database-url.ts'

t.setTimeout(15 * 60_000)

const ADMIN_EMAIL = 'root@example.test'
const ADMIN_PASSWORD = 'the admin passphrase of this test'

interface Setup { op: LoopbackOidc, gh: GatehouseApp, smtp: TestSmtp }

async function setup (t: TestContext, env: Record<string, string> = {}, database: Provider = 'sqlite'): Promise<Setup> {
  const smtp = await startSmtp()
  t.teardown(() => smtp.close())
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op, database, env: { SMTP_URL: smtp.url, APP_URL: 'https://app.example.test', ADMIN_EMAIL, ADMIN_PASSWORD, ...env } })
  return { op, gh, smtp }
}

async function verifiedAccount (s: Setup, email: string): Promise<{ id: string, token: string }> {
  const account = await register(s.gh, email)
  const mail = await s.smtp.next((m) => m.to.includes(email) && /verify-email/.test(m.text))
  const verified = await s.gh.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: linkToken(mail, 'verify-email') } })
  if (verified.statusCode !== 204) throw new Error(`verify answered ${verified.statusCode}`)
  return account
}

async function adminToken (gh: GatehouseApp): Promise<string> {
  const res = await gh.app.inject({ method: 'POST', url: '/auth/login', payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } })
  return res.json().access_token
}

async function auditTypes (gh: GatehouseApp, subjectId: string): Promise<string[]> {
  await gh.app.audit.flush()
  const rows = await gh.app.store.prisma.auditEvent.findMany({ where: { OR: [{ subjectId }, { actorId: subjectId }] }, orderBy: { createdAt: 'asc' } })
  return rows.map((r) => `${r.type}:${r.outcome}${r.reason === null ? '' : `:${r.reason}`}`)
}

for (const { provider, skip } of await databases()) {
  t.test(`pre-hijacking: an unverified account with the victim's address gets no link (${provider})`, { skip }, async (t) => {
    const s = await setup(t, {}, provider)
    const attacker = await register(s.gh, 'victim@example.test', 'the attacker chose this password')
    s.op.users.set('victim', { email: 'victim@example.test', email_verified: true })
    const landed = await oidcSignIn(s.gh, s.op, 'victim')
    t.equal(landed.searchParams.get('error'), 'ACCOUNT_EXISTS')
    t.equal(landed.searchParams.get('code'), null)
    t.equal(await s.gh.app.store.prisma.providerIdentity.count(), 0, 'nothing was linked')
    t.equal(await s.gh.app.store.prisma.user.count({ where: { email: 'victim@example.test' } }), 1)
    const profile = await me(s.gh, attacker.token)
    t.same(profile.providers, [], 'the attacker\'s account has no provider')
    t.ok((await auditTypes(s.gh, attacker.id)).includes('provider_login:failure:local_email_unverified'), 'audited with the reason')
  })

  t.test(`a verified account and a verified provider address are linked automatically (${provider})`, { skip }, async (t) => {
    const s = await setup(t, {}, provider)
    const bob = await verifiedAccount(s, 'bob@example.test')
    s.op.users.set('bob-sub', { email: 'BOB@example.test', email_verified: true })
    const body = await loginBody(s.gh, await oidcSignIn(s.gh, s.op, 'bob-sub'))
    t.equal(body.user.id, bob.id, 'the provider signs in the existing account')
    t.match((await me(s.gh, body.access_token)).providers, [{ id: 'acme' }])
    t.ok((await auditTypes(s.gh, bob.id)).includes('provider_linked:success'))
    const details = await s.gh.app.store.prisma.auditEvent.findFirstOrThrow({ where: { type: 'provider_linked', subjectId: bob.id } })
    t.match(JSON.parse(details.details ?? '{}'), { provider: 'acme', via: 'verified_email' })
  })
}

t.test('an address the provider does not assert as verified is never linked, and a new user keeps it unverified', async (t) => {
  const s = await setup(t)
  await verifiedAccount(s, 'carl@example.test')
  s.op.users.set('carl', { email: 'carl@example.test', email_verified: false })
  t.equal((await oidcSignIn(s.gh, s.op, 'carl')).searchParams.get('error'), 'ACCOUNT_EXISTS')
  s.op.users.set('newbie', { email: 'newbie@example.test', email_verified: false })
  const body = await loginBody(s.gh, await oidcSignIn(s.gh, s.op, 'newbie'))
  t.equal(body.user.email_verified, false)
  s.op.users.set('noemail', {})
  t.equal((await oidcSignIn(s.gh, s.op, 'noemail')).searchParams.get('error'), 'email_required')
})

t.test('REQUIRE_VERIFIED_EMAIL: a provider user with an unverified address is not signed in', async (t) => {
  const s = await setup(t, { REQUIRE_VERIFIED_EMAIL: 'true' })
  s.op.users.set('unv', { email: 'unv@example.test', email_verified: false })
  t.equal((await oidcSignIn(s.gh, s.op, 'unv')).searchParams.get('error'), 'EMAIL_NOT_VERIFIED')
  const mail = await s.smtp.next((m) => m.to.includes('unv@example.test') && /verify-email/.test(m.text))
  const verified = await s.gh.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: linkToken(mail, 'verify-email') } })
  t.equal(verified.statusCode, 204, 'the refused sign-in mailed a verification link, the only way such an account can verify')
  t.ok((await oidcSignIn(s.gh, s.op, 'unv')).searchParams.get('code'), 'once verified, the provider signs the account in')
  s.op.users.set('ver', { email: 'ver@example.test', email_verified: true })
  t.ok((await oidcSignIn(s.gh, s.op, 'ver')).searchParams.get('code'))
})

t.test('a signed-in user links a provider explicitly; the identity then signs in that user', async (t) => {
  const s = await setup(t)
  const victim = await register(s.gh, 'dana@example.test')
  s.op.users.set('dana-at-acme', { email: 'dana@example.test', email_verified: true })
  t.equal((await oidcSignIn(s.gh, s.op, 'dana-at-acme')).searchParams.get('error'), 'ACCOUNT_EXISTS', 'not linked automatically: the account never verified the address')

  const bad = await s.gh.app.inject({ method: 'POST', url: '/auth/providers/acme/link', headers: { authorization: `Bearer ${victim.token}` }, payload: { redirect_uri: 'https://evil.example.test/' } })
  t.equal(bad.json().code, 'INVALID_REDIRECT_URI')
  const anonymous = await s.gh.app.inject({ method: 'POST', url: '/auth/providers/acme/link', payload: { redirect_uri: s.gh.redirectUri } })
  t.equal(anonymous.statusCode, 401)

  const linkRes = await s.gh.app.inject({ method: 'POST', url: '/auth/providers/acme/link', headers: { authorization: `Bearer ${victim.token}` }, payload: { redirect_uri: s.gh.redirectUri } })
  t.equal(linkRes.statusCode, 200)
  const authorizeUrl = new URL(linkRes.json().authorize_url)
  t.equal(authorizeUrl.origin + authorizeUrl.pathname, `${s.gh.issuer}/auth/providers/acme/authorize`)
  const opened = await s.gh.app.inject({ url: authorizeUrl.pathname + authorizeUrl.search })
  t.equal(opened.statusCode, 302)
  const cookie = String([opened.headers['set-cookie']].flat()[0]).split(';')[0]
  const reopened = await s.gh.app.inject({ url: authorizeUrl.pathname + authorizeUrl.search })
  t.equal(reopened.json().code, 'INVALID_PROVIDER_STATE', 'the link ticket opens one flow only')

  const landed = returned(await callback(s.gh, await loginAtOidc(s.op, opened.headers.location as string, 'dana-at-acme'), cookie))
  t.equal(landed.searchParams.get('linked'), 'acme')
  t.equal(landed.searchParams.get('code'), null)
  t.match((await me(s.gh, victim.token)).providers, [{ id: 'acme', email: 'dana@example.test' }])
  const body = await loginBody(s.gh, await oidcSignIn(s.gh, s.op, 'dana-at-acme'))
  t.equal(body.user.id, victim.id, 'the linked identity signs in the account')
  t.ok((await auditTypes(s.gh, victim.id)).includes('provider_link_started:success'))

  const other = await register(s.gh, 'eve@example.test')
  const stealRes = await s.gh.app.inject({ method: 'POST', url: '/auth/providers/acme/link', headers: { authorization: `Bearer ${other.token}` }, payload: { redirect_uri: s.gh.redirectUri } })
  const steal = new URL(stealRes.json().authorize_url)
  const stealOpened = await s.gh.app.inject({ url: steal.pathname + steal.search })
  const stealCookie = String([stealOpened.headers['set-cookie']].flat()[0]).split(';')[0]
  const refused = returned(await callback(s.gh, await loginAtOidc(s.op, stealOpened.headers.location as string, 'dana-at-acme'), stealCookie))
  t.equal(refused.searchParams.get('error'), 'CONFLICT', 'an identity belongs to one user')
  t.same((await me(s.gh, other.token)).providers, [])
})

t.test('non-verifying provider: a password reset through the mailbox removes the identity that never proved the address', async (t) => {
  const s = await setup(t)
  s.op.users.set('squatter', { email: 'owner@example.test', email_verified: false })
  const squatter = await loginBody(s.gh, await oidcSignIn(s.gh, s.op, 'squatter'))
  t.match((await me(s.gh, squatter.access_token)).providers, [{ id: 'acme' }], 'the unverified sign-up holds the identity')

  const forgot = await s.gh.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: 'owner@example.test' } })
  t.equal(forgot.statusCode, 202)
  const mail = await s.smtp.next((m) => m.to.includes('owner@example.test') && /reset-password/.test(m.text))
  const reset = await s.gh.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: linkToken(mail, 'reset-password'), new_password: 'the mailbox owner takes the account back' } })
  t.equal(reset.statusCode, 204)
  t.equal(await s.gh.app.store.prisma.providerIdentity.count({ where: { userId: squatter.user.id } }), 0, 'the unproved identity is gone')
  t.equal((await oidcSignIn(s.gh, s.op, 'squatter')).searchParams.get('error'), 'ACCOUNT_EXISTS', 'the squatter\'s provider account no longer signs in')
  t.ok((await auditTypes(s.gh, squatter.user.id)).includes('provider_unlinked:success:password_reset'), 'the removal is audited')
})

t.test('unlink: allowed while another way in remains; a passwordless account adds a password by reset first', async (t) => {
  const s = await setup(t)
  const withPassword = await register(s.gh, 'fay@example.test')
  const linkRes = await s.gh.app.inject({ method: 'POST', url: '/auth/providers/acme/link', headers: { authorization: `Bearer ${withPassword.token}` }, payload: { redirect_uri: s.gh.redirectUri } })
  const url = new URL(linkRes.json().authorize_url)
  const opened = await s.gh.app.inject({ url: url.pathname + url.search })
  returned(await callback(s.gh, await loginAtOidc(s.op, opened.headers.location as string, 'fay'), String([opened.headers['set-cookie']].flat()[0]).split(';')[0]))
  const unlink = await s.gh.app.inject({ method: 'DELETE', url: '/auth/providers/acme', headers: { authorization: `Bearer ${withPassword.token}` } })
  t.equal(unlink.statusCode, 204)
  t.same((await me(s.gh, withPassword.token)).providers, [])
  t.equal((await s.gh.app.inject({ method: 'DELETE', url: '/auth/providers/acme', headers: { authorization: `Bearer ${withPassword.token}` } })).statusCode, 404)

  s.op.users.set('gus', { email: 'gus@example.test', email_verified: true })
  const gus = await loginBody(s.gh, await oidcSignIn(s.gh, s.op, 'gus'))
  const last = await s.gh.app.inject({ method: 'DELETE', url: '/auth/providers/acme', headers: { authorization: `Bearer ${gus.access_token}` } })
  t.equal(last.statusCode, 409)
  t.equal(last.json().code, 'CONFLICT', 'the last way in stays')
  t.match(last.json().message, /last way to sign in/)
  t.match(await auditTypes(s.gh, gus.user.id), ['register:success', 'provider_linked:success', 'provider_login:success', 'provider_unlinked:failure:last_sign_in_method'])

  const forgot = await s.gh.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: 'gus@example.test' } })
  t.equal(forgot.statusCode, 202)
  const mail = await s.smtp.next((m) => m.to.includes('gus@example.test') && /reset-password/.test(m.text))
  const newPassword = 'gus now has a password of his own'
  const reset = await s.gh.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: linkToken(mail, 'reset-password'), new_password: newPassword } })
  t.equal(reset.statusCode, 204, 'a passwordless account sets a password through the reset')
  const login = await s.gh.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'gus@example.test', password: newPassword } })
  t.equal(login.statusCode, 200)
  const now = await s.gh.app.inject({ method: 'DELETE', url: '/auth/providers/acme', headers: { authorization: `Bearer ${login.json().access_token}` } })
  t.equal(now.statusCode, 204, 'with a password the provider can go')
})

t.test('MFA: an account with a second factor gets MFA_REQUIRED at the exchange, as after a password', async (t) => {
  const s = await setup(t)
  s.op.users.set('hal', { email: 'hal@example.test', email_verified: true })
  const hal = await loginBody(s.gh, await oidcSignIn(s.gh, s.op, 'hal'))
  const auth = { authorization: `Bearer ${hal.access_token}` }
  const setupRes = await s.gh.app.inject({ method: 'POST', url: '/auth/mfa/totp/setup', headers: auth })
  t.equal(setupRes.statusCode, 200)
  const totp = new TOTP({ secret: Secret.fromBase32(setupRes.json().secret) })
  const confirm = await s.gh.app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: auth, payload: { code: totp.generate() } })
  t.equal(confirm.statusCode, 200)
  const recovery = confirm.json().recovery_codes[0]

  const code = (await oidcSignIn(s.gh, s.op, 'hal')).searchParams.get('code')!
  const res = await exchange(s.gh, code)
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'MFA_REQUIRED')
  t.equal(res.json().access_token, undefined)
  t.ok(res.json().mfa_token)
  const verified = await s.gh.app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: res.json().mfa_token, recovery_code: recovery } })
  t.equal(verified.statusCode, 200)
  t.equal(verified.json().user.id, hal.user.id)
})

t.test('a disabled account is not signed in by its provider; admins see and remove identities', async (t) => {
  const s = await setup(t)
  s.op.users.set('ida', { email: 'ida@example.test', email_verified: true })
  const ida = await loginBody(s.gh, await oidcSignIn(s.gh, s.op, 'ida'))
  const admin = { authorization: `Bearer ${await adminToken(s.gh)}` }
  const listed = await s.gh.app.inject({ url: `/admin/users/${ida.user.id}/providers`, headers: admin })
  t.equal(listed.statusCode, 200)
  t.match(listed.json(), [{ id: 'acme', name: 'Acme ID', email: 'ida@example.test' }])
  t.equal((await s.gh.app.inject({ url: `/admin/users/${ida.user.id}/providers`, headers: { authorization: `Bearer ${ida.access_token}` } })).statusCode, 403)

  const disabled = await s.gh.app.inject({ method: 'PATCH', url: `/admin/users/${ida.user.id}`, headers: admin, payload: { disabled: true } })
  t.equal(disabled.statusCode, 200)
  t.equal((await oidcSignIn(s.gh, s.op, 'ida')).searchParams.get('error'), 'ACCOUNT_DISABLED')

  t.equal((await s.gh.app.inject({ method: 'DELETE', url: `/admin/users/${ida.user.id}/providers/acme`, headers: admin })).statusCode, 409, 'not the last way in, for an admin either')
})
