// fastify.authenticate through the whole app: scheme dispatch, errors and challenges of
// CONTRACT §4, Basic and ApiKey with the user-state check, trusted external issuers, per-route
// scheme restriction and protection of an encapsulated group; and over a real socket.
import t from 'tap'
import { request as httpRequest } from 'node:http'
import { createHmac, randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { buildProtected, createUser, tokenFor, bearer } from '../tokens/helpers.ts'
import { authenticate } from '../../plugins/authenticate/index.ts'
import { trustedIssuers } from '../../plugins/trusted-issuers/index.ts'
import { errorHandler } from '../../lib/error-handler.ts'

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!!'
const EXTERNAL = { issuer: 'kalamdb-test', secret: SECRET, algorithms: ['HS256'], audiences: ['my-api'] }

function hs256 (payload: Record<string, unknown>): string {
  const input = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`
}

function externalClaims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { iss: 'kalamdb-test', sub: 'ext-user-1', aud: 'my-api', iat: now, exp: now + 300, jti: randomUUID(), ...overrides }
}

function basic (email: string, password: string): { authorization: string } {
  return { authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}` }
}

t.test('the authenticate hook in the app', async (t) => {
  const { app, logs } = await buildProtected(t, { env: { TRUSTED_ISSUERS: JSON.stringify([EXTERNAL]) } })
  const user = await createUser(app)
  const { token } = await tokenFor(app, user)
  const secrets: string[] = [token.split('.')[2]]

  t.test('missing and malformed headers', async (t) => {
    const missing = await app.inject({ url: '/protected' })
    t.equal(missing.statusCode, 401)
    t.equal(missing.json().code, 'MISSING_AUTHORIZATION')
    t.equal(missing.headers['www-authenticate'], 'Bearer realm="gatehouse"')
    for (const header of ['Bearer', 'Token abc', 'Digest username="x"', 'Basic !!!!', `Basic ${Buffer.from('no-colon').toString('base64')}`]) {
      const res = await app.inject({ url: '/protected', headers: { authorization: header } })
      t.equal(res.statusCode, 400, `${header}: 400`)
      t.equal(res.json().code, 'MALFORMED_AUTHORIZATION', `${header}: MALFORMED_AUTHORIZATION`)
    }
  })

  t.test('Bearer: scheme case, our tokens, foreign and allowlisted issuers', async (t) => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await app.inject({ url: '/protected', headers: { authorization: `${scheme} ${token}` } })
      t.equal(res.statusCode, 200, `${scheme} is accepted`)
      t.equal(res.json().scheme, 'bearer')
      t.equal(res.json().external, false)
    }
    const external = await app.inject({ url: '/protected', headers: bearer(hs256(externalClaims())) })
    t.equal(external.statusCode, 200, 'an allowlisted issuer goes to trustedIssuers.verify')
    t.equal(external.json().external, true)
    t.equal(external.json().sub, 'ext-user-1')
    const foreign = await app.inject({ url: '/protected', headers: bearer(hs256(externalClaims({ iss: 'https://evil.example' }))) })
    t.equal(foreign.statusCode, 401)
    t.equal(foreign.json().code, 'UNTRUSTED_ISSUER')
    t.equal(foreign.headers['www-authenticate'], 'Bearer error="invalid_token"')
    const noIss = await app.inject({ url: '/protected', headers: bearer(hs256(externalClaims({ iss: undefined }))) })
    t.equal(noIss.json().code, 'MISSING_CLAIM')
    const big = await app.inject({ url: '/protected', headers: bearer('a'.repeat(9000)) })
    t.equal(big.json().code, 'INVALID_TOKEN', 'over 8 KiB')
  })

  t.test('scheme restriction per route', async (t) => {
    const res = await app.inject({ url: '/bearer-only', headers: basic(user.email, 'whatever-password') })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'MALFORMED_AUTHORIZATION')
    t.equal((await app.inject({ url: '/bearer-only', headers: bearer(token) })).statusCode, 200)
    t.throws(() => app.createAuthenticate({ schemes: ['digest' as never] }), /unknown scheme/)
  })

  const hasCredentials = app.hasDecorator('credentials')
  const skip = hasCredentials ? false : 'gatehouse-credentials is not registered in this app'

  t.test('Basic and ApiKey, then the user state check', { skip }, async (t) => {
    const password = 'correct horse battery staple 42'
    const hashed = await app.credentials.hashPassword(password)
    const row = await app.store.prisma.user.create({ data: { email: `basic-${randomUUID()}@example.com`, passwordHash: hashed } })
    const ok = await app.inject({ url: '/protected', headers: basic(row.email, password) })
    t.equal(ok.statusCode, 200)
    t.equal(ok.json().scheme, 'basic')
    t.equal(ok.json().id, row.id)
    t.same(ok.json().roles, ['user'])
    const wrong = await app.inject({ url: '/protected', headers: basic(row.email, 'not the password at all') })
    t.equal(wrong.statusCode, 401)
    t.equal(wrong.json().code, 'INVALID_CREDENTIALS')
    t.equal(wrong.headers['www-authenticate'], 'Basic realm="gatehouse"')

    const { key } = await app.credentials.createApiKey(row.id, 'ci')
    secrets.push(password, key, Buffer.from(`${row.email}:${password}`).toString('base64'))
    const viaKey = await app.inject({ url: '/protected', headers: { authorization: `ApiKey ${key}` } })
    t.equal(viaKey.statusCode, 200)
    t.equal(viaKey.json().scheme, 'apikey')
    t.equal(viaKey.json().id, row.id)
    const badKey = await app.inject({ url: '/protected', headers: { authorization: `ApiKey ${key.slice(0, -2)}xx` } })
    t.equal(badKey.statusCode, 401)
    t.ok(badKey.headers['www-authenticate'], 'a challenge comes with the 401')

    await app.store.prisma.user.update({ where: { id: row.id }, data: { status: 'disabled' } })
    await app.tokens.userChanged(row.id)
    await app.credentials.forgetUser(row.id)
    const disabledBasic = await app.inject({ url: '/protected', headers: basic(row.email, password) })
    t.equal(disabledBasic.statusCode, 401)
    t.equal(disabledBasic.json().code, 'ACCOUNT_DISABLED')
    t.equal(disabledBasic.headers['www-authenticate'], 'Basic realm="gatehouse"')
    const disabledKey = await app.inject({ url: '/protected', headers: { authorization: `ApiKey ${key}` } })
    t.equal(disabledKey.statusCode, 401)
    t.equal(disabledKey.json().code, 'ACCOUNT_DISABLED')
  })

  t.test('no credential in any log line', async (t) => {
    const text = logs.join('\n')
    t.ok(logs.length > 0, 'requests were logged')
    for (const secret of secrets) t.notOk(text.includes(secret), 'a token, password or key is absent from the logs')
  })
})

