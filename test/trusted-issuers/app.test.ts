// The whole Gatehouse app with TRUSTED_ISSUERS set: external tokens from a real OIDC provider and
// from an HS256 system go through `authenticate` like our own; unknown issuers cost no fetch;
// neither tokens nor the shared secret reach the logs.
import t from 'tap'
import { rmSync } from 'node:fs'
import { SignJWT } from 'jose'
import { buildApp } from '../../server/app.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import { captureLogs, testConfig } from '../helpers/build.ts'
import { oidcProvider, RESOURCE, type TestContext } from './helpers.ts'

const HS_SECRET = 'hs-shared-secret-0123456789abcdef-XYZ'

async function appWith (t: TestContext, issuers: unknown[]): Promise<{ app: Awaited<ReturnType<typeof buildApp>>, logs: string[] }> {
  const db = await createTestDatabase('sqlite')
  const config = testConfig({ DATABASE_URL: db.url, TRUSTED_ISSUERS: JSON.stringify(issuers) })
  const { logger, logs } = captureLogs()
  const app = await buildApp(config, { logger })
  app.register(async (scope) => {
    scope.addHook('onRequest', scope.authenticate)
    scope.get('/external-check', async (request) => ({ user: request.user }))
  })
  t.teardown(async () => {
    await app.close()
    await db.drop()
    rmSync(config.keysDir, { recursive: true, force: true })
  })
  await app.ready()
  return { app, logs }
}

t.test('the full app accepts allowlisted external tokens through authenticate', async (t) => {
  const op = await oidcProvider(t)
  const other = await oidcProvider(t)
  const { app, logs } = await appWith(t, [
    { issuer: op.issuer, discovery: true, audiences: [RESOURCE], allowedTypes: ['at+jwt'] },
    { issuer: 'kalamdb-test', secret: HS_SECRET, algorithms: ['HS256'], audiences: ['my-api'] }
  ])
  t.ok(app.hasDecorator('trustedIssuers'))
  const token = await op.token()
  const res = await app.inject({ url: '/external-check', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  const user = res.json().user
  t.match(user, { id: 'service-a', sub: 'service-a', iss: op.issuer, external: true, scheme: 'bearer', roles: [] })

  const hsToken = await new SignJWT({ iss: 'kalamdb-test', sub: 'db-user', aud: 'my-api' })
    .setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').setIssuedAt().sign(Buffer.from(HS_SECRET))
  const hs = await app.inject({ url: '/external-check', headers: { authorization: `Bearer ${hsToken}` } })
  t.equal(hs.statusCode, 200)
  t.match(hs.json().user, { sub: 'db-user', iss: 'kalamdb-test', external: true })

  const foreign = await other.token()
  const untrusted = await app.inject({ url: '/external-check', headers: { authorization: `Bearer ${foreign}` } })
  t.equal(untrusted.statusCode, 401)
  t.equal(untrusted.json().code, 'UNTRUSTED_ISSUER')
  t.equal(untrusted.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal(other.server.count('/jwks'), 0)
  t.equal(other.server.count('/.well-known/openid-configuration'), 0)

  const all = logs.join('\n')
  for (const secret of [token, hsToken, foreign, HS_SECRET]) t.notOk(all.includes(secret), 'no token or secret in the logs')
  t.match(all, /trusted external issuers/, 'the allowlist is logged at start (without secrets)')
})
