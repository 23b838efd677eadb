// Every verification rule of our access tokens (RFC 8725, RFC 9068, CONTRACT §4/§6), through
// HTTP: the exact status, code and WWW-Authenticate challenge for each attack or defect.
import t from 'tap'
import { createServer } from 'node:http'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { buildProtected, createUser, bearer } from './helpers.ts'
import { claimsFor, compact, nowSec, ourToken, segment, signingKey, signWith } from './forge.ts'
import { jwkThumbprint } from '../../plugins/tokens/keys.ts'

const CHALLENGE = 'Bearer error="invalid_token"'
// Every forged token here spends the failed-credential budget of one address; it is lifted so the
// verifier's own answer is seen (test/regressions/failed-credentials.test.ts covers the budget).
const UNLIMITED_FAILURES = { failedCredentials: { max: 1_000_000 } }

t.test('strict verification of RS256 access tokens', async (t) => {
  const { app, config, logs } = await buildProtected(t, { app: { rateLimit: UNLIMITED_FAILURES } })
  const user = await createUser(app)
  const keysDir = config.keysDir
  const key = signingKey(keysDir)
  const good = ourToken(app, keysDir, user.id)

  async function expect (token: string, status: number, code: string | null, name: string): Promise<void> {
    const res = await app.inject({ url: '/protected', headers: bearer(token) })
    t.equal(res.statusCode, status, `${name}: status ${status}`)
    if (code !== null) {
      t.equal(res.json().code, code, `${name}: ${code}`)
      t.equal(res.headers['www-authenticate'], CHALLENGE, `${name}: Bearer challenge`)
    }
  }

  await expect(good, 200, null, 'a well-formed token')
  const [h, p, s] = good.split('.')
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicPem = key.publicPem

  // Time-sensitive tokens are built when their case runs (functions), not up front.
  const cases: Array<[string, string | (() => string), number, string | null]> = [
    ['alg none, empty signature', compact({ alg: 'none', typ: 'at+jwt', kid: key.kid }, claimsFor(app, user.id), 'none', null), 401, 'INVALID_TOKEN'],
    ['alg None with a signature segment', `${segment({ alg: 'None', typ: 'at+jwt', kid: key.kid })}.${p}.${s}`, 401, 'INVALID_TOKEN'],
    ['alg NONE with a signature segment', `${segment({ alg: 'NONE', typ: 'at+jwt', kid: key.kid })}.${p}.${s}`, 401, 'INVALID_TOKEN'],
    ['alg nOnE with a signature segment', `${segment({ alg: 'nOnE', typ: 'at+jwt', kid: key.kid })}.${p}.${s}`, 401, 'INVALID_TOKEN'],
    ['valid header and payload, empty signature', `${h}.${p}.`, 401, 'INVALID_SIGNATURE'],
    ['typ changed after signing (signature first)', `${segment({ alg: key.alg, typ: 'JWT', kid: key.kid })}.${p}.${s}`, 401, 'INVALID_SIGNATURE'],
    ['HS256 with an empty secret', compact({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }, claimsFor(app, user.id), 'HS256', Buffer.alloc(0)), 401, 'INVALID_TOKEN'],
    ['HS256 keyed with our RSA public key (SPKI PEM)', compact({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }, claimsFor(app, user.id), 'HS256', publicPem), 401, 'INVALID_TOKEN'],
    ['HS256 keyed with our key as PKCS#1 PEM', compact({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }, claimsFor(app, user.id), 'HS256', createPublicKey(publicPem).export({ type: 'pkcs1', format: 'pem' }).toString()), 401, 'INVALID_TOKEN'],
    ['HS256 keyed with our key as a JWK string', compact({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }, claimsFor(app, user.id), 'HS256', JSON.stringify(key.publicJwk)), 401, 'INVALID_TOKEN'],
    ['ES256 header on our RSA kid', compact({ alg: 'ES256', typ: 'at+jwt', kid: key.kid }, claimsFor(app, user.id), 'ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), 401, 'INVALID_TOKEN'],
    ['PS256 (not on the allowlist)', `${segment({ alg: 'PS256', typ: 'at+jwt', kid: key.kid })}.${p}.${s}`, 401, 'INVALID_TOKEN'],
    ['embedded jwk of the attacker, attacker kid', compact({ alg: 'RS256', typ: 'at+jwt', kid: jwkThumbprint(attacker.publicKey.export({ format: 'jwk' })), jwk: attacker.publicKey.export({ format: 'jwk' }) }, claimsFor(app, user.id), 'RS256', attacker.privateKey), 401, 'INVALID_TOKEN'],
    ['embedded jwk of the attacker, our kid', compact({ alg: 'RS256', typ: 'at+jwt', kid: key.kid, jwk: attacker.publicKey.export({ format: 'jwk' }) }, claimsFor(app, user.id), 'RS256', attacker.privateKey), 401, 'INVALID_SIGNATURE'],
    ['no kid', ourToken(app, keysDir, user.id, { header: { kid: undefined } }), 401, 'INVALID_TOKEN'],
    ['kid path traversal', ourToken(app, keysDir, user.id, { header: { kid: '../../../../dev/null' } }), 401, 'INVALID_TOKEN'],
    ['kid SQL injection', ourToken(app, keysDir, user.id, { header: { kid: "x' UNION SELECT 'k'--" } }), 401, 'INVALID_TOKEN'],
    ['kid with a NUL byte', ourToken(app, keysDir, user.id, { header: { kid: 'abc\u0000def' } }), 401, 'INVALID_TOKEN'],
    ['kid of 2 KB', ourToken(app, keysDir, user.id, { header: { kid: 'a'.repeat(2048) } }), 401, 'INVALID_TOKEN'],
    ['kid as a number', ourToken(app, keysDir, user.id, { header: { kid: 12 } }), 401, 'INVALID_TOKEN'],
    ['signature bit-flip', `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`, 401, 'INVALID_SIGNATURE'],
    ['signature truncated by 3 chars', `${h}.${p}.${s.slice(0, -3)}`, 401, 'INVALID_SIGNATURE'],
    ['sub changed after signing', `${h}.${segment({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'someone-else' })}.${s}`, 401, 'INVALID_SIGNATURE'],
    ['signature checked before claims (tampered and expired)', `${h}.${segment({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), exp: nowSec() - 3600 })}.${s}`, 401, 'INVALID_SIGNATURE'],
    ['crit with an understood-looking extension', ourToken(app, keysDir, user.id, { header: { crit: ['x-bind'], 'x-bind': 1 } }), 401, 'INVALID_TOKEN'],
    ['crit empty', ourToken(app, keysDir, user.id, { header: { crit: [] } }), 401, 'INVALID_TOKEN'],
    ['crit naming a registered member', ourToken(app, keysDir, user.id, { header: { crit: ['exp'] } }), 401, 'INVALID_TOKEN'],
    ['b64 false', ourToken(app, keysDir, user.id, { header: { b64: false, crit: ['b64'] } }), 401, 'INVALID_TOKEN'],
    ['b64 false without crit', ourToken(app, keysDir, user.id, { header: { b64: false } }), 401, 'INVALID_TOKEN'],
    ['nested JWT (cty)', ourToken(app, keysDir, user.id, { header: { cty: 'JWT' } }), 401, 'INVALID_TOKEN'],
    ['JWE header members', ourToken(app, keysDir, user.id, { header: { enc: 'A256GCM' } }), 401, 'INVALID_TOKEN'],
    ['typ JWT (an ID token)', ourToken(app, keysDir, user.id, { header: { typ: 'JWT' } }), 401, 'INVALID_TOKEN'],
    ['typ missing', ourToken(app, keysDir, user.id, { header: { typ: undefined } }), 401, 'INVALID_TOKEN'],
    ['typ application/at+jwt (RFC 9068 full media type)', ourToken(app, keysDir, user.id, { header: { typ: 'application/at+jwt' } }), 200, null],
    ['payload []', ourToken(app, keysDir, user.id, { payload: [] }), 401, 'INVALID_TOKEN'],
    ['payload null', ourToken(app, keysDir, user.id, { payload: null }), 401, 'INVALID_TOKEN'],
    ['payload "str"', ourToken(app, keysDir, user.id, { payload: '"str"' }), 401, 'INVALID_TOKEN'],
    ['payload 123', ourToken(app, keysDir, user.id, { payload: 123 }), 401, 'INVALID_TOKEN'],
    ['payload with a BOM', ourToken(app, keysDir, user.id, { payload: '\ufeff' + JSON.stringify(claimsFor(app, user.id)) }), 401, 'INVALID_TOKEN'],
    ['2 segments', `${h}.${p}`, 401, 'INVALID_TOKEN'],
    ['4 segments', `${h}.${p}.${s}.${s}`, 401, 'INVALID_TOKEN'],
    ['5 segments (JWE)', `${h}.${p}.${s}.${s}.${s}`, 401, 'INVALID_TOKEN'],
    ['base64 (not base64url) characters', `${h}.${p}.${s.slice(0, 20)}+/${s.slice(22)}`, 401, 'INVALID_TOKEN'],
    ['padding characters', `${h}=.${p}.${s}`, 401, 'INVALID_TOKEN'],
    ['9 KiB token', ourToken(app, keysDir, user.id, { claims: { pad: 'x'.repeat(9 * 1024) } }), 401, 'INVALID_TOKEN'],
    ['exp = now - 29 s (inside the 30 s tolerance)', () => ourToken(app, keysDir, user.id, { claims: { exp: nowSec() - 29, iat: nowSec() - 300 } }), 200, null],
    ['exp = now - 31 s', () => ourToken(app, keysDir, user.id, { claims: { exp: nowSec() - 31, iat: nowSec() - 300 } }), 401, 'TOKEN_EXPIRED'],
    ['nbf = now + 29 s', () => ourToken(app, keysDir, user.id, { claims: { nbf: nowSec() + 29 } }), 200, null],
    ['nbf = now + 31 s', () => ourToken(app, keysDir, user.id, { claims: { nbf: nowSec() + 31 } }), 401, 'TOKEN_NOT_YET_VALID'],
    ['iat = now + 5 min', () => ourToken(app, keysDir, user.id, { claims: { iat: nowSec() + 300, exp: nowSec() + 900 } }), 401, 'TOKEN_NOT_YET_VALID'],
    ['exp missing', ourToken(app, keysDir, user.id, { claims: { exp: undefined } }), 401, 'MISSING_CLAIM'],
    ['exp as a string', ourToken(app, keysDir, user.id, { claims: { exp: '9999999999' } }), 401, 'INVALID_TOKEN'],
    ['exp null', ourToken(app, keysDir, user.id, { claims: { exp: null } }), 401, 'INVALID_TOKEN'],
    ['exp in milliseconds with an old iat (maxAge)', () => ourToken(app, keysDir, user.id, { claims: { exp: Date.now() + 600_000, iat: nowSec() - 901 } }), 401, 'TOKEN_EXPIRED'],
    ['iat older than the TTL with a far exp', () => ourToken(app, keysDir, user.id, { claims: { exp: nowSec() + 3600, iat: nowSec() - 1000 } }), 401, 'TOKEN_EXPIRED'],
    ['iat missing', ourToken(app, keysDir, user.id, { claims: { iat: undefined } }), 401, 'MISSING_CLAIM'],
    ['iat as a string', ourToken(app, keysDir, user.id, { claims: { iat: String(nowSec()) } }), 401, 'INVALID_TOKEN'],
    ['iss as an array with ours last', ourToken(app, keysDir, user.id, { claims: { iss: ['https://evil.example', app.tokens.issuer] } }), 401, 'UNTRUSTED_ISSUER'],
    ['iss with a trailing slash', ourToken(app, keysDir, user.id, { claims: { iss: app.tokens.issuer + '/' } }), 401, 'UNTRUSTED_ISSUER'],
    ['iss in upper case', ourToken(app, keysDir, user.id, { claims: { iss: app.tokens.issuer.toUpperCase() } }), 401, 'UNTRUSTED_ISSUER'],
    ['iss with a userinfo trick', ourToken(app, keysDir, user.id, { claims: { iss: 'http://127.0.0.1:3000@evil.example' } }), 401, 'UNTRUSTED_ISSUER'],
    ['iss of a metadata address', ourToken(app, keysDir, user.id, { claims: { iss: 'http://169.254.169.254/' } }), 401, 'UNTRUSTED_ISSUER'],
    ['iss missing', ourToken(app, keysDir, user.id, { claims: { iss: undefined } }), 401, 'MISSING_CLAIM'],
    ['aud of another service', ourToken(app, keysDir, user.id, { claims: { aud: 'billing' } }), 401, 'INVALID_TOKEN'],
    ['aud missing', ourToken(app, keysDir, user.id, { claims: { aud: undefined } }), 401, 'MISSING_CLAIM'],
    ['aud as an array that includes ours', ourToken(app, keysDir, user.id, { claims: { aud: ['billing', app.tokens.audience] } }), 200, null],
    ['sub missing', ourToken(app, keysDir, user.id, { claims: { sub: undefined } }), 401, 'MISSING_CLAIM'],
    ['sub as a number', ourToken(app, keysDir, user.id, { claims: { sub: 42 } }), 401, 'INVALID_TOKEN'],
    ['jti missing', ourToken(app, keysDir, user.id, { claims: { jti: undefined } }), 401, 'MISSING_CLAIM'],
    ['roles as a string', ourToken(app, keysDir, user.id, { claims: { roles: 'admin' } }), 401, 'INVALID_TOKEN'],
    ['roles with a non-string', ourToken(app, keysDir, user.id, { claims: { roles: ['user', 1] } }), 401, 'INVALID_TOKEN'],
    ['roles missing', ourToken(app, keysDir, user.id, { claims: { roles: undefined } }), 401, 'MISSING_CLAIM'],
    ['ver missing', ourToken(app, keysDir, user.id, { claims: { ver: undefined } }), 401, 'MISSING_CLAIM'],
    ['ver not an integer', ourToken(app, keysDir, user.id, { claims: { ver: 1.5 } }), 401, 'INVALID_TOKEN'],
    ['sid missing on a user token', ourToken(app, keysDir, user.id, { claims: { sid: undefined } }), 401, 'MISSING_CLAIM'],
    ['sid as a number', ourToken(app, keysDir, user.id, { claims: { sid: 7 } }), 401, 'INVALID_TOKEN'],
    ['auth_time as a string', ourToken(app, keysDir, user.id, { claims: { auth_time: '1700000000' } }), 401, 'INVALID_TOKEN'],
    ['auth_time not whole seconds', ourToken(app, keysDir, user.id, { claims: { auth_time: 1700000000.5 } }), 401, 'INVALID_TOKEN'],
    ['auth_time missing (tokens from before it existed)', ourToken(app, keysDir, user.id, { claims: { auth_time: undefined } }), 200, null],
    ['client_id different from sub', ourToken(app, keysDir, user.id, { claims: { client_id: 'other', sid: undefined } }), 401, 'INVALID_TOKEN']
  ]
  for (const [name, token, status, code] of cases) await expect(typeof token === 'function' ? token() : token, status, code, name)

  t.test('jku / x5u / x5c headers are never fetched', async (t) => {
    let hits = 0
    const trap = createServer((_req, res) => { hits++; res.end('{"keys":[]}') })
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => trap.close(() => resolve())))
    const url = `http://127.0.0.1:${(trap.address() as { port: number }).port}/jwks.json`
    for (const header of [{ jku: url }, { x5u: url }, { x5c: ['MIIB'] }]) {
      const forged = compact({ alg: 'RS256', typ: 'at+jwt', kid: key.kid, ...header }, claimsFor(app, user.id), 'RS256', attacker.privateKey)
      const res = await app.inject({ url: '/protected', headers: bearer(forged) })
      t.equal(res.json().code, 'INVALID_SIGNATURE', `${Object.keys(header)[0]}: INVALID_SIGNATURE`)
    }
    t.equal(hits, 0, 'no request reached the attacker URL')
  })

  t.test('no token or key material in any log line', async (t) => {
    const text = logs.join('\n')
    t.notOk(text.includes(good.split('.')[2]), 'no token signature')
    t.notOk(text.includes(p), 'no token payload')
    const jwk = key.privateKey.export({ format: 'jwk' })
    t.notOk(text.includes(jwk.d as string), 'no private key member')
    t.notOk(text.includes('PRIVATE KEY'), 'no PEM')
  })
})

