// The path of a request through the standalone server (docs/architecture.md), shown by what each
// step answers when the next one would answer differently:
//   onRequest: rate limiter, then authenticate  ->  body parsing and validation  ->
//   preHandler: rbac guard  ->  handler  ->  service (fastify.users, ...)  ->  store
// and the composition rules: a verifier registered after authenticate, the store after rbac,
// Redis after rate-limit, audit after accounts, or the mailer after orgs, fails at ready instead of
// being silently left out.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { build } from './helpers/build.ts'
import { authenticate } from '../plugins/authenticate/index.ts'
import { trustedIssuers } from '../plugins/trusted-issuers/index.ts'
import { rbac } from '../plugins/rbac/index.ts'
import { store } from '../plugins/store/index.ts'
import { createTestDatabase } from './helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON } from './helpers/redis.ts'
import { rateLimit } from '../plugins/rate-limit/index.ts'
import { redis } from '../plugins/redis/index.ts'
import { audit } from '../plugins/audit/index.ts'
import { mailer } from '../plugins/mailer/index.ts'
import { accounts } from '../plugins/accounts/index.ts'
import { orgs } from '../plugins/orgs/index.ts'

const PASSWORD = 'composition passphrase 8812'

/** A stand-in for gatehouse-credentials: the decorator authenticate looks for. */
const fakeCredentials = fp(async (fastify: FastifyInstance) => {
  fastify.decorate('credentials', { verifyBasic: async () => ({ userId: 'x' }), verifyApiKey: async () => ({ userId: 'x', apiKeyId: 'k' }) } as never)
}, { name: 'fake-credentials' })

t.test('the hooks of a request run in the documented order', async (t) => {
  const { app } = await build(t, { app: { rateLimit: { classes: { default: { max: 4 } } } } })
  const register = async (email: string) => (await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).json()
  const admin = await register('first@example.com')
  const plain = await register('plain@example.com')
  const patch = (ip: string, headers: Record<string, string>, payload: string) => app.inject({
    method: 'PATCH', url: `/admin/users/${admin.user.id}`, remoteAddress: ip, headers: { 'content-type': 'application/json', ...headers }, payload
  })

  // authenticate runs in onRequest, before the body is parsed: no credentials and a broken body is 401.
  const anonymous = await patch('192.0.2.1', {}, '{"disabled": tru')
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.json().code, 'MISSING_AUTHORIZATION')

  // rbac runs in preHandler, after authentication: a valid body from a non-admin is 403, nothing changes.
  const forbidden = await patch('192.0.2.2', { authorization: `Bearer ${plain.access_token}` }, '{"disabled": true}')
  t.equal(forbidden.statusCode, 403)
  t.equal(forbidden.json().code, 'FORBIDDEN')
  t.equal((await app.store.prisma.user.findUniqueOrThrow({ where: { id: admin.user.id } })).status, 'active', 'the handler and the store were never reached')

})

t.test('the limiter runs first of all: a spent budget is 429 even for a bad token', async (t) => {
  const { app } = await build(t, { app: { rateLimit: { classes: { default: { max: 4 } } } } })
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    statuses.push((await app.inject({ method: 'GET', url: '/auth/me', remoteAddress: '192.0.2.3', headers: { authorization: 'Bearer not-a-token' } })).statusCode)
  }
  t.same(statuses, [401, 401, 401, 401, 429])
})

t.test('authenticate fails at ready when a verifier is registered after it, or there is none', async (t) => {
  const none = Fastify()
  t.teardown(() => none.close())
  none.register(authenticate)
  await t.rejects(Promise.resolve(none.ready()), { name: 'OptionsError', plugin: 'gatehouse-authenticate', option: 'schemes' }, 'no verifier at all')

  const reordered = Fastify()
  t.teardown(() => reordered.close())
  reordered.register(trustedIssuers, { issuers: [{ issuer: 'https://a.example.com', jwksUri: 'https://a.example.com/jwks', audiences: ['api'] }] })
  reordered.register(authenticate)
  reordered.register(fakeCredentials)
  await t.rejects(Promise.resolve(reordered.ready()), { name: 'OptionsError', message: /cannot use gatehouse-credentials: register it before gatehouse-authenticate/ })

  const ordered = Fastify()
  t.teardown(() => ordered.close())
  ordered.register(fakeCredentials)
  ordered.register(authenticate)
  await t.resolves(Promise.resolve(ordered.ready()), 'the same plugins in the documented order start')
})

