// The key ring: generation at first start (loud warning, mode 0600, RFC 7638 kid), rotation that
// keeps old tokens valid, retirement rules, a second instance picking up a rotation by reloading
// on an unknown kid, and the public JWKS.
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { jwkThumbprint, listKeys, loadKeyRing, retireKey, rotateKey, KeyRingError } from '../../plugins/tokens/keys.ts'
import { buildProtected, createUser, tokenFor, bearer } from './helpers.ts'

function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function kidOf (token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid
}

t.test('RFC 7638 thumbprint (the RFC\'s own example)', async (t) => {
  const jwk = {
    kty: 'RSA',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    e: 'AQAB',
    alg: 'RS256',
    kid: '2011-04-29'
  }
  t.equal(jwkThumbprint(jwk), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')
})

t.test('key files: generation, mode, rotation, listing, retirement rules', async (t) => {
  const dir = tempDir(t)
  t.same(listKeys(dir), [], 'an empty folder has no keys')
  const first = rotateKey(dir, 'RS256')
  t.equal(first.status, 'signing')
  const file = join(dir, `${first.kid}.json`)
  t.equal(statSync(file).mode & 0o777, 0o600, 'key file mode 0600')
  const doc = JSON.parse(readFileSync(file, 'utf8'))
  t.equal(doc.alg, 'RS256')
  t.equal(doc.kid, jwkThumbprint(doc.privateJwk), 'kid is the thumbprint of the key')
  t.equal(loadKeyRing(dir).active[0].privateKey.asymmetricKeyDetails?.modulusLength, 2048)

  const second = rotateKey(dir, 'ES256')
  const keys = listKeys(dir)
  t.same(keys.map((k) => [k.kid, k.status]), [[second.kid, 'signing'], [first.kid, 'verifying']], 'the newest key signs')

  t.throws(() => retireKey(dir, second.kid), KeyRingError, 'the signing key cannot be retired')
  t.throws(() => retireKey(dir, first.kid), /stopped signing less than 900 s ago/, 'a key that just stopped signing cannot be retired')
  t.throws(() => retireKey(dir, '../etc/passwd'), /malformed kid/)
  t.throws(() => retireKey(dir, 'unknownkid'), /no key/)
  const later = retireKey(dir, first.kid, { now: Date.now() + 901_000 })
  t.equal(later.status, 'retired', 'retired once the grace period has passed')
  t.throws(() => retireKey(dir, first.kid), /already retired/)
  t.same(loadKeyRing(dir).active.map((k) => k.kid), [second.kid])
  t.equal(statSync(file).mode & 0o777, 0o600, 'still 0600 after rewriting')
  t.equal(retireKey(dir, second.kid, { force: true }).status, 'retired', 'force retires even the signing key')
  t.same(readdirSync(dir).filter((n) => n.startsWith('.')), [], 'no temporary files are left behind')
})

t.test('rejected key files are reported, never used', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'garbage.json'), '{not json')
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey
  writeFileSync(join(dir, 'small.pem'), small.export({ type: 'pkcs8', format: 'pem' }))
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })
  writeFileSync(join(dir, 'lying.json'), JSON.stringify({ kid: 'not-the-thumbprint', alg: 'ES256', createdAt: new Date().toISOString(), privateJwk: jwk }))
  writeFileSync(join(dir, 'wrong-alg.json'), JSON.stringify({ kid: jwkThumbprint(jwk), alg: 'RS256', createdAt: new Date().toISOString(), privateJwk: jwk }))
  const provided = generateKeyPairSync('ed25519').privateKey
  writeFileSync(join(dir, 'provided.pem'), provided.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  const ring = loadKeyRing(dir)
  t.same(ring.rejected.map((r) => r.file).sort(), ['garbage.json', 'lying.json', 'small.pem', 'wrong-alg.json'])
  t.same(ring.active.map((k) => [k.alg, k.file]), [['EdDSA', 'provided.pem']], 'a provided PEM key is used')
  t.notOk(JSON.stringify(ring.rejected).includes('PRIVATE'), 'reasons carry no key material')
})