t.test('ES256 and EdDSA keys', async (t) => {
  for (const alg of ['ES256', 'EdDSA'] as const) {
    t.test(alg, async (t) => {
      const { app, config } = await buildProtected(t, { env: { AUTH_SIGNING_ALG: alg }, app: { rateLimit: UNLIMITED_FAILURES } })
      const user = await createUser(app)
      const key = signingKey(config.keysDir)
      t.equal(key.alg, alg, `the generated key is ${alg}`)
      const { access_token: token } = await app.tokens.sign({ id: user.id, roles: ['user'], tokenVersion: 0 }, { sid: 's1' })
      const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString())
      t.same(header, { alg, typ: 'at+jwt', kid: key.kid }, 'header carries alg, typ at+jwt and kid')
      t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
      const rs = compact({ alg: 'RS256', typ: 'at+jwt', kid: key.kid }, claimsFor(app, user.id), 'RS256', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)
      t.equal((await app.inject({ url: '/protected', headers: bearer(rs) })).json().code, 'INVALID_TOKEN', 'RS256 on an ' + alg + ' kid')
      if (alg === 'ES256') {
        const input = token.split('.').slice(0, 2).join('.')
        const der = `${input}.${signWith(input, 'ES256', key.privateKey, { der: true })}`
        t.equal((await app.inject({ url: '/protected', headers: bearer(der) })).json().code, 'INVALID_SIGNATURE', 'DER-encoded ECDSA signature')
        const psychic = `${input}.${Buffer.alloc(64).toString('base64url')}`
        t.equal((await app.inject({ url: '/protected', headers: bearer(psychic) })).json().code, 'INVALID_SIGNATURE', 'r = s = 0 (CVE-2022-21449)')
      }
    })
  }
})
