// Several real Gatehouse processes behind no load balancer but the test itself, sharing one
// PostgreSQL database, one Redis and one keys folder: what one instance does, the others see.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomInt } from 'node:crypto'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { PACKAGE_ROOT } from '../../lib/paths.ts'
import { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } from '../helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON } from '../helpers/redis.ts'
import { startServer, call, type ServerProcess } from '../helpers/server-process.ts'

const run = promisify(execFile)
const PASSWORD = 'correct horse battery staple 42'
const ADMIN = { email: `admin-${process.pid}@example.com`, password: 'admin passphrase that is long enough' }

const pg = await postgresAdminUrl()
const redis = await redisUrl()
const skip = pg === null ? PG_SKIP_REASON : redis === null ? REDIS_SKIP_REASON : false

/** A fresh client address per scenario (the servers trust 127.0.0.1 as a proxy), so rate-limit buckets never collide across runs. */
function clientIp (): Record<string, string> {
  return { 'x-forwarded-for': `10.${randomInt(1, 250)}.${randomInt(1, 250)}.${randomInt(1, 250)}` }
}

async function until<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<{ value: T, ms: number }> {
  const start = Date.now()
  for (;;) {
    const value = await fn()
    if (value !== undefined) return { value, ms: Date.now() - start }
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

t.test('instances sharing PostgreSQL and Redis', { skip, timeout: 240_000 }, async (t) => {
  const db = await createTestDatabase('postgresql')
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-keys-'))
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redis!,
    AUTH_KEYS_DIR: keysDir,
    AUTH_ISSUER: 'http://127.0.0.1:4000',
    TRUST_PROXY: '127.0.0.1',
    // A response lost when an instance dies must not lock the client out (see the SIGKILL case).
    REFRESH_REUSE_GRACE: '5',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password
  }
  const servers: ServerProcess[] = []
  t.teardown(async () => {
    await Promise.all(servers.map((s) => s.kill()))
    await db.drop()
    rmSync(keysDir, { recursive: true, force: true })
  })
  // One after the other: the first generates the signing key, the second loads it.
  const a = await startServer(env); servers.push(a)
  const b = await startServer(env); servers.push(b)
  t.not(a.url, b.url)

  async function register (server: ServerProcess, email: string): Promise<any> {
    const res = await call(server.url, 'POST', '/auth/register', { body: { email, password: PASSWORD }, headers: clientIp() })
    t.equal(res.status, 201, res.status === 201 ? `register ${email}` : `register ${email}: ${res.body?.code}`)
    return res.body
  }
  async function login (server: ServerProcess, email: string, password = PASSWORD): Promise<any> {
    const res = await call(server.url, 'POST', '/auth/login', { body: { email, password }, headers: clientIp() })
    t.equal(res.status, 200, res.status === 200 ? `login ${email}` : `login ${email}: ${res.body?.code}`)
    return res.body
  }
  const me = (server: ServerProcess, token: string) => call(server.url, 'GET', '/auth/me', { token })

  await t.test('a user registered on A logs in on B; tokens from either work on both', async (t) => {
    const email = `ada-${process.pid}@example.com`
    const registered = await register(a, email)
    const session = await login(b, email)
    t.equal((await me(a, session.access_token)).status, 200)
    t.equal((await me(b, registered.access_token)).status, 200)
  })

  await t.test('a refresh token rotated on A is rejected as reused on B, and its family dies', async (t) => {
    const email = `rot-${process.pid}@example.com`
    const first = await register(a, email)
    const rotated = await call(a.url, 'POST', '/auth/refresh', { body: { refresh_token: first.refresh_token }, headers: clientIp() })
    t.equal(rotated.status, 200)
    // The client goes on with the successor, so the first token is now plainly reused.
    const onward = await call(a.url, 'POST', '/auth/refresh', { body: { refresh_token: rotated.body.refresh_token }, headers: clientIp() })
    t.equal(onward.status, 200)
    const replay = await call(b.url, 'POST', '/auth/refresh', { body: { refresh_token: first.refresh_token }, headers: clientIp() })
    t.equal(replay.status, 401)
    t.equal(replay.body.code, 'REFRESH_TOKEN_REUSED')
    const successor = await call(b.url, 'POST', '/auth/refresh', { body: { refresh_token: onward.body.refresh_token }, headers: clientIp() })
    t.equal(successor.status, 401, 'the live successor was revoked with its family')
  })

  await t.test('logout-all on A stops the access tokens on B within one second', async (t) => {
    const email = `all-${process.pid}@example.com`
    await register(a, email)
    const s1 = await login(a, email)
    const s2 = await login(b, email)
    t.equal((await me(b, s2.access_token)).status, 200)
    t.equal((await call(a.url, 'POST', '/auth/logout-all', { token: s1.access_token })).status, 204)
    const { value, ms } = await until('token revoked on B', async () => {
      const res = await me(b, s2.access_token)
      return res.status === 401 ? res : undefined
    }, 1000)
    t.equal(value.body.code, 'TOKEN_REVOKED')
    t.ok(ms <= 1000, `revoked on B after ${ms} ms`)
  })

  await t.test('a password change on A ends the other sessions on B within one second', async (t) => {
    const email = `pw-${process.pid}@example.com`
    await register(a, email)
    const current = await login(a, email)
    const other = await login(b, email)
    const change = await call(a.url, 'POST', '/auth/password', { token: current.access_token, body: { current_password: PASSWORD, new_password: `${PASSWORD} changed` } })
    t.equal(change.status, 204)
    const { value } = await until('other session revoked on B', async () => {
      const res = await me(b, other.access_token)
      return res.status === 401 ? res : undefined
    }, 1000)
    t.equal(value.body.code, 'TOKEN_REVOKED')
    t.equal((await me(b, current.access_token)).status, 200, 'the session that changed the password goes on')
  })

  await t.test('disable and soft-delete on A stop the user\'s token on B within one second', async (t) => {
    const admin = await login(a, ADMIN.email, ADMIN.password)
    const email = `dis-${process.pid}@example.com`
    const user = await register(a, email)
    const session = await login(b, email)
    const disable = await call(a.url, 'PATCH', `/admin/users/${user.user.id}`, { token: admin.access_token, body: { disabled: true } })
    t.equal(disable.status, 200)
    const disabled = await until('disabled on B', async () => {
      const res = await me(b, session.access_token)
      return res.status === 401 ? res : undefined
    }, 1000)
    t.equal(disabled.value.body.code, 'ACCOUNT_DISABLED')
    t.equal((await call(a.url, 'PATCH', `/admin/users/${user.user.id}`, { token: admin.access_token, body: { disabled: false } })).status, 200)
    const again = await login(b, email)
    t.equal((await call(a.url, 'DELETE', `/admin/users/${user.user.id}`, { token: admin.access_token })).status, 204)
    const deleted = await until('deleted on B', async () => {
      const res = await me(b, again.access_token)
      return res.status === 401 ? res : undefined
    }, 1000)
    t.equal(deleted.value.body.code, 'USER_NOT_FOUND')
  })

  await t.test('the per-IP login limit is enforced once across instances', async (t) => {
    const ip = clientIp()
    const statuses: number[] = []
    for (let i = 0; i < 11; i++) {
      const server = i % 2 === 0 ? a : b
      const res = await call(server.url, 'POST', '/auth/login', { body: { email: `nobody-${i}-${process.pid}@example.com`, password: PASSWORD }, headers: ip })
      statuses.push(res.status)
      if (res.status === 429) {
        t.equal(res.body.code, 'RATE_LIMITED')
        t.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After is set')
      }
    }
    t.same(statuses.slice(0, 10), Array(10).fill(401), '10 attempts per minute are allowed in total, whichever instance gets them')
    t.equal(statuses[10], 429, 'the 11th is limited')
  })

  await t.test('a key rotated through the CLI is published by both and verifies on both without restart', async (t) => {
    const before = (await call(b.url, 'GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid)
    const cli = await run(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'cli.ts'), 'keys', 'rotate'], { cwd: PACKAGE_ROOT, env: { ...process.env, ...env } })
    t.match(cli.stdout, /kid/i, 'the CLI says which key now signs')
    const { value: after } = await until('new key in B\'s JWKS', async () => {
      const kids: string[] = (await call(b.url, 'GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid)
      return kids.length > before.length ? kids : undefined
    }, 15_000)
    const newKid = after.find((kid) => !before.includes(kid))
    t.ok(newKid, 'B publishes the new key')
    const email = `key-${process.pid}@example.com`
    await register(a, email)
    const { value: session } = await until('A signs with the new key', async () => {
      const s = await login(a, email)
      const header = JSON.parse(Buffer.from(s.access_token.split('.')[0], 'base64url').toString())
      return header.kid === newKid ? s : undefined
    }, 15_000)
    t.equal((await me(b, session.access_token)).status, 200, 'B verifies a token A signed with the new key')
  })

  await t.test('SIGKILL during refresh traffic loses no committed rotation and locks no client out', async (t) => {
    const c = await startServer(env); servers.push(c)
    // Five clients refreshing as fast as they can on C until C dies under them: the kill lands in
    // the middle of some rotations (committed or not, answered or not). It is sent after the
    // twentieth answered rotation, however fast the machine is, not after a fixed time.
    const chains = await Promise.all(Array.from({ length: 5 }, (_, i) => register(c, `kill-${i}-${process.pid}@example.com`)))
    const KILL_AFTER = 20
    let rotations = 0
    let killer: Promise<void> | undefined
    await Promise.all(chains.map(async (_, i) => {
      for (;;) {
        const res = await call(c.url, 'POST', '/auth/refresh', { body: { refresh_token: chains[i].refresh_token }, headers: clientIp() }).catch(() => null)
        if (res === null) return
        if (res.status !== 200) { t.fail(`refresh on C answered ${res.status} ${res.body?.code}`); return }
        chains[i] = res.body
        if (++rotations === KILL_AFTER) killer = c.kill()
      }
    }))
    if (killer === undefined) await c.kill() // every chain failed (reported above) before the kill was due
    else await killer
    t.ok(rotations > 0, `${rotations} rotations before C was killed`)
    // Each client carries on with the last refresh token it received, on another instance.
    for (const [i, tokens] of chains.entries()) {
      const next = await call(b.url, 'POST', '/auth/refresh', { body: { refresh_token: tokens.refresh_token }, headers: clientIp() })
      t.equal(next.status, 200, `client ${i} goes on on B${next.status === 200 ? '' : `: ${next.body?.code}`}`)
      if (next.status === 200) t.equal((await me(a, next.body.access_token)).status, 200, `client ${i}'s new token works on A`)
    }
  })
})
