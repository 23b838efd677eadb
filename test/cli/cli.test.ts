// The operations CLI, run as a user runs it (a child process), against a real database.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestDatabase } from '../helpers/databases.ts'
import { buildApp } from '../../server/app.ts'
import { testConfig, captureLogs } from '../helpers/build.ts'
import { cli } from './helpers.ts'

// About 60 child processes, each starting Node with tsx: minutes on a busy 2-core machine.
t.setTimeout(10 * 60_000)

t.test('gatehouse CLI', { timeout: 9 * 60_000 }, async (t) => {
  const db = await createTestDatabase('sqlite', { migrate: false })
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-keys-'))
  t.teardown(async () => { await db.drop(); rmSync(keysDir, { recursive: true, force: true }) })
  const env = { DATABASE_URL: db.url, AUTH_KEYS_DIR: keysDir, AUTH_ISSUER: 'http://127.0.0.1:3000' }

  const help = await cli([], env)
  t.equal(help.code, 2, 'no command: usage, exit 2')
  t.match(help.stdout, /migrate[\s\S]*keys[\s\S]*users[\s\S]*clients[\s\S]*audit/)
  const unknown = await cli(['frobnicate'], env)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command "frobnicate"/)
  const badConfig = await cli(['migrate'], { ...env, DATABASE_URL: 'mysql://x' })
  t.equal(badConfig.code, 1)
  t.match(badConfig.stderr, /^gatehouse: bad configuration: DATABASE_URL: /)

  const check = await cli(['migrate', '--check'], env)
  t.equal(check.code, 1, 'pending migrations: --check exits 1')
  t.match(check.stdout, /pending/)
  const migrated = await cli(['migrate'], env)
  t.equal(migrated.code, 0, migrated.stderr)
  t.match(migrated.stdout, /applying migration 0001_init/, 'progress per migration')
  t.equal((await cli(['migrate', '--check'], env)).code, 0)

  const rotate1 = await cli(['keys', 'rotate'], env)
  t.equal(rotate1.code, 0, rotate1.stderr)
  const kid1 = /kid (\S+)/.exec(rotate1.stdout)?.[1]
  const rotate2 = await cli(['keys', 'rotate', '--alg', 'ES256'], env)
  const kid2 = /kid (\S+)/.exec(rotate2.stdout)?.[1]
  t.ok(kid1 !== undefined && kid2 !== undefined && kid1 !== kid2, 'two keys')
  const list = await cli(['keys', 'list'], env)
  t.match(list.stdout, new RegExp(`${kid2}\\s+ES256\\s+signing`))
  t.match(list.stdout, new RegExp(`${kid1}\\s+RS256\\s+verifying`))
  t.notMatch(list.stdout + rotate1.stdout, /PRIVATE|"d"/, 'no key material printed')
  const early = await cli(['keys', 'retire', kid1!], env)
  t.equal(early.code, 1, 'a key whose tokens may still be valid is not retired')
  t.match(early.stderr, /stopped signing less than/)
  t.equal((await cli(['keys', 'retire', kid2!], env)).code, 1, 'the signing key is not retired')
  const forced = await cli(['keys', 'retire', kid1!, '--force'], env)
  t.equal(forced.code, 0, forced.stderr)
  t.match((await cli(['keys', 'list'], env)).stdout, new RegExp(`${kid1}\\s+RS256\\s+retired`))
  t.equal((await cli(['keys', 'retire'], env)).code, 2, 'usage error')

  const weak = await cli(['users', 'create', 'weak@example.com', '--password-stdin'], env, 'password\n')
  t.equal(weak.code, 1)
  t.match(weak.stderr, /password/i)
  const created = await cli(['users', 'create', 'Ops@Example.com', '--role', 'admin', '--name', 'Ops'], env)
  t.equal(created.code, 0, created.stderr)
  const password = /password \(shown once\): (\S+)/.exec(created.stdout)?.[1]
  t.ok(password !== undefined && password.length >= 20, 'a generated password is shown once')
  const viaStdin = await cli(['users', 'create', 'dev@example.com', '--password-stdin'], env, 'a passphrase from standard input\n')
  t.equal(viaStdin.code, 0, viaStdin.stderr)
  t.notMatch(viaStdin.stdout, /passphrase from standard input/, 'a given password is never echoed')
  t.equal((await cli(['users', 'create', 'dev@example.com', '--password-stdin'], env, 'another long passphrase here\n')).code, 1, 'duplicate email')

  const client = await cli(['clients', 'create', 'billing', '--roles', 'service'], env)
  t.equal(client.code, 0, client.stderr)
  const clientId = /client_id:\s+(\S+)/.exec(client.stdout)?.[1]
  const clientSecret = /client_secret:\s+(\S+)/.exec(client.stdout)?.[1]
  t.ok(clientId !== undefined && clientSecret !== undefined)

  // What the CLI did is what the server sees.
  const app = await buildApp(testConfig(env), { logger: captureLogs().logger })
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'ops@example.com', password } })
  t.equal(login.statusCode, 200, 'the created admin logs in')
  t.same(login.json().user.roles, ['admin'])
  const token = login.json().access_token
  t.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid, kid2, 'tokens are signed with the rotated key')
  const cc = await app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId!, client_secret: clientSecret! }).toString() })
  t.equal(cc.statusCode, 200, 'the created client gets a token')

  const dev = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'dev@example.com', password: 'a passphrase from standard input' } })
  t.equal(dev.statusCode, 200)
  const devToken = dev.json().access_token
  const setRole = await cli(['users', 'set-role', 'dev@example.com', 'admin,user'], env)
  t.equal(setRole.code, 0, setRole.stderr)
  const disable = await cli(['users', 'disable', 'dev@example.com'], env)
  t.equal(disable.code, 0, disable.stderr)
  // Without Redis this app hears nothing from the CLI process; its user cache has a short TTL.
  const row = await app.store.prisma.user.findUniqueOrThrow({ where: { email: 'dev@example.com' } })
  t.equal(row.status, 'disabled')
  t.same(JSON.parse(row.roles), ['admin', 'user'])
  t.equal(await app.store.prisma.refreshFamily.count({ where: { userId: row.id, revokedAt: null } }), 0, 'the disabled user\'s sessions are revoked')
  const refused = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'dev@example.com', password: 'a passphrase from standard input' } })
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'ACCOUNT_DISABLED')
  t.equal((await cli(['users', 'enable', 'dev@example.com'], env)).code, 0)
  const verified = await cli(['users', 'verify-email', 'dev@example.com'], env)
  t.equal(verified.code, 0, verified.stderr)
  t.match(verified.stdout, /dev@example\.com: the address is marked as verified/)
  t.ok((await app.store.prisma.user.findUniqueOrThrow({ where: { email: 'dev@example.com' } })).emailVerifiedAt !== null, 'email_verified_at is set')
  t.equal((await cli(['users', 'verify-email', 'nobody@example.com'], env)).code, 1, 'verify-email of an unknown user: exit 1')
  t.equal((await cli(['users', 'disable', 'nobody@example.com'], env)).code, 1, 'unknown user: exit 1')
  t.ok(devToken)

  const tail = await cli(['audit', 'tail', '-n', '50'], env)
  t.equal(tail.code, 0, tail.stderr)
  for (const type of ['key_rotated', 'key_retired', 'register', 'client_created', 'roles_changed', 'user_disabled', 'user_enabled']) {
    t.match(tail.stdout, new RegExp(`\\s${type}\\s`), `audit tail shows ${type}`)
  }
  t.notMatch(tail.stdout, new RegExp(clientSecret!), 'no secret in the audit trail')
  const filtered = await cli(['audit', 'tail', '--type', 'user_disabled'], env)
  t.equal(filtered.stdout.trim().split('\n').length, 1)
})
