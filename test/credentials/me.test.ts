// GET /auth/me on SQLite and PostgreSQL, on the whole app with passkeys and a sign-in provider
// configured: every part of the answer (second factors, organizations in name order, provider
// identities oldest first with their exact link time) read in one statement.
import t from 'tap'
import pg from 'pg'
import { providers } from '../helpers/databases.ts'
import { build } from '../helpers/build.ts'
import { createProfileReader } from '../../routes/auth/profile.ts'

const HIGH = { max: 100_000, timeWindowMs: 60_000 }
const PASSWORD = 'violet tractor evening 42'
const GITHUB = {
  id: 'github',
  name: 'GitHub',
  type: 'oauth2',
  authorizationEndpoint: 'https://github.example.test/login/oauth/authorize',
  tokenEndpoint: 'https://github.example.test/login/oauth/access_token',
  userinfoEndpoint: 'https://api.github.example.test/user',
  clientId: 'client-id',
  clientSecret: 'client-secret'
}

// Every statement the pg clients send, recorded at the client (as bench/counts.ts counts them).
let statements: string[] = []
type Query = (this: pg.Client, ...args: unknown[]) => unknown
const pgProto = pg.Client.prototype as unknown as { query: Query }
const query = pgProto.query
pgProto.query = function (...args) {
  const first = args[0] as string | { text?: string }
  statements.push((typeof first === 'string' ? first : first?.text ?? '?').replace(/\s+/g, ' ').slice(0, 80))
  return query.apply(this, args)
}
t.teardown(() => { pgProto.query = query })

