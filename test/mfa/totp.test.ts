// TOTP and recovery codes over HTTP against a listening server, on SQLite and PostgreSQL:
// enrolment, login with a code and with each recovery code, drift, replay, the 5-answer limit and
// the throttle, regeneration, turning TOTP off, secrets not readable from the database, amr.
import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { providers } from '../helpers/databases.ts'
import { normalizeRecoveryCode } from '../../plugins/mfa/codes.ts'
import { SECRET_KEYS_FILE } from '../../plugins/mfa/secret-box.ts'
import { PASSWORD, claims, enrolTotp, mfaServer, newEmail, registerUser } from './helpers.ts'

for (const { provider, skip } of await providers()) {
  t.test(`TOTP on ${provider}`, { skip }, async (t) => {
    const server = await mfaServer(t, { provider })
    const { clock } = server
    const user = await registerUser(server)
    const login = () => server.call('POST', '/auth/login', { body: { email: user.email, password: PASSWORD } })
    const basicAuth = `Basic ${Buffer.from(`${user.email}:${PASSWORD}`).toString('base64')}`

    t.test('before enrolment: a password alone logs in, amr ["pwd"]', async (t) => {
      const me = await server.call('GET', '/auth/me', { token: user.token })
      t.same(me.body.mfa, { totp: false, passkeys: 0 })
      t.equal((await server.call('GET', '/auth/me', { authorization: basicAuth })).status, 200, 'HTTP Basic works without a second factor')
      const res = await login()
      t.equal(res.status, 200)
      t.same(claims(res.body.access_token).amr, ['pwd'])
    })

    let secret = ''
    let recoveryCodes: string[] = []
    t.test('enrolment: a pending secret turns on only with a correct code', async (t) => {
      const setup = await server.call('POST', '/auth/mfa/totp/setup', { token: user.token })
      t.equal(setup.status, 200)
      t.equal(setup.headers.get('cache-control'), 'no-store')
      t.match(setup.body.secret, /^[A-Z2-7]{32}$/, 'a base32 secret of 160 bits')
      const uri = new URL(setup.body.otpauth_uri)
      t.equal(uri.protocol, 'otpauth:')
      t.equal(uri.host, 'totp')
      t.equal(decodeURIComponent(uri.pathname), `/Gatehouse:${user.email}`, 'issuer and account label')
      t.equal(uri.searchParams.get('issuer'), 'Gatehouse')
      t.equal(uri.searchParams.get('secret'), setup.body.secret)
      t.equal(uri.searchParams.get('digits'), '6')
      t.equal(uri.searchParams.get('period'), '30')
      t.equal(uri.searchParams.get('algorithm'), 'SHA1')
      t.match(setup.body.qr_code, /^data:image\/svg\+xml;base64,/)
      t.match(Buffer.from(setup.body.qr_code.split(',')[1], 'base64').toString('utf8'), /^<svg /)

      t.equal((await login()).status, 200, 'a pending secret does not ask for a code')
      const again = await server.call('POST', '/auth/mfa/totp/setup', { token: user.token })
      t.equal(again.status, 200, 'a pending secret can be replaced')
      secret = again.body.secret
      t.not(secret, setup.body.secret)

      const stale = await server.call('POST', '/auth/mfa/totp/confirm', { token: user.token, body: { code: clock.code(setup.body.secret) } })
      t.equal(stale.body.code, 'INVALID_MFA_CODE', 'the replaced secret is gone')
      const wrong = await server.call('POST', '/auth/mfa/totp/confirm', { token: user.token, body: { code: '000000' === clock.code(secret) ? '111111' : '000000' } })
      t.equal(wrong.status, 401)
      t.equal(wrong.body.code, 'INVALID_MFA_CODE')
      const ok = await server.call('POST', '/auth/mfa/totp/confirm', { token: user.token, body: { code: clock.code(secret) } })
      t.equal(ok.status, 200)
      t.equal(ok.headers.get('cache-control'), 'no-store')
      recoveryCodes = ok.body.recovery_codes
      t.equal(recoveryCodes.length, 10)
      t.equal(new Set(recoveryCodes).size, 10)
      for (const code of recoveryCodes) t.match(code, /^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/)
      clock.advance(30)

      const conflict = await server.call('POST', '/auth/mfa/totp/setup', { token: user.token })
      t.equal(conflict.status, 409, 'no second enrolment while TOTP is on')
      const me = await server.call('GET', '/auth/me', { token: user.token })
      t.same(me.body.mfa, { totp: true, passkeys: 0 })
      const basic = await server.call('GET', '/auth/me', { authorization: basicAuth })
      t.equal(basic.status, 401, 'HTTP Basic (a password alone, even one verified and cached before) cannot pass a second factor')
      t.equal(basic.body.code, 'MFA_REQUIRED')
      t.match(basic.headers.get('www-authenticate'), /^Basic realm=/)
    })

    t.test('the database alone reveals no secret and no recovery code', async (t) => {
      const prisma = server.app.store.prisma
      const row = await prisma.totpFactor.findUniqueOrThrow({ where: { userId: user.id } })
      t.match(row.secret, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/, 'sealed: version, key id, iv, ciphertext, tag')
      t.notOk(row.secret.includes(secret), 'the base32 secret is not in the row')
      t.notOk(row.secret.includes(Buffer.from(secret).toString('base64url').slice(0, 16)), 'nor an encoding of it')
      const everything = JSON.stringify(await Promise.all([
        prisma.totpFactor.findMany(), prisma.recoveryCode.findMany(), prisma.mfaLogin.findMany(), prisma.auditEvent.findMany()
      ]))
      t.notOk(everything.includes(secret), 'the secret appears in no MFA table nor the audit log')
      for (const code of recoveryCodes) {
        t.notOk(everything.includes(code) || everything.includes(normalizeRecoveryCode(code)!), 'no recovery code in clear')
      }
      t.equal(await prisma.recoveryCode.count({ where: { userId: user.id } }), 10)
      const keyFile = join(server.config.keysDir, SECRET_KEYS_FILE)
      t.equal(statSync(keyFile).mode & 0o777, 0o600, 'the sealing key is kept beside the signing keys, mode 0600')
      t.match(JSON.parse(readFileSync(keyFile, 'utf8')).keys[0].kid, row.secret.split('.')[1], 'the ciphertext names its key')
      t.notOk(server.logs.join('\n').includes(secret), 'the secret is never logged')
    })

    t.test('login: a correct password asks for the second factor; a wrong one does not tell', async (t) => {
      const res = await login()
      t.equal(res.status, 401)
      t.equal(res.body.code, 'MFA_REQUIRED')
      t.match(res.body.mfa_token, /^mfa_[A-Za-z0-9_-]{43}$/)
      t.same(res.body.methods, ['totp', 'recovery_code'])
      t.equal(res.body.expires_in, 300)
      t.notOk('access_token' in res.body || 'refresh_token' in res.body, 'no tokens before the second factor')

      const other = await registerUser(server)
      const wrongWithMfa = await server.call('POST', '/auth/login', { body: { email: user.email, password: 'not the password at all' } })
      const wrongWithout = await server.call('POST', '/auth/login', { body: { email: other.email, password: 'not the password at all' } })
      const unknown = await server.call('POST', '/auth/login', { body: { email: newEmail(), password: 'not the password at all' } })
      t.equal(wrongWithMfa.status, 401)
      t.same(wrongWithMfa.body, wrongWithout.body, 'a wrong password answers alike with or without MFA')
      t.same(wrongWithMfa.body, unknown.body)
      t.notOk('mfa_token' in wrongWithMfa.body)

      const ok = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: res.body.mfa_token, code: clock.code(secret) } })
      t.equal(ok.status, 200)
      t.equal(ok.headers.get('cache-control'), 'no-store')
      t.equal(ok.body.user.email, user.email)
      t.same(claims(ok.body.access_token).amr, ['pwd', 'otp', 'mfa'])
      const spent = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: res.body.mfa_token, code: clock.code(secret, 30) } })
      t.equal(spent.body.code, 'INVALID_MFA_CODE', 'an mfa_token is single use')

      const refreshed = await server.call('POST', '/auth/refresh', { body: { refresh_token: ok.body.refresh_token } })
      t.equal(refreshed.status, 200)
      t.same(claims(refreshed.body.access_token).amr, ['pwd', 'otp', 'mfa'], 'the session keeps its amr across refreshes')
      const me = await server.call('GET', '/auth/me', { token: refreshed.body.access_token })
      t.equal(me.status, 200)
    })

    t.test('replay: a code is accepted once, even with a new mfa_token', async (t) => {
      clock.advance(30)
      const code = clock.code(secret)
      const first = await login()
      t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: first.body.mfa_token, code } })).status, 200)
      const second = await login()
      const replay = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: second.body.mfa_token, code } })
      t.equal(replay.status, 401)
      t.equal(replay.body.code, 'INVALID_MFA_CODE')
      clock.advance(30)
      t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: second.body.mfa_token, code: clock.code(secret) } })).status, 200, 'the next step\'s code works on the same token')
    })

    t.test('drift: one step either side is accepted, two are not; no step goes back', async (t) => {
      clock.advance(90)
      const verify = async (code: string) => {
        const step = await login()
        return server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, code } })
      }
      t.equal((await verify(clock.code(secret, -30))).status, 200, 'a code one step old (the phone is slow)')
      t.equal((await verify(clock.code(secret, 60))).body.code, 'INVALID_MFA_CODE', 'two steps ahead is too far')
      t.equal((await verify(clock.code(secret, -60))).body.code, 'INVALID_MFA_CODE', 'two steps behind is too far')
      t.equal((await verify(clock.code(secret, 30))).status, 200, 'a code one step ahead (the phone is fast)')
      t.equal((await verify(clock.code(secret))).body.code, 'INVALID_MFA_CODE', 'the current step is now older than the last one used')
      clock.advance(60)
    })

    t.test('five wrong answers kill the mfa_token; failures count against the account', async (t) => {
      clock.advance(30)
      // A success first: earlier failures are forgotten.
      const warm = await login()
      t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: warm.body.mfa_token, code: clock.code(secret) } })).status, 200)
      clock.advance(30)
      const step = await login()
      const good = clock.code(secret)
      const wrong = good === '123456' ? '654321' : '123456'
      for (let i = 1; i <= 5; i++) {
        const res = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, code: wrong } })
        t.equal(res.body.code, 'INVALID_MFA_CODE', `wrong answer ${i}`)
      }
      const dead = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, code: good } })
      t.equal(dead.status, 401)
      t.equal(dead.body.code, 'INVALID_MFA_CODE', 'after five wrong answers even the right code is refused')
      const row = await server.app.store.prisma.mfaLogin.findFirstOrThrow({ where: { userId: user.id, usedAt: null }, orderBy: { createdAt: 'desc' } })
      t.equal(row.attempts, 5)

      // The account's throttle counted the five failures: a new mfa_token (the password was
      // right again, which does not reset it) waits out the back-off.
      const fresh = await login()
      const limited = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: fresh.body.mfa_token, code: good } })
      t.equal(limited.status, 429, 'the fifth failure started the account\'s back-off')
      t.ok(Number(limited.headers.get('retry-after')) >= 1)
      clock.advance(2)
      t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: fresh.body.mfa_token, code: wrong } })).body.code, 'INVALID_MFA_CODE', 'a sixth failure')
      t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: fresh.body.mfa_token, code: good } })).status, 429, 'the back-off grew')
      clock.advance(3)
      t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: fresh.body.mfa_token, code: good } })).status, 200, 'after the back-off the right code works (and resets the count)')
      const malformed = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: 'mfa_not-a-real-token', code: good } })
      t.equal(malformed.body.code, 'INVALID_MFA_CODE')
    })

    t.test('each recovery code logs in once', async (t) => {
      for (const [i, code] of recoveryCodes.entries()) {
        const step = await login()
        t.same(step.body.methods, i < 10 ? ['totp', 'recovery_code'] : ['totp'])
        // Case, dashes and spaces do not matter.
        const typed = i % 2 === 0 ? code : ` ${code.replace(/-/g, '').toUpperCase()} `
        const res = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, recovery_code: typed } })
        t.equal(res.status, 200, `recovery code ${i + 1}`)
        t.same(claims(res.body.access_token).amr, ['pwd', 'otp', 'mfa'])
        const again = await login()
        const reuse = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: again.body.mfa_token, recovery_code: code } })
        t.equal(reuse.body.code, 'INVALID_MFA_CODE', `recovery code ${i + 1} works only once`)
        // Wrong answers count: settle this one with the current TOTP code.
        clock.advance(30)
        t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: again.body.mfa_token, code: clock.code(secret) } })).status, 200)
      }
      const step = await login()
      t.same(step.body.methods, ['totp'], 'no recovery code left')
    })

    t.test('regeneration needs a current code (with a password-only token) and replaces the whole set', async (t) => {
      const status = await server.call('GET', '/auth/mfa', { token: user.token })
      t.same(status.body, { totp: true, passkeys: 0, recovery_codes: 0 })
      const none = await server.call('POST', '/auth/mfa/recovery-codes', { token: user.token, body: {} })
      t.equal(none.status, 401)
      t.equal(none.body.code, 'INSUFFICIENT_AUTHENTICATION', 'a password-only token and no code')
      t.match(none.headers.get('www-authenticate'), /^Bearer error="insufficient_user_authentication".*max_age="300"/)
      clock.advance(30)
      const first = await server.call('POST', '/auth/mfa/recovery-codes', { token: user.token, body: { code: clock.code(secret) } })
      t.equal(first.status, 200)
      t.equal(first.body.recovery_codes.length, 10)
      clock.advance(30)
      const second = await server.call('POST', '/auth/mfa/recovery-codes', { token: user.token, body: { code: clock.code(secret) } })
      t.equal(second.status, 200)
      t.equal((await server.call('GET', '/auth/mfa', { token: user.token })).body.recovery_codes, 10)
      const step = await login()
      const old = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, recovery_code: first.body.recovery_codes[0] } })
      t.equal(old.body.code, 'INVALID_MFA_CODE', 'the previous set stopped working')
      const fresh = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, recovery_code: second.body.recovery_codes[0] } })
      t.equal(fresh.status, 200)
      t.equal((await server.call('GET', '/auth/mfa', { token: user.token })).body.recovery_codes, 9)
    })

    t.test('the password grant answers mfa_required; /auth/mfa/verify completes it for that client', async (t) => {
      const res = await server.call('POST', '/oauth/token', { form: { grant_type: 'password', username: user.email, password: PASSWORD } })
      t.equal(res.status, 403)
      t.equal(res.body.error, 'mfa_required')
      t.type(res.body.error_description, 'string')
      t.match(res.body.mfa_token, /^mfa_/)
      t.notOk('access_token' in res.body)
      const wrong = await server.call('POST', '/oauth/token', { form: { grant_type: 'password', username: user.email, password: 'not the password at all' } })
      t.same(wrong.body.error, 'invalid_grant', 'a wrong password still says only invalid_grant')
      t.notOk('mfa_token' in wrong.body)
      clock.advance(30)
      const done = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: res.body.mfa_token, code: clock.code(secret) } })
      t.equal(done.status, 200)
      t.same(claims(done.body.access_token).amr, ['pwd', 'otp', 'mfa'])
      const refreshed = await server.call('POST', '/oauth/token', { form: { grant_type: 'refresh_token', refresh_token: done.body.refresh_token } })
      t.equal(refreshed.status, 200, 'the session belongs to the client that asked')
    })

    t.test('turning TOTP off needs a current code (with a password-only token); then a password is enough again', async (t) => {
      clock.advance(30)
      const wrong = await server.call('DELETE', '/auth/mfa/totp', { token: user.token, body: { code: clock.code(secret, 90) } })
      t.equal(wrong.status, 401)
      t.equal(wrong.body.code, 'INVALID_MFA_CODE')
      const missing = await server.call('DELETE', '/auth/mfa/totp', { token: user.token, body: {} })
      t.equal(missing.status, 401, 'a code or a recovery code is required with this token')
      t.equal(missing.body.code, 'INSUFFICIENT_AUTHENTICATION')
      const both = await server.call('DELETE', '/auth/mfa/totp', { token: user.token, body: { code: clock.code(secret), recovery_code: 'aaaa-bbbb-cccc-dddd' } })
      t.equal(both.status, 400, 'a code and a recovery code at once')
      t.equal(both.body.code, 'FST_ERR_VALIDATION')
      const off = await server.call('DELETE', '/auth/mfa/totp', { token: user.token, body: { code: clock.code(secret) } })
      t.equal(off.status, 204)
      t.equal(await server.app.store.prisma.totpFactor.count({ where: { userId: user.id } }), 0)
      t.equal(await server.app.store.prisma.recoveryCode.count({ where: { userId: user.id } }), 0, 'recovery codes go with the last factor')
      const res = await login()
      t.equal(res.status, 200)
      t.same(claims(res.body.access_token).amr, ['pwd'])
      t.same((await server.call('GET', '/auth/me', { token: res.body.access_token })).body.mfa, { totp: false, passkeys: 0 })
      await server.app.audit.flush()
      const audit = await server.app.store.prisma.auditEvent.findMany({ where: { subjectId: user.id, type: { startsWith: 'mfa_' } } })
      t.ok(audit.some((e) => e.type === 'mfa_totp_disabled' && e.outcome === 'success'))
      t.ok(audit.some((e) => e.type === 'mfa_totp_enabled' && e.outcome === 'success'))
    })
  })
}
