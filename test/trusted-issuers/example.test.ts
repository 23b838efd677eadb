// examples/resource-server: a resource server with no database (trusted-issuers + authenticate
// + rbac), over HTTP, against a local JWKS server; and the example run as its own process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { buildResourceServer } from '../../examples/resource-server/index.ts'
import { jwks, keyServer, sign, testKey } from './helpers.ts'

const AUD = 'https://api.example.test'

t.test('the example resource server verifies external tokens over HTTP', async (t) => {
  const key = await testKey('RS256', 'idp-1')
  const idp = await keyServer(t, jwks(key))
  const stranger = await keyServer(t, jwks(key))
  const app = await buildResourceServer({
    issuers: [{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: [AUD], rolesClaim: 'roles' }],
    limits: { cooldownMs: 100, cacheMaxAgeMs: 60_000 }
  })
  t.teardown(() => app.close())

  const reader = await sign(key, { iss: idp.url, sub: 'alice', aud: AUD, roles: ['reader'] })
  const me = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${reader}` } })
  t.equal(me.statusCode, 200)
  t.same(me.json(), { sub: 'alice', iss: idp.url, roles: ['reader'], external: true })

  t.equal((await app.inject({ url: '/api/reports', headers: { authorization: `Bearer ${reader}` } })).statusCode, 200, 'reader may read reports')
  const forbidden = await app.inject({ url: '/api/stats', headers: { authorization: `Bearer ${reader}` } })
  t.equal(forbidden.statusCode, 403)
  t.equal(forbidden.json().code, 'FORBIDDEN')

  const admin = await sign(key, { iss: idp.url, sub: 'root', aud: AUD, roles: ['admin'] })
  const stats = await app.inject({ url: '/api/stats', headers: { authorization: `Bearer ${admin}` } })
  t.equal(stats.statusCode, 200)
  t.equal(stats.json().fetches, 1)

  const none = await app.inject({ url: '/api/me' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'MISSING_AUTHORIZATION')
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'public route without a token')

  const foreign = await sign(key, { iss: stranger.url, sub: 'mallory', aud: AUD, roles: ['admin'] })
  const untrusted = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${foreign}` } })
  t.equal(untrusted.statusCode, 401)
  t.equal(untrusted.json().code, 'UNTRUSTED_ISSUER')
  t.equal(untrusted.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal(stranger.total(), 0, 'the unknown issuer was never contacted')

  const expired = await sign(key, { iss: idp.url, sub: 'alice', aud: AUD }, { expiresIn: -120 })
  const exp = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${expired}` } })
  t.equal(exp.statusCode, 401)
  t.equal(exp.json().code, 'TOKEN_EXPIRED')

  const wrongAud = await sign(key, { iss: idp.url, sub: 'alice', aud: 'other-api' })
  t.equal((await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${wrongAud}` } })).json().code, 'INVALID_TOKEN')

  const body = JSON.stringify([me.json(), untrusted.json(), exp.json()])
  t.notOk(body.includes(reader.split('.')[2]), 'no token in any response')
})

t.test('the example answers 503 JWKS_UNAVAILABLE with Retry-After when the provider is down and nothing is cached', async (t) => {
  const key = await testKey()
  const idp = await keyServer(t)
  idp.handle((_req, res) => { res.statusCode = 500; res.end('<html>oops</html>') })
  const app = await buildResourceServer({ issuers: [{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: [AUD] }] })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${await sign(key, { iss: idp.url, sub: 's', aud: AUD })}` } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'JWKS_UNAVAILABLE')
  t.match(res.headers['retry-after'], /^\d+$/)
  t.notMatch(res.body, /oops|html/, 'the upstream body is not passed on')
})

t.test('the example runs as a process (npx tsx examples/resource-server/index.ts)', async (t) => {
  const key = await testKey('ES256', 'proc')
  const idp = await keyServer(t, jwks(key))
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/resource-server/index.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      LOG_LEVEL: 'info',
      TRUSTED_ISSUERS: JSON.stringify([{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: [AUD], algorithms: ['ES256'] }])
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGTERM') })
  const address = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (match !== null) resolve(match[1])
    })
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)))
  })
  const token = await sign(key, { iss: idp.url, sub: 'proc-user', aud: AUD })
  const res = await fetch(`${address}/api/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(res.status, 200)
  t.same(await res.json(), { sub: 'proc-user', iss: idp.url, roles: [], external: true })
  const bad = await fetch(`${address}/api/me`, { headers: { authorization: 'Bearer nope' } })
  t.equal(bad.status, 401)
  t.equal(idp.count('/jwks'), 1)
})

t.test('the docs quick start: both plugins with Fastify\'s default error handler', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { trustedIssuers, authenticate } = await import('../../index.ts')
  const key = await testKey()
  const idp = await keyServer(t, jwks(key))
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(trustedIssuers, { issuers: [{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: ['my-api'] }] })
  await app.register(authenticate)
  app.get('/me', { onRequest: app.authenticate }, async (request) => ({ sub: request.user?.sub }))
  const ok = await app.inject({ url: '/me', headers: { authorization: `Bearer ${await sign(key, { iss: idp.url, sub: 'q', aud: 'my-api' })}` } })
  t.same(ok.json(), { sub: 'q' })
  const bad = await app.inject({ url: '/me', headers: { authorization: `Bearer ${await sign(key, { iss: 'https://elsewhere.example', sub: 'q', aud: 'my-api' })}` } })
  t.equal(bad.statusCode, 401)
  t.match(bad.json(), { statusCode: 401, code: 'UNTRUSTED_ISSUER' })
  t.equal(bad.headers['www-authenticate'], 'Bearer error="invalid_token"')
  idp.handle((_req, res) => { res.statusCode = 500; res.end() })
  const cold = Fastify()
  t.teardown(() => cold.close())
  await cold.register(trustedIssuers, { issuers: [{ issuer: idp.url, jwksUri: `${idp.url}/other`, audiences: ['my-api'] }] })
  await cold.register(authenticate)
  cold.get('/me', { onRequest: cold.authenticate }, async () => ({}))
  const down = await cold.inject({ url: '/me', headers: { authorization: `Bearer ${await sign(key, { iss: idp.url, sub: 'q', aud: 'my-api' })}` } })
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'JWKS_UNAVAILABLE')
  t.match(down.headers['retry-after'], /^\d+$/)
})
