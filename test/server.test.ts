// The server entry as `npm start` runs it: clear one-line failures for bad configuration, an
// unreachable database and pending migrations; graceful shutdown on SIGTERM.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../lib/paths.ts'
import { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } from './helpers/databases.ts'
import { startServer } from './helpers/server-process.ts'

function runServer (env: Record<string, string>): Promise<{ code: number | null, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'server.ts')], { cwd: PACKAGE_ROOT, env: { PATH: process.env.PATH ?? '', PORT: '0', ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk) => { stderr += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }) })
  })
}

const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-server-keys-'))
t.teardown(() => rmSync(keysDir, { recursive: true, force: true }))

t.test('bad configuration stops start-up with one line naming the variable', async (t) => {
  for (const [env, variable] of [[{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'], [{ PORT: 'eighty' }, 'PORT'], [{ TRUSTED_ISSUERS: '[oops' }, 'TRUSTED_ISSUERS']] as const) {
    const { code, stderr } = await runServer({ AUTH_KEYS_DIR: keysDir, ...env })
    t.equal(code, 1, `${variable}: exit 1`)
    t.match(stderr, new RegExp(`^gatehouse: bad configuration: ${variable}: `), `${variable}: named`)
    t.equal(stderr.trim().split('\n').length, 1, `${variable}: one line`)
  }
})

t.test('an unreachable database is one clear line, not a stack', async (t) => {
  const { code, stderr } = await runServer({ AUTH_KEYS_DIR: keysDir, DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none' })
  t.equal(code, 1)
  t.match(stderr, /^gatehouse: cannot reach the database at postgresql:\/\/postgres@127\.0\.0\.1:1\/none/)
  t.equal(stderr.trim().split('\n').length, 1)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
})

t.test('pending migrations on PostgreSQL: refuses to start and says what to run', { skip: (await postgresAdminUrl()) === null ? PG_SKIP_REASON : false }, async (t) => {
  const db = await createTestDatabase('postgresql', { migrate: false })
  t.teardown(() => db.drop())
  const { code, stderr } = await runServer({ AUTH_KEYS_DIR: keysDir, DATABASE_URL: db.url })
  t.equal(code, 1)
  t.match(stderr, /pending migration\(s\) \(0001_init, 0002_api_key_expiry, 0003_accounts\): run `npm run migrate`/)
  t.equal(stderr.trim().split('\n').length, 1)
})

t.test('starts on embedded SQLite, logs where it listens, and exits 0 on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-server-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const server = await startServer({ DATABASE_URL: `file:${join(dir, 'db.sqlite')}`, AUTH_KEYS_DIR: join(dir, 'keys') })
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'PORT=0 picked a free port and logged it')
  t.equal((await fetch(`${server.url}/health`)).status, 200)
  t.equal((await fetch(`${server.url}/ready`)).status, 200)
  t.equal((await fetch(`${server.url}/docs/`)).status, 200)
  const log = server.output.join('\n')
  t.match(log, /applying migration 0001_init/, 'the embedded database was migrated')
  t.match(log, /AUTH_KEYS_DIR/, 'the generated signing key is announced')
  t.equal(await server.stop(), 0, 'SIGTERM: graceful exit 0')
})