t.test('a protected route leaves the other routes public', async (t) => {
  const { app } = await buildProtected(t)
  const user = await createUser(app)
  const { token } = await tokenFor(app, user)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().id, user.id)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'routes outside the group stay public')
})

t.test('group protection by plugin scope', async (t) => {
  const { app } = await buildProtected(t)
  t.equal((await app.inject({ url: '/protected' })).statusCode, 401)
  const scoped = Fastify()
  scoped.setErrorHandler(errorHandler)
  scoped.decorate('tokens', app.tokens)
  await scoped.register(authenticate)
  await scoped.register(async (group) => {
    group.addHook('onRequest', group.authenticate)
    group.get('/group/a', async (request) => ({ id: request.user?.id }))
  })
  scoped.get('/public', async () => ({ ok: true }))
  t.teardown(() => scoped.close())
  const user = await createUser(app)
  const { token } = await tokenFor(app, user)
  t.equal((await scoped.inject({ url: '/group/a' })).json().code, 'MISSING_AUTHORIZATION')
  t.same((await scoped.inject({ url: '/group/a', headers: bearer(token) })).json(), { id: user.id })
  t.equal((await scoped.inject({ url: '/public' })).statusCode, 200, 'a sibling route is not protected')
})

t.test('a resource server: only trusted-issuers and authenticate, no database', async (t) => {
  const app = Fastify()
  app.setErrorHandler(errorHandler)
  await app.register(trustedIssuers, { issuers: [EXTERNAL] })
  await app.register(authenticate)
  app.get('/api', { onRequest: app.authenticate }, async (request) => request.user)
  t.teardown(() => app.close())
  const ok = await app.inject({ url: '/api', headers: bearer(hs256(externalClaims())) })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().external, true)
  const foreign = await app.inject({ url: '/api', headers: bearer(hs256(externalClaims({ iss: 'http://127.0.0.1:3000' }))) })
  t.equal(foreign.json().code, 'UNTRUSTED_ISSUER', 'without gatehouse-tokens even a Gatehouse-looking issuer is foreign')
  const basicRes = await app.inject({ url: '/api', headers: basic('a@example.com', 'x') })
  t.equal(basicRes.statusCode, 400, 'Basic is not available without gatehouse-credentials')
  t.equal((await app.inject({ url: '/api' })).json().code, 'MISSING_AUTHORIZATION')
})

t.test('over a real socket', async (t) => {
  const { app } = await buildProtected(t)
  const address = new URL(await app.listen({ port: 0, host: '127.0.0.1' }))
  const user = await createUser(app)
  const { token } = await tokenFor(app, user)
  async function get (authorization: string): Promise<{ status: number, body: string, challenge?: string }> {
    return await new Promise((resolve, reject) => {
      const req = httpRequest({ host: address.hostname, port: address.port, path: '/protected', headers: { authorization } }, (res) => {
        let body = ''
        res.on('data', (chunk) => { body += chunk })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, challenge: res.headers['www-authenticate'] }))
      })
      req.on('error', reject)
      req.end()
    })
  }
  const ok = await get(`Bearer ${token}`)
  t.equal(ok.status, 200)
  t.equal(JSON.parse(ok.body).id, user.id)
  const tampered = await get(`Bearer ${token.slice(0, -4)}AAAA`)
  t.equal(tampered.status, 401)
  t.equal(JSON.parse(tampered.body).code, 'INVALID_SIGNATURE')
  t.equal(tampered.challenge, 'Bearer error="invalid_token"')
  const large = await get(`Bearer ${'a'.repeat(15 * 1024)}`)
  t.equal(large.status, 401, 'a 15 KiB token is refused before decoding')
  t.equal(JSON.parse(large.body).code, 'INVALID_TOKEN')
  const huge = await get(`Bearer ${'a'.repeat(100 * 1024)}`)
  t.equal(huge.status, 431, 'a header beyond Node\'s limit never reaches the hook')
})
