// Start-up failures carry codes: the plugins throw them, docs/errors.md lists them, and the
// server's one-line message is chosen by code.
import t from 'tap'
import Fastify from 'fastify'
import { readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../lib/paths.ts'
import { STARTUP_ERROR_CODES, StartupError } from '../lib/startup-error.ts'
import { OptionsError } from '../lib/options.ts'
import { store } from '../plugins/store/index.ts'
import { redis } from '../plugins/redis/index.ts'
import { startupFailure } from '../server.ts'
import { testConfig } from './helpers/build.ts'

t.test('docs/errors.md lists exactly the start-up codes', async (t) => {
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'errors.md'), 'utf8')
  const section = doc.slice(doc.indexOf('**Start-up**'))
  const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1])
  t.same(listed.sort(), [...STARTUP_ERROR_CODES].sort())
})

t.test('an unreachable database is STORE_UNREACHABLE, with the URL and no password', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const err = await app.register(store, { databaseUrl: 'postgresql://postgres:secret@127.0.0.1:1/none' }).ready().then(() => null, (e: unknown) => e)
  t.match(err, { name: 'StartupError', code: 'STORE_UNREACHABLE' })
  t.match((err as Error).message, /^cannot reach the database at postgresql:\/\/postgres:\*+@127\.0\.0\.1:1\/none|^cannot reach the database at postgresql:\/\/postgres@127\.0\.0\.1:1\/none/)
  t.notMatch((err as Error).message, /secret/)
})

t.test('an unreachable Redis is REDIS_UNREACHABLE', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const err = await app.register(redis, { url: 'redis://127.0.0.1:1', connectTimeoutMs: 200 }).ready().then(() => null, (e: unknown) => e)
  t.match(err, { name: 'StartupError', code: 'REDIS_UNREACHABLE' })
})

t.test('the server tells each coded failure in one line, and nothing for a programming error', async (t) => {
  const keys = mkdtempSync(join(tmpdir(), 'gatehouse-startup-'))
  t.teardown(() => rmSync(keys, { recursive: true, force: true }))
  const config = testConfig({ AUTH_KEYS_DIR: keys })
  for (const code of STARTUP_ERROR_CODES) t.equal(startupFailure(new StartupError(code, `the ${code} line`), config), `the ${code} line`)
  t.equal(startupFailure(new OptionsError('gatehouse-x', 'y', 'gatehouse-x: y is wrong'), config), 'gatehouse-x: y is wrong')
  t.match(startupFailure(Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }), config), /PORT 0 is already in use/)
  t.equal(startupFailure(new TypeError('x is not a function'), config), undefined)
  rmSync(config.keysDir, { recursive: true, force: true })
})
