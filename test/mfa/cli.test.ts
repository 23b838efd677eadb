// The operations side of MFA, run as an operator runs it (the CLI as a child process) next to a
// listening server on the same database and keys: turning a user's second factors off (audited),
// and rotating the key that seals TOTP secrets while the server keeps verifying codes.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../lib/paths.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import { PASSWORD, enrolTotp, mfaServer, registerUser } from './helpers.ts'

function cli (args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'cli.ts'), ...args], { cwd: PACKAGE_ROOT, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
    child.stdin!.end()
  })
}

t.test('gatehouse mfa', { timeout: 180_000 }, async (t) => {
  const db = await createTestDatabase('sqlite')
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-mfa-cli-keys-'))
  t.teardown(async () => { await db.drop(); rmSync(keysDir, { recursive: true, force: true }) })
  const server = await mfaServer(t, { databaseUrl: db.url, keysDir })
  const env = { DATABASE_URL: db.url, AUTH_KEYS_DIR: keysDir, AUTH_ISSUER: 'http://127.0.0.1:3000' }
  const { clock } = server

  const alice = await registerUser(server)
  const bob = await registerUser(server)
  const aliceTotp = await enrolTotp(server, alice.token)
  await enrolTotp(server, bob.token)
  const verify = async (email: string, secret: string): Promise<number> => {
    const step = await server.call('POST', '/auth/login', { body: { email, password: PASSWORD } })
    clock.advance(30)
    return (await server.call('POST', '/auth/mfa/verify', { body: { mfa_token: step.body.mfa_token, code: clock.code(secret) } })).status
  }

  const usage = await cli(['mfa'], env)
  t.equal(usage.code, 2)
  t.match(usage.stderr + usage.stdout, /reset/)

  const keys = await cli(['mfa', 'keys'], env)
  t.equal(keys.code, 0, keys.stderr)
  const oldKid = /^(\S+)\s+sealing\s+\S+\s+2$/m.exec(keys.stdout)?.[1]
  t.ok(oldKid, 'one sealing key, sealing both secrets')

  const rotated = await cli(['mfa', 'rotate-key'], env)
  t.equal(rotated.code, 0, rotated.stderr)
  const newKid = /new sealing key (\S+)/.exec(rotated.stdout)?.[1]
  t.ok(newKid !== undefined && newKid !== oldKid)
  const early = await cli(['mfa', 'retire-key', oldKid!], env)
  t.equal(early.code, 1, 'a key that still seals secrets is not retired')
  t.match(early.stderr, /still sealed/)
  const resealed = await cli(['mfa', 'reseal'], env)
  t.equal(resealed.code, 0, resealed.stderr)
  t.match(resealed.stdout, new RegExp(`sealed 2 TOTP secret\\(s\\) under ${newKid}`))
  t.equal(await verify(alice.email, aliceTotp.secret), 200, 'the running server opens a secret sealed under a key it did not know at start')
  t.equal((await cli(['mfa', 'retire-key', oldKid!], env)).code, 0)
  const after = await cli(['mfa', 'keys'], env)
  t.notMatch(after.stdout, new RegExp(oldKid!))
  t.equal(await verify(alice.email, aliceTotp.secret), 200)
  t.notMatch(keys.stdout + rotated.stdout + resealed.stdout + after.stdout, new RegExp(aliceTotp.secret), 'no secret printed')

  const reset = await cli(['mfa', 'reset', bob.email], env)
  t.equal(reset.code, 0, reset.stderr)
  t.match(reset.stdout, /TOTP: yes, passkeys: 0, recovery codes: 10/)
  t.equal((await server.call('POST', '/auth/login', { body: { email: bob.email, password: PASSWORD } })).status, 200, 'bob logs in with his password alone')
  const event = await server.app.store.prisma.auditEvent.findFirst({ where: { type: 'mfa_reset', subjectId: bob.id } })
  t.ok(event, 'the reset is in the audit log')
  t.match(JSON.parse(event!.details!), { via: 'cli', authenticatorApp: true, webauthn: 0, recoveryCodes: 10 })
  const missing = await cli(['mfa', 'reset', 'nobody@example.com'], env)
  t.equal(missing.code, 1)
  t.match(missing.stderr, /no user/)
})