t.test('first start generates a key with a loud warning; JWKS is public only', async (t) => {
  const { app, config, logs } = await buildProtected(t)
  const warning = logs.map((l) => JSON.parse(l)).find((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.includes('AUTH_KEYS_DIR'))
  t.ok(warning, 'a warn line about the generated key')
  t.match(warning.msg, config.keysDir, 'it says where')
  t.match(warning.msg, /real deployment provides its own keys/, 'and why a deployment provides its own')
  const [file] = readdirSync(config.keysDir)
  t.equal(statSync(join(config.keysDir, file)).mode & 0o777, 0o600)

  const res = await app.inject({ url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['cache-control'], /^public, max-age=\d+$/)
  const { keys } = res.json()
  t.equal(keys.length, 1)
  t.same(Object.keys(keys[0]).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use'])
  t.equal(keys[0].use, 'sig')
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) t.notOk(member in keys[0], `no ${member}`)

  const privateJwk = loadKeyRing(config.keysDir).active[0].privateKey.export({ format: 'jwk' })
  const logText = logs.join('\n')
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const) {
    t.notOk(logText.includes(privateJwk[member] as string), `no private ${member} in the logs`)
  }
  t.notOk(logText.includes('PRIVATE KEY'), 'no PEM in the logs')

  const discovery = await app.inject({ url: '/.well-known/openid-configuration' })
  t.equal(discovery.statusCode, 200)
  const meta = discovery.json()
  t.equal(meta.issuer, config.issuer)
  t.equal(meta.jwks_uri, `${config.issuer}/.well-known/jwks.json`)
  t.equal(meta.token_endpoint, `${config.issuer}/oauth/token`)
  t.equal(meta.revocation_endpoint, `${config.issuer}/oauth/revoke`)
  t.equal(meta.introspection_endpoint, `${config.issuer}/oauth/introspect`)
  t.same(meta.grant_types_supported, ['password', 'refresh_token', 'client_credentials'])
  t.same(meta.id_token_signing_alg_values_supported, ['RS256'])
})

t.test('rotation keeps old tokens valid; retirement removes the key and its tokens', async (t) => {
  const { app, config } = await buildProtected(t)
  const user = await createUser(app)
  const before = (await tokenFor(app, user)).token
  const oldKid = kidOf(before)

  const rotated = rotateKey(config.keysDir, 'ES256')
  await app.tokens.reloadKeys()
  const after = (await tokenFor(app, user)).token
  t.equal(kidOf(after), rotated.kid, 'new tokens carry the new kid')
  t.equal(JSON.parse(Buffer.from(after.split('.')[0], 'base64url').toString()).alg, 'ES256')
  t.equal((await app.inject({ url: '/protected', headers: bearer(before) })).statusCode, 200, 'a token of the old key still verifies')
  t.equal((await app.inject({ url: '/protected', headers: bearer(after) })).statusCode, 200)
  const jwks = (await app.inject({ url: '/.well-known/jwks.json' })).json()
  t.same(jwks.keys.map((k: { kid: string }) => k.kid), [rotated.kid, oldKid], 'JWKS serves both keys, newest first')

  retireKey(config.keysDir, oldKid, { force: true })
  await app.tokens.reloadKeys()
  const gone = (await app.inject({ url: '/.well-known/jwks.json' })).json()
  t.same(gone.keys.map((k: { kid: string }) => k.kid), [rotated.kid], 'the retired key left the JWKS')
  const res = await app.inject({ url: '/protected', headers: bearer(before) })
  t.equal(res.statusCode, 401, 'a token of the retired key fails, even though it was cached')
  t.equal(res.json().code, 'INVALID_TOKEN')
  t.equal((await app.inject({ url: '/protected', headers: bearer(after) })).statusCode, 200)
})

t.test('a second instance verifies a token signed with a key the first one rotated', async (t) => {
  const first = await buildProtected(t, { app: { tokens: { keysReloadInterval: 0 } } })
  const second = await buildProtected(t, { databaseUrl: first.databaseUrl, keysDir: first.config.keysDir, app: { tokens: { keysReloadInterval: 0 } } })
  const user = await createUser(first.app)
  const beforeKid = first.app.tokens.keys().signing.kid
  t.equal(second.app.tokens.keys().signing.kid, beforeKid, 'both instances start on the same key')

  rotateKey(first.config.keysDir, 'RS256')
  await first.app.tokens.reloadKeys()
  const token = (await tokenFor(first.app, user)).token
  t.not(kidOf(token), beforeKid, 'the first instance signs with the new key')
  t.notOk(second.app.tokens.keys().active.some((k) => k.kid === kidOf(token)), 'the second instance has not seen it yet')
  const res = await second.app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 200, 'the unknown kid made the second instance re-read the folder')
  t.equal(second.app.tokens.keys().signing.kid, kidOf(token), 'and it now signs with the new key too')

  // A flood of unknown kids re-reads the folder at most once per second.
  const reloadsBefore = second.app.tokens.stats().keyReloads
  const forged = token.split('.')
  const bogus = Array.from({ length: 50 }, (_, i) => {
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: createHash('sha256').update(String(i)).digest('base64url') })).toString('base64url')
    return `${header}.${forged[1]}.${forged[2]}`
  })
  const results = await Promise.all(bogus.map((b) => second.app.inject({ url: '/protected', headers: bearer(b) })))
  t.ok(results.every((r) => r.json().code === 'INVALID_TOKEN'), 'unknown kids are INVALID_TOKEN')
  t.ok(second.app.tokens.stats().keyReloads - reloadsBefore <= 2, 'concurrent unknown kids shared one reload')
})

t.test('a `keys` notice on the bus (sent by `gatehouse keys rotate`) and the folder check reload the ring', async (t) => {
  const { app, config } = await buildProtected(t, { app: { tokens: { keysReloadInterval: 1 } } })
  const before = app.tokens.keys().signing.kid
  const byNotice = rotateKey(config.keysDir, 'EdDSA')
  await app.bus.publish('keys', { reload: true })
  await until(() => app.tokens.keys().signing.kid === byNotice.kid)
  t.not(byNotice.kid, before)
  t.equal(app.tokens.keys().signing.kid, byNotice.kid, 'the notice made the instance sign with the new key')

  const byPolling = rotateKey(config.keysDir, 'ES256')
  await until(() => app.tokens.keys().signing.kid === byPolling.kid)
  t.equal(app.tokens.keys().signing.kid, byPolling.kid, 'the periodic folder check found the new key')
})

async function until (check: () => boolean, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 25))
}
