// REQUIRE_VERIFIED_EMAIL at every door that signs someone in, through HTTP against a listening
// server on SQLite and PostgreSQL: HTTP Basic on a protected route (a correct password answers
// 403 EMAIL_NOT_VERIFIED, a wrong one the same INVALID_CREDENTIALS as an unknown account), the
// order of the checks (before the second factor: no mfa_token for an unverified account), and a
// passkey login. /auth/login and the password grant are in flows.test.ts.
import t from 'tap'
import { providers } from '../helpers/databases.ts'
import { PASSWORD, mfaServer, newEmail, type MfaServer } from '../mfa/helpers.ts'
import { SoftAuthenticator } from '../mfa/soft-authenticator.ts'

const ORIGIN = 'http://localhost:3000'

function basic (email: string, password: string): string {
  return `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`
}

async function auditRows (server: MfaServer, userId: string) {
  await server.app.audit.flush()
  return await server.app.store.prisma.auditEvent.findMany({ where: { subjectId: userId }, orderBy: { createdAt: 'asc' } })
}

for (const { provider, skip } of await providers()) {
  t.test(`REQUIRE_VERIFIED_EMAIL at HTTP Basic and passkey login on ${provider}`, { skip }, async (t) => {
    const server = await mfaServer(t, { provider, env: { REQUIRE_VERIFIED_EMAIL: 'true', AUTH_ISSUER: ORIGIN } })
    const email = newEmail()
    const registered = await server.call('POST', '/auth/register', { body: { email, password: PASSWORD } })
    t.equal(registered.status, 201)
    const userId: string = registered.body.user.id

    t.test('HTTP Basic: a correct password for an unverified address', async (t) => {
      for (let i = 0; i < 7; i++) {
        const right = await server.call('GET', '/auth/me', { authorization: basic(email, PASSWORD) })
        t.equal(right.status, 403, `attempt ${i + 1}`)
        t.equal(right.body.code, 'EMAIL_NOT_VERIFIED')
        t.notOk('id' in right.body, 'nothing of the account is answered')
      }
      // Seven refusals of a correct password counted nothing against the account: a wrong
      // password after them is still an ordinary INVALID_CREDENTIALS, not a back-off.
      const wrong = await server.call('GET', '/auth/me', { authorization: basic(email, 'not the password at all') })
      const unknown = await server.call('GET', '/auth/me', { authorization: basic(newEmail(), 'not the password at all') })
      t.equal(wrong.status, 401)
      t.equal(wrong.body.code, 'INVALID_CREDENTIALS', 'a wrong password tells nothing about verification')
      t.same(unknown.body, wrong.body, 'a wrong password and an unknown account answer the same body')
      t.equal(unknown.status, wrong.status)
      t.equal(wrong.headers.get('www-authenticate'), 'Basic realm="gatehouse"')
      t.equal(unknown.headers.get('www-authenticate'), wrong.headers.get('www-authenticate'), 'and the same challenge')

      const rows = await auditRows(server, userId)
      const refusals = rows.filter((r) => r.type === 'login' && r.reason === 'email_not_verified')
      t.equal(refusals.length, 7, 'each refusal is audited')
      t.same(JSON.parse(refusals[0].details ?? '{}'), { scheme: 'basic' }, 'naming the door')
      t.ok(rows.some((r) => r.type === 'login' && r.reason === 'bad_password'), 'the wrong password is a failure like any other')
      t.notOk(rows.some((r) => r.type === 'login' && r.outcome === 'success'), 'no sign-in was recorded')
    })

    t.test('once verified, Basic works; the rule is checked again after a change', async (t) => {
      await server.app.accounts.markVerified(userId, 'test')
      const ok = await server.call('GET', '/auth/me', { authorization: basic(email, PASSWORD) })
      t.equal(ok.status, 200)
      t.equal(ok.body.email_verified, true)
    })

    t.test('the order: the address before the second factor, at login and Basic; a passkey login', async (t) => {
      const login = await server.call('POST', '/auth/login', { body: { email, password: PASSWORD } })
      t.equal(login.status, 200)
      const soft = new SoftAuthenticator('localhost', ORIGIN)
      const options = await server.call('POST', '/auth/webauthn/register/options', { token: login.body.access_token, body: {} })
      t.equal(options.status, 200, 'a first factor needs no step-up')
      const created = await server.call('POST', '/auth/webauthn/register', { token: login.body.access_token, body: { credential: soft.create(options.body, { userVerified: true }) } })
      t.equal(created.status, 201)
      const start = await server.call('POST', '/auth/webauthn/login/options', { body: {} })
      const before = await server.call('POST', '/auth/webauthn/login', { body: { challenge_id: start.body.challenge_id, credential: soft.get(start.body.options, { userVerified: true }) } })
      t.equal(before.status, 200, 'the passkey signs the verified account in')

      // An account whose address is not verified (one that got its passkey before the operator
      // turned REQUIRE_VERIFIED_EMAIL on): every door refuses it once its credential is right.
      await server.app.store.prisma.user.update({ where: { id: userId }, data: { emailVerifiedAt: null } })
      await server.app.credentials.forgetUser(userId)
      const lastLogin = (await server.app.store.prisma.user.findUniqueOrThrow({ where: { id: userId } })).lastLoginAt

      const password = await server.call('POST', '/auth/login', { body: { email, password: PASSWORD } })
      t.equal(password.status, 403)
      t.equal(password.body.code, 'EMAIL_NOT_VERIFIED', 'not MFA_REQUIRED: the address is checked first')
      t.notOk('mfa_token' in password.body, 'no second step is started')
      const viaBasic = await server.call('GET', '/auth/me', { authorization: basic(email, PASSWORD) })
      t.equal(viaBasic.body.code, 'EMAIL_NOT_VERIFIED', 'Basic checks the address before refusing a password alone for a second factor')
      const wrongBasic = await server.call('GET', '/auth/me', { authorization: basic(email, 'not the password at all') })
      t.equal(wrongBasic.body.code, 'INVALID_CREDENTIALS')

      const again = await server.call('POST', '/auth/webauthn/login/options', { body: {} })
      const refused = await server.call('POST', '/auth/webauthn/login', { body: { challenge_id: again.body.challenge_id, credential: soft.get(again.body.options, { userVerified: true }) } })
      t.equal(refused.status, 403)
      t.equal(refused.body.code, 'EMAIL_NOT_VERIFIED', 'a valid passkey answer for an unverified address')
      t.notOk('access_token' in refused.body)
      const bad = await server.call('POST', '/auth/webauthn/login', { body: { challenge_id: again.body.challenge_id, credential: soft.get(again.body.options, { userVerified: true }) } })
      t.equal(bad.body.code, 'INVALID_MFA_CODE', 'an answer that is not valid (its challenge is used) says nothing about the address')

      const user = await server.app.store.prisma.user.findUniqueOrThrow({ where: { id: userId } })
      t.same(user.lastLoginAt, lastLogin, 'the refused sign-ins left no trace of a login')
      const rows = await auditRows(server, userId)
      t.equal(rows.filter((r) => r.type === 'login_passkey' && r.outcome === 'success').length, 1, 'only the first passkey login succeeded')
      t.ok(rows.some((r) => r.reason === 'email_not_verified' && JSON.parse(r.details ?? '{}').method === 'webauthn'), 'the passkey refusal is audited')
    })
  })
}