t.test('rbac fails at ready when the store is registered after it', async (t) => {
  const db = await createTestDatabase('sqlite')
  t.teardown(() => db.drop())
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(rbac)
  app.register(store, { databaseUrl: db.url })
  await t.rejects(Promise.resolve(app.ready()), { name: 'RbacConfigError', code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-rbac', option: 'memberships' })
})

t.test('rate-limit fails at ready when a Redis client is registered after it', { skip: (await redisUrl()) === null ? REDIS_SKIP_REASON : false }, async (t) => {
  const url = await redisUrl() as string
  const late = Fastify()
  t.teardown(() => late.close())
  late.register(rateLimit)
  late.register(redis, { url })
  await t.rejects(Promise.resolve(late.ready()), { name: 'RateLimitOptionsError', plugin: 'gatehouse-rate-limit', option: 'redis' })

  const ordered = Fastify()
  t.teardown(() => ordered.close())
  ordered.register(redis, { url })
  ordered.register(rateLimit)
  await t.resolves(Promise.resolve(ordered.ready()), 'Redis first: the counters are shared')
})

t.test('accounts fails at ready when audit is registered after it', async (t) => {
  const db = await createTestDatabase('sqlite')
  t.teardown(() => db.drop())
  const compose = (auditFirst: boolean): FastifyInstance => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(store, { databaseUrl: db.url })
    if (auditFirst) app.register(audit)
    // Stand-ins with the names accounts depends on: only the order of audit is under test.
    app.register(fp(async (f: FastifyInstance) => { f.decorate('credentials', {} as never) }, { name: 'gatehouse-credentials' }))
    app.register(fp(async (f: FastifyInstance) => { f.decorate('tokens', {} as never) }, { name: 'gatehouse-tokens' }))
    app.register(mailer, { appUrl: 'http://127.0.0.1', transport: { description: 'nowhere', send: async () => {}, close: () => {} } })
    app.register(accounts, { appUrl: 'http://127.0.0.1' })
    if (!auditFirst) app.register(audit)
    return app
  }
  await t.rejects(Promise.resolve(compose(false).ready()), { name: 'OptionsError', code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-accounts', option: 'audit' })
  await t.resolves(Promise.resolve(compose(true).ready()), 'audit first: account events are recorded')
})

t.test('orgs fails at ready when the mailer is registered after it; without one, invitations say why', async (t) => {
  const db = await createTestDatabase('sqlite')
  t.teardown(() => db.drop())
  const compose = (mail: 'first' | 'after' | 'none'): FastifyInstance => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(store, { databaseUrl: db.url })
    app.register(audit)
    // A stand-in with the name orgs depends on: only the order of the mailer is under test.
    app.register(fp(async (f: FastifyInstance) => { f.decorate('credentials', { normalizeEmail: (e: string) => e.trim().toLowerCase() } as never) }, { name: 'gatehouse-credentials' }))
    app.register(rbac)
    const nowhere = { appUrl: 'http://127.0.0.1', transport: { description: 'nowhere', send: async () => {}, close: () => {} } }
    if (mail === 'first') app.register(mailer, nowhere)
    app.register(orgs)
    if (mail === 'after') app.register(mailer, nowhere)
    return app
  }
  await t.rejects(Promise.resolve(compose('after').ready()), { name: 'OptionsError', code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-orgs', option: 'mailer' })
  await t.resolves(Promise.resolve(compose('first').ready()), 'mailer first: invitations are mailed')
  const bare = compose('none')
  await bare.ready()
  const org = await bare.orgs.create((await bare.store.prisma.user.create({ data: { email: 'ada@example.com' } })).id, 'Acme')
  await t.rejects(bare.orgs.invite(org.id, 'bob@example.com', 'viewer'), { name: 'OptionsError', plugin: 'gatehouse-orgs', option: 'mailer', message: /register gatehouse-mailer/ })
  t.equal(await bare.store.prisma.orgInvitation.count(), 0, 'nothing stored')
})
