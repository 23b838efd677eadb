import t from 'tap'
import { build } from './helpers/build.ts'
import { buildApp } from '../app.ts'
import { testConfig, captureLogs } from './helpers/build.ts'

t.test('/health and /ready answer 200 on a working database', async (t) => {
  const { app } = await build(t)
  const health = await app.inject('/health')
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
})

t.test('with the database down, /health stays 200 and /ready answers 503', async (t) => {
  const config = testConfig({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none' })
  const app = await buildApp(config, { logger: captureLogs().logger, store: { migrations: 'skip' } })
  t.teardown(() => app.close())
  t.equal((await app.inject('/health')).statusCode, 200)
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().code, 'SERVICE_UNAVAILABLE')
  t.ok(ready.headers['retry-after'])
  t.notMatch(ready.body, /ECONNREFUSED|at .*\.ts/, 'no internal detail or stack in the body')
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
