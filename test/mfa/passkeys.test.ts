// Passkeys over HTTP on SQLite and PostgreSQL, with a software authenticator whose signature
// counter and user-verification flag the test controls: registration, passwordless login and the
// second factor, the amr of each, cloned authenticators (a counter that does not advance),
// foreign origins, expired and reused challenges, another user's passkey, the admin reset, and
// the start-up rules of WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS.
import t from 'tap'
import { loadConfig, ConfigError } from '../../server/config.ts'
import { resolveOptions, MfaOptionsError } from '../../plugins/mfa/index.ts'
import { isOptionsError } from '../../lib/options.ts'
import { providers } from '../helpers/databases.ts'
import { PASSWORD, claims, mfaServer, registerUser, type MfaServer } from './helpers.ts'
import { SoftAuthenticator } from './soft-authenticator.ts'

const ORIGIN = 'http://localhost:3000'

async function registerPasskey (server: MfaServer, token: string, soft: SoftAuthenticator, opts: { userVerified?: boolean } = {}): Promise<string> {
  const options = await server.call('POST', '/auth/webauthn/register/options', { token, body: {} })
  if (options.status !== 200) throw new Error(`register/options answered ${options.status}`)
  const res = await server.call('POST', '/auth/webauthn/register', { token, body: { credential: soft.create(options.body, opts) } })
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${JSON.stringify(res.body)}`)
  return res.body.id
}

async function passwordless (server: MfaServer, soft: SoftAuthenticator, opts: Parameters<SoftAuthenticator['get']>[1] = {}) {
  const start = await server.call('POST', '/auth/webauthn/login/options', { body: {} })
  return await server.call('POST', '/auth/webauthn/login', { body: { challenge_id: start.body.challenge_id, credential: soft.get(start.body.options, opts) } })
}

for (const { provider, skip } of await providers()) {
  t.test(`passkeys on ${provider}`, { skip }, async (t) => {
    const server = await mfaServer(t, { provider, env: { AUTH_ISSUER: ORIGIN } })
    const soft = new SoftAuthenticator('localhost', ORIGIN)
    const user = await registerUser(server)

    t.test('registration', async (t) => {
      const options = await server.call('POST', '/auth/webauthn/register/options', { token: user.token, body: {} })
      t.equal(options.status, 200)
      t.equal(options.headers.get('cache-control'), 'no-store')
      t.equal(options.body.rp.id, 'localhost')
      t.equal(Buffer.from(options.body.user.id, 'base64url').toString('utf8'), user.id, 'the user handle is the account id')
      const foreign = new SoftAuthenticator('localhost', 'http://localhost:4000')
      const wrongOrigin = await server.call('POST', '/auth/webauthn/register', { token: user.token, body: { credential: foreign.create(options.body) } })
      t.equal(wrongOrigin.body.code, 'INVALID_MFA_CODE', 'an origin outside WEBAUTHN_ORIGINS is refused')
      const again = await server.call('POST', '/auth/webauthn/register/options', { token: user.token, body: {} })
      const credential = soft.create(again.body)
      const ok = await server.call('POST', '/auth/webauthn/register', { token: user.token, body: { credential, name: 'Phone' } })
      t.equal(ok.status, 201)
      const replay = await server.call('POST', '/auth/webauthn/register', { token: user.token, body: { credential } })
      t.equal(replay.body.code, 'INVALID_MFA_CODE', 'a registration challenge is single use')
      const other = await registerUser(server)
      const stolen = await server.call('POST', '/auth/webauthn/register/options', { token: other.token, body: {} })
      t.equal((await server.call('POST', '/auth/webauthn/register', { token: user.token, body: { credential: soft.create(stolen.body) } })).body.code, 'INVALID_MFA_CODE', 'a challenge issued to another account does not register')
      soft.credentials.pop()
      const list = await server.call('GET', '/auth/webauthn/credentials', { token: user.token })
      t.equal(list.body.length, 1)
      t.equal(list.body[0].name, 'Phone')
      const row = await server.app.store.prisma.webAuthnCredential.findFirstOrThrow({ where: { userId: user.id } })
      t.notOk(JSON.stringify(row, (_k, v) => typeof v === 'bigint' ? String(v) : v).includes('"d"'), 'only the public key is stored')
    })

    t.test('passwordless login: amr by user verification; counters must advance', async (t) => {
      const verified = await passwordless(server, soft)
      t.equal(verified.status, 200)
      t.same(claims(verified.body.access_token).amr, ['hwk', 'user', 'mfa'])
      const plain = await passwordless(server, soft, { userVerified: false })
      t.equal(plain.status, 200)
      t.same(claims(plain.body.access_token).amr, ['hwk', 'user'], 'without user verification a passkey is one factor')
      const stored = Number((await server.app.store.prisma.webAuthnCredential.findFirstOrThrow({ where: { userId: user.id } })).counter)
      t.equal(stored, 2)
      const cloned = await passwordless(server, soft, { counter: 2 })
      t.equal(cloned.status, 401, 'a counter that did not advance (a cloned authenticator) is refused')
      t.equal(cloned.body.code, 'INVALID_MFA_CODE')
      t.equal((await passwordless(server, soft, { counter: 1 })).body.code, 'INVALID_MFA_CODE', 'nor one that went back')
      t.equal((await passwordless(server, soft, { counter: 10 })).status, 200, 'the genuine authenticator, further on, still works')
      t.equal((await passwordless(server, soft, { origin: 'https://evil.example' })).body.code, 'INVALID_MFA_CODE', 'a foreign origin is refused')

      const start = await server.call('POST', '/auth/webauthn/login/options', { body: {} })
      server.clock.advance(301)
      const late = await server.call('POST', '/auth/webauthn/login', { body: { challenge_id: start.body.challenge_id, credential: soft.get(start.body.options) } })
      t.equal(late.body.code, 'INVALID_MFA_CODE', 'an expired challenge is refused')
      const bogus = await server.call('POST', '/auth/webauthn/login', { body: { challenge_id: 'no-such-challenge', credential: soft.get(start.body.options) } })
      t.equal(bogus.body.code, 'INVALID_MFA_CODE')
    })

    t.test('second factor after a password', async (t) => {
      const step = await server.call('POST', '/auth/login', { body: { email: user.email, password: PASSWORD } })
      t.equal(step.body.code, 'MFA_REQUIRED')
      t.same(step.body.methods, ['webauthn'])
      t.equal((await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, code: '123456' } })).body.code, 'INVALID_MFA_CODE', 'no TOTP on this account')

      const mallory = await registerUser(server)
      const malloryKey = new SoftAuthenticator('localhost', ORIGIN)
      await registerPasskey(server, mallory.token, malloryKey)
      const options = await server.call('POST', '/auth/mfa/webauthn/options', { body: { mfa_token: step.body.mfa_token } })
      t.equal(options.status, 200)
      t.equal(options.body.allowCredentials.length, 1)
      const foreign = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, credential: malloryKey.get(options.body) } })
      t.equal(foreign.body.code, 'INVALID_MFA_CODE', 'another account\'s passkey is no second factor here')
      const options2 = await server.call('POST', '/auth/mfa/webauthn/options', { body: { mfa_token: step.body.mfa_token } })
      const done = await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, credential: soft.get(options2.body) } })
      t.equal(done.status, 200)
      t.same(claims(done.body.access_token).amr, ['pwd', 'hwk', 'user', 'mfa'])
      t.equal((await server.call('POST', '/auth/mfa/webauthn/options', { body: { mfa_token: step.body.mfa_token } })).body.code, 'INVALID_MFA_CODE', 'the mfa_token is spent')

      const reset = await server.app.mfa.reset(user.id, { via: 'test' })
      t.same(reset, { totp: false, passkeys: 1, recoveryCodes: 0 })
      t.equal((await server.call('POST', '/auth/login', { body: { email: user.email, password: PASSWORD } })).status, 200, 'after the reset a password is enough')
      t.equal((await passwordless(server, soft)).body.code, 'INVALID_MFA_CODE', 'and the removed passkey signs no one in')
    })
  })
}

t.test('without an RP id passkeys are off and their routes answer 404', async (t) => {
  const server = await mfaServer(t)
  t.equal(server.config.webauthnRpId, undefined, 'AUTH_ISSUER http://127.0.0.1:3000 has an IP address for a host')
  const res = await server.call('POST', '/auth/webauthn/login/options', { body: {} })
  t.equal(res.status, 404)
  const user = await registerUser(server)
  t.equal((await server.call('POST', '/auth/webauthn/register/options', { token: user.token, body: {} })).status, 404)
})

t.test('WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS are checked at start-up', async (t) => {
  const base = { AUTH_ISSUER: 'https://auth.example.com' }
  const ok = loadConfig({ ...base, WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://auth.example.com,https://app.example.com' })
  t.equal(ok.webauthnRpId, 'example.com')
  t.same(ok.webauthnOrigins, ['https://auth.example.com', 'https://app.example.com'])
  const defaults = loadConfig({ ...base, CORS_ORIGINS: 'https://auth.example.com,https://elsewhere.org' })
  t.equal(defaults.webauthnRpId, 'auth.example.com', 'the RP id defaults to the host of AUTH_ISSUER')
  t.same(defaults.webauthnOrigins, ['https://auth.example.com'], 'default origins: AUTH_ISSUER and the CORS_ORIGINS that belong to the RP id')
  const bad: Array<[Record<string, string>, string, RegExp]> = [
    [{ WEBAUTHN_RP_ID: '10.0.0.1' }, 'WEBAUTHN_RP_ID', /IP address/],
    [{ WEBAUTHN_RP_ID: 'Example.COM' }, 'WEBAUTHN_RP_ID', /lower case/],
    [{ WEBAUTHN_ORIGINS: 'https://evil.example.org' }, 'WEBAUTHN_ORIGINS', /does not belong to the RP id/],
    [{ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'http://app.example.com' }, 'WEBAUTHN_ORIGINS', /https/],
    [{ WEBAUTHN_ORIGINS: 'https://auth.example.com/login' }, 'WEBAUTHN_ORIGINS', /bare origin/],
    [{ WEBAUTHN_RP_ID: 'other.org' }, 'WEBAUTHN_ORIGINS', /does not belong/],
    [{ ADMIN_REQUIRE_MFA: 'maybe' }, 'ADMIN_REQUIRE_MFA', /true or false/]
  ]
  for (const [env, variable, message] of bad) {
    const err = t.throws(() => loadConfig({ ...base, ...env })) as ConfigError
    t.ok(err instanceof ConfigError, JSON.stringify(env))
    t.equal(err.variable, variable)
    t.match(err.message, message)
  }
})

t.test('a bad gatehouse-mfa option is a coded OptionsError naming the option', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{}, 'keysDir'],
    [{ keysDir: '/k', totpIssuer: 'a:b' }, 'totpIssuer'],
    [{ keysDir: '/k', maxAttempts: 0 }, 'maxAttempts'],
    [{ keysDir: '/k', mfaTokenTtl: 1.5 }, 'mfaTokenTtl'],
    [{ keysDir: '/k', clock: 5 }, 'clock'],
    [{ keysDir: '/k', webauthn: { rpId: '10.0.0.1', origins: ['https://10.0.0.1'] } }, 'webauthn.rpId'],
    [{ keysDir: '/k', webauthn: { rpId: 'example.com', origins: ['https://evil.org'] } }, 'webauthn.origins']
  ]
  for (const [input, option] of cases) {
    const err = t.throws(() => resolveOptions(input as never)) as MfaOptionsError
    t.ok(err instanceof MfaOptionsError && isOptionsError(err), option)
    t.match(err, { code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-mfa', option }, option)
  }
})
