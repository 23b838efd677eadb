import t from 'tap'
import { build } from './helpers/build.ts'
import { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } from './helpers/databases.ts'
import { tcpProxy } from './helpers/tcp-proxy.ts'

t.test('/health and /ready answer 200 on a working database', async (t) => {
  const { app } = await build(t)
  const health = await app.inject('/health')
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('with the database down after start, /health stays 200 and /ready answers 503', { skip: (await postgresAdminUrl()) === null ? PG_SKIP_REASON : false }, async (t) => {
  const db = await createTestDatabase('postgresql')
  t.teardown(() => db.drop())
  const real = new URL(db.url)
  const proxy = await tcpProxy(real.hostname, Number(real.port || 5432))
  t.teardown(() => proxy.close())
  real.port = String(proxy.port)
  const { app } = await build(t, { env: { DATABASE_URL: real.toString() }, app: { store: { migrations: 'skip' } } })
  t.equal((await app.inject('/ready')).statusCode, 200)
  proxy.down()
  t.equal((await app.inject('/health')).statusCode, 200)
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().code, 'SERVICE_UNAVAILABLE')
  t.ok(ready.headers['retry-after'])
  t.notMatch(ready.body, /ECONNREFUSED|at .*\.ts/, 'no internal detail or stack in the body')
  proxy.up()
  t.equal((await app.inject('/ready')).statusCode, 200, 'ready again once the database is back')
})

t.test('unknown routes answer a coded 404', async (t) => {
  const { app } = await build(t)
  const res = await app.inject('/nope')
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'NOT_FOUND')
})

t.test('/docs serves the OpenAPI UI and /docs/json the document', async (t) => {
  const { app } = await build(t)
  const ui = await app.inject('/docs/')
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  const doc = await app.inject('/docs/json')
  t.equal(doc.statusCode, 200)
  t.equal(doc.json().openapi, '3.0.3')
  t.ok(doc.json().paths['/health'])
})
