// The account-mail and browser variables of CONTRACT §9 and §10: defaults, and one clear line
// naming the variable for a bad value.
import t from 'tap'
import { loadConfig, ConfigError } from '../../server/config.ts'

t.test('defaults', async (t) => {
  const c = loadConfig({ PORT: '3000' })
  t.equal(c.smtpUrl, undefined)
  t.equal(c.mailFrom, 'Gatehouse <no-reply@localhost>')
  t.equal(c.mailOutboxDir, './data/outbox')
  t.equal(c.appUrl, 'http://127.0.0.1:3000', 'APP_URL defaults to AUTH_ISSUER')
  t.equal(c.appName, 'Gatehouse')
  t.equal(c.emailVerificationTtl, 86_400)
  t.equal(c.passwordResetTtl, 1800)
  t.equal(c.orgInvitationTtl, 604_800, 'invitations work for 7 days')
  t.equal(c.requireVerifiedEmail, false)
  t.same(c.corsOrigins, [], 'no CORS origin by default')
})

t.test('values', async (t) => {
  const c = loadConfig({
    SMTP_URL: 'smtps://user:pw@mail.example.com:465',
    MAIL_FROM: 'Acme <no-reply@acme.example>',
    APP_URL: 'https://app.acme.example/',
    REQUIRE_VERIFIED_EMAIL: 'TRUE',
    CORS_ORIGINS: 'https://app.acme.example, http://localhost:5173,https://app.acme.example',
    PASSWORD_RESET_TTL: '600',
    ORG_INVITATION_TTL: '3600'
  })
  t.equal(c.appUrl, 'https://app.acme.example', 'a trailing slash is dropped')
  t.equal(c.requireVerifiedEmail, true)
  t.same(c.corsOrigins, ['https://app.acme.example', 'http://localhost:5173'], 'trimmed and deduplicated')
  t.equal(c.passwordResetTtl, 600)
  t.equal(c.orgInvitationTtl, 3600)
})

t.test('bad values name their variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ SMTP_URL: 'http://mail.example.com' }, 'SMTP_URL'],
    [{ SMTP_URL: 'smtp://' }, 'SMTP_URL'],
    [{ MAIL_FROM: 'nobody' }, 'MAIL_FROM'],
    [{ MAIL_FROM: 'a@b\r\nBcc: x@y' }, 'MAIL_FROM'],
    [{ APP_URL: 'app.example.com' }, 'APP_URL'],
    [{ REQUIRE_VERIFIED_EMAIL: 'yes' }, 'REQUIRE_VERIFIED_EMAIL'],
    [{ CORS_ORIGINS: '*' }, 'CORS_ORIGINS'],
    [{ CORS_ORIGINS: 'https://app.example.com/' }, 'CORS_ORIGINS'],
    [{ CORS_ORIGINS: 'https://*.example.com' }, 'CORS_ORIGINS'],
    [{ PASSWORD_RESET_TTL: '10' }, 'PASSWORD_RESET_TTL'],
    [{ EMAIL_VERIFICATION_TTL: 'a day' }, 'EMAIL_VERIFICATION_TTL'],
    [{ ORG_INVITATION_TTL: '30' }, 'ORG_INVITATION_TTL'],
    [{ ORG_INVITATION_TTL: '2592001' }, 'ORG_INVITATION_TTL']
  ]
  for (const [env, variable] of cases) {
    let thrown: unknown
    try { loadConfig(env) } catch (err) { thrown = err }
    t.ok(thrown instanceof ConfigError && thrown.variable === variable, `${JSON.stringify(env)} names ${variable}`)
  }
})