for (const { provider, skip } of await providers()) {
  t.test(`GET /auth/me on ${provider}`, { skip }, async (t) => {
    const { app } = await build(t, {
      provider,
      // A host name, not an IP address: passkeys are on.
      env: { AUTH_ISSUER: 'http://localhost:3000', LOGIN_PROVIDERS: JSON.stringify([GITHUB]), LOGIN_REDIRECT_URIS: 'http://localhost:3000/app' },
      app: { rateLimit: { classes: { login: HIGH, register: HIGH, refresh: HIGH, token: HIGH, default: HIGH }, failedCredentials: HIGH } }
    })
    t.not(app.passkeys, null, 'passkeys are configured')
    const prisma = app.store.prisma

    async function account (email: string, name: string): Promise<{ id: string, auth: { authorization: string } }> {
      const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD, name } })
      t.equal(res.statusCode, 201)
      const body = res.json()
      return { id: body.user.id, auth: { authorization: `Bearer ${body.access_token}` } }
    }
    const me = async (auth: { authorization: string }): Promise<{ statusCode: number, body: string, json: () => any }> => await app.inject({ url: '/auth/me', headers: auth })

    t.test('an account with nothing linked', async (t) => {
      const plain = await account('plain@example.com', 'Plain')
      const res = await me(plain.auth)
      t.equal(res.statusCode, 200)
      t.equal(res.body, JSON.stringify({ id: plain.id, email: 'plain@example.com', name: 'Plain', roles: ['user'], email_verified: false, mfa: { totp: false, passkeys: 0 }, orgs: [], providers: [] }), 'the exact body, key order included')
    })

    t.test('second factors, organizations and provider identities', async (t) => {
      const ada = await account('ada@example.com', 'Ada')
      const other = await account('other@example.com', 'Other')
      await prisma.user.update({ where: { id: ada.id }, data: { emailVerifiedAt: new Date() } })
      // Someone else's factors, memberships and identities must not show.
      const beta = await prisma.organization.create({ data: { name: 'beta', slug: `beta-${provider}` } })
      const alpha = await prisma.organization.create({ data: { name: 'Alpha', slug: `alpha-${provider}` } })
      const gamma = await prisma.organization.create({ data: { name: 'Gamma', slug: `gamma-${provider}` } })
      await prisma.membership.create({ data: { orgId: beta.id, userId: ada.id, role: 'member' } })
      await prisma.membership.create({ data: { orgId: alpha.id, userId: ada.id, role: 'owner' } })
      await prisma.membership.create({ data: { orgId: gamma.id, userId: other.id, role: 'owner' } })
      await prisma.totpFactor.create({ data: { userId: other.id, secret: 'sealed', confirmedAt: new Date() } })

      // A TOTP factor being set up (not confirmed) is not on.
      await prisma.totpFactor.create({ data: { userId: ada.id, secret: 'sealed' } })
      t.same((await me(ada.auth)).json().mfa, { totp: false, passkeys: 0 }, 'an unconfirmed TOTP factor is off')
      await prisma.totpFactor.update({ where: { userId: ada.id }, data: { confirmedAt: new Date() } })
      for (const [i, userId] of [ada.id, ada.id, other.id].entries()) {
        await prisma.webAuthnCredential.create({ data: { userId, credentialId: `cred-${provider}-${i}`, publicKey: 'pk', name: `key ${i}`, deviceType: 'singleDevice' } })
      }
      await prisma.recoveryCode.create({ data: { userId: ada.id, codeHash: 'h1' } })

      // The link times have milliseconds: the answer keeps them. A provider no longer configured
      // is shown by its id.
      const older = new Date('2026-01-02T03:04:05.678Z')
      const newer = new Date('2026-02-03T04:05:06.789Z')
      await prisma.providerIdentity.create({ data: { userId: ada.id, providerId: 'github', issuer: 'https://github.example.test', subject: '42', email: 'ada@github.example.test', createdAt: newer } })
      await prisma.providerIdentity.create({ data: { userId: ada.id, providerId: 'retired', issuer: 'https://retired.example.test', subject: 'x', email: null, createdAt: older } })
      await prisma.providerIdentity.create({ data: { userId: other.id, providerId: 'github', issuer: 'https://github.example.test', subject: '43', email: 'other@github.example.test' } })

      const res = await me(ada.auth)
      t.equal(res.statusCode, 200)
      t.equal(res.body, JSON.stringify({
        id: ada.id,
        email: 'ada@example.com',
        name: 'Ada',
        roles: ['user'],
        email_verified: true,
        mfa: { totp: true, passkeys: 2 },
        orgs: [{ id: alpha.id, name: 'Alpha', role: 'owner' }, { id: beta.id, name: 'beta', role: 'member' }],
        providers: [
          { id: 'retired', name: 'retired', email: null, linked_at: '2026-01-02T03:04:05.678Z' },
          { id: 'github', name: 'GitHub', email: 'ada@github.example.test', linked_at: '2026-02-03T04:05:06.789Z' }
        ]
      }), 'the exact body, key order included')

      if (provider === 'postgresql') {
        // The audit rows of the registrations are written in batches: out of the way first.
        await app.audit.flush()
        statements = []
        t.equal((await me(ada.auth)).statusCode, 200)
        t.equal(statements.length, 1, 'one statement per call once the user state is cached', { statements })
      }
    })

    t.test('the reader, on the adapter connection and as a Prisma raw query: null for an unknown id, the deletion time for a deleted account', async (t) => {
      const direct = app.store.sqlite ?? app.store.postgres
      t.ok(direct, 'the store made its client, so it offers its connection')
      const gone = await account('gone@example.com', 'Gone')
      const at = new Date('2026-03-04T05:06:07.890Z')
      await prisma.user.update({ where: { id: gone.id }, data: { deletedAt: at } })
      for (const [path, read] of [['adapter', createProfileReader(prisma, provider, direct)], ['prisma', createProfileReader(prisma, provider)]] as const) {
        t.equal(await read('00000000-0000-0000-0000-000000000000'), null, `${path}: no row`)
        const row = await read(gone.id)
        t.equal(row?.deletedAt?.toISOString(), at.toISOString(), `${path}: deletedAt`)
        t.same(row?.orgs, [], `${path}: no memberships`)
        t.same(row?.identities, [], `${path}: no identities`)
        t.same({ totp: row?.totp, passkeys: row?.passkeys }, { totp: false, passkeys: 0 }, `${path}: no second factor`)
      }
    })
  })
}
