// Claim and header rules for external tokens: exp/nbf/iat with the clock tolerance, required
// claims as own properties, audiences, typ pinning, roles mapping, HS issuers with a shared
// secret, and signature checks that come before any claim check.
import t from 'tap'
import { createHmac, KeyObject, sign as cryptoSign } from 'node:crypto'
import { SignJWT } from 'jose'
import { createTrustedIssuers, resolveOptions, type TrustedIssuerInput } from '../../plugins/trusted-issuers/index.ts'
import { readRoles } from '../../plugins/trusted-issuers/verifier.ts'
import { jwks, keyServer, rejection, sign, testKey, type TestContext, type TestKey } from './helpers.ts'

const AUD = 'my-api'
const now = (): number => Math.floor(Date.now() / 1000)

async function setup (t: TestContext, entry: Partial<TrustedIssuerInput> = {}, key?: TestKey): Promise<{ key: TestKey, iss: string, ti: ReturnType<typeof createTrustedIssuers> }> {
  const k = key ?? await testKey()
  const ks = await keyServer(t, jwks(k))
  const ti = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], algorithms: [k.alg], ...entry }] }))
  t.teardown(() => ti.close())
  return { key: k, iss: ks.url, ti }
}

t.test('exp, nbf and iat with the clock tolerance', async (t) => {
  const { key, iss, ti } = await setup(t, { clockToleranceSeconds: 30 })
  const base = { iss, sub: 's', aud: AUD }
  const n = now()
  t.equal((await ti.verify(await sign(key, { ...base, exp: n - 25 }))).sub, 's', 'exp 25 s ago: inside the tolerance')
  t.equal((await rejection(ti.verify(await sign(key, { ...base, exp: n - 35 })))).code, 'TOKEN_EXPIRED')
  t.equal((await ti.verify(await sign(key, { ...base, nbf: n + 25 }))).sub, 's', 'nbf in 25 s: inside the tolerance')
  t.equal((await rejection(ti.verify(await sign(key, { ...base, nbf: n + 35 })))).code, 'TOKEN_NOT_YET_VALID')
  t.equal((await rejection(ti.verify(await sign(key, { ...base, iat: n + 300 })))).code, 'TOKEN_NOT_YET_VALID', 'iat in the future')

  const strict = await setup(t, { clockToleranceSeconds: 0 }, key)
  t.equal((await rejection(strict.ti.verify(await sign(key, { ...base, iss: strict.iss, exp: n - 1 })))).code, 'TOKEN_EXPIRED')
})

t.test('required claims and claim types', async (t) => {
  const { key, iss, ti } = await setup(t, { requiredClaims: ['tenant', 'toString'] })
  const n = now()
  const good = { iss, sub: 's', aud: AUD, tenant: 't1', toString: 'own', exp: n + 60, iat: n }
  t.equal((await ti.verify(await sign(key, good))).sub, 's')
  const { tenant: _t, ...noTenant } = good
  t.equal((await rejection(ti.verify(await sign(key, noTenant)))).code, 'MISSING_CLAIM')
  const { toString: _s, ...inheritedOnly } = good
  t.equal((await rejection(ti.verify(await sign(key, inheritedOnly)))).code, 'MISSING_CLAIM', 'an inherited property does not count')
  const { sub: _sub, ...noSub } = good
  t.equal((await rejection(ti.verify(await sign(key, noSub)))).code, 'MISSING_CLAIM')
  const { aud: _aud, ...noAud } = good
  t.equal((await rejection(ti.verify(await sign(key, noAud)))).code, 'MISSING_CLAIM')
  const noExp = await new SignJWT({ iss, sub: 's', aud: AUD, tenant: 't', toString: 'x' }).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey)
  t.equal((await rejection(ti.verify(noExp))).code, 'MISSING_CLAIM', 'no exp')
  t.equal((await rejection(ti.verify(await sign(key, { ...good, exp: String(n + 60) as never })))).code, 'INVALID_TOKEN', 'exp as a string')
  t.equal((await rejection(ti.verify(await sign(key, { ...good, sub: 42 as never })))).code, 'INVALID_TOKEN', 'sub as a number')
  t.equal((await rejection(ti.verify(await sign(key, { ...good, sub: '' })))).code, 'INVALID_TOKEN', 'empty sub')
  t.equal((await rejection(ti.verify(await sign(key, { ...good, aud: 'another-api' })))).code, 'INVALID_TOKEN', 'wrong aud')
  t.equal((await ti.verify(await sign(key, { ...good, aud: ['another-api', AUD] }))).sub, 's', 'aud array that includes ours')
})

t.test('typ pinning (allowedTypes) refuses ID tokens where access tokens are expected', async (t) => {
  const { key, iss, ti } = await setup(t, { allowedTypes: ['at+jwt'] })
  const claims = { iss, sub: 's', aud: AUD }
  t.equal((await ti.verify(await sign(key, claims, { header: { typ: 'at+jwt' } }))).sub, 's')
  t.equal((await ti.verify(await sign(key, claims, { header: { typ: 'application/AT+JWT' } }))).sub, 's', 'media type form and case')
  t.equal((await rejection(ti.verify(await sign(key, claims, { header: { typ: 'JWT' } })))).code, 'INVALID_TOKEN', 'an ID token (typ JWT)')
  t.equal((await rejection(ti.verify(await sign(key, claims, { header: { typ: undefined } })))).code, 'INVALID_TOKEN', 'no typ')
  const idToken = await sign(key, claims, { header: { typ: 'JWT' } })
  const [, p, sig] = idToken.split('.')
  const retyped = `${Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })).toString('base64url')}.${p}.${sig}`
  t.equal((await rejection(ti.verify(retyped))).code, 'INVALID_SIGNATURE', 'typ rewritten after signing: the signature fails first')

  const open = await setup(t, {}, key)
  t.equal((await open.ti.verify(await sign(key, { ...claims, iss: open.iss }, { header: { typ: 'JWT' } }))).sub, 's', 'without allowedTypes any typ passes (documented)')
})

t.test('rolesClaim maps a claim to AuthUser.roles; nothing else does', async (t) => {
  const claims = {
    roles: ['reader', 'writer', 'reader'],
    realm_access: { roles: ['admin'] },
    'https://example.com/roles': ['editor'],
    scope: 'a b,c  d',
    mixed: ['ok', 1],
    nested: { __proto__: { roles: ['polluted'] } }
  }
  t.same(readRoles(claims, undefined), [])
  t.same(readRoles(claims, 'roles'), ['reader', 'writer'])
  t.same(readRoles(claims, 'realm_access.roles'), ['admin'])
  t.same(readRoles(claims, ['realm_access', 'roles']), ['admin'])
  t.same(readRoles(claims, 'https://example.com/roles'), ['editor'], 'a claim name with dots is used as is first')
  t.same(readRoles(claims, 'scope'), ['a', 'b', 'c', 'd'], 'space/comma separated string')
  t.same(readRoles(claims, 'mixed'), [], 'an array with a non-string is ignored')
  t.same(readRoles(claims, 'nested.roles'), [], 'inherited properties are not read')
  t.same(readRoles(claims, 'missing.path'), [])
  t.same(readRoles(JSON.parse('{"__proto__":{"roles":["x"]}}'), '__proto__.roles'), ['x'], 'a JSON own __proto__ key is plain data')
  t.same(readRoles({ roles: 'admin' }, ['roles']), ['admin'])

  const { key, iss, ti } = await setup(t, { rolesClaim: 'realm_access.roles' })
  const user = await ti.verify(await sign(key, { iss, sub: 's', aud: AUD, roles: ['ignored'], realm_access: { roles: ['admin', 'ops'] } }))
  t.same(user.roles, ['admin', 'ops'])
})

t.test('HS256/384/512 issuers with a shared secret', async (t) => {
  const secret = 'k'.repeat(32)
  const iss = 'kalamdb-test'
  const ti = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: iss, secret, algorithms: ['HS256'], audiences: [AUD] }] }))
  const hs = (alg: string, key: Uint8Array, claims: Record<string, unknown> = {}): Promise<string> =>
    new SignJWT({ iss, sub: 'svc', aud: AUD, exp: now() + 60, ...claims }).setProtectedHeader({ alg }).sign(key)
  const user = await ti.verify(await hs('HS256', Buffer.from(secret)))
  t.equal(user.sub, 'svc')
  t.equal(user.external, true)
  t.equal((await rejection(ti.verify(await hs('HS256', Buffer.from('x'.repeat(32)))))).code, 'INVALID_SIGNATURE', 'wrong secret')
  t.equal((await rejection(ti.verify(await hs('HS384', Buffer.from(secret.repeat(2)))))).code, 'INVALID_TOKEN', 'HS384 not allowed')
  // Signature made with the empty key (CVE-2019-20933, CVE-2026-44351).
  const input = `${Buffer.from(JSON.stringify({ alg: 'HS256' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss, sub: 'x', aud: AUD, exp: now() + 60 })).toString('base64url')}`
  const emptyKeySig = createHmac('sha256', '').update(input).digest('base64url')
  t.equal((await rejection(ti.verify(`${input}.${emptyKeySig}`))).code, 'INVALID_SIGNATURE')
  const rsa = await testKey('RS256')
  t.equal((await rejection(ti.verify(await sign(rsa, { iss, sub: 'x', aud: AUD })))).code, 'INVALID_TOKEN', 'RS256 to an HS issuer')

  const ti512 = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: iss, secret: 's'.repeat(64), algorithms: ['HS512'], audiences: [AUD] }] }))
  t.equal((await ti512.verify(await hs('HS512', Buffer.from('s'.repeat(64))))).sub, 'svc')
  t.equal(ti512.stats().fetches, 0, 'no network for a secret issuer')
})

t.test('the signature is checked before claims; tampering is INVALID_SIGNATURE', async (t) => {
  const { key, iss, ti } = await setup(t)
  const token = await sign(key, { iss, sub: 'alice', aud: AUD })
  const [h, p, s] = token.split('.')
  const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11)
  t.equal((await rejection(ti.verify(`${h}.${p}.${flipped}`))).code, 'INVALID_SIGNATURE', 'bit flip')
  t.equal((await rejection(ti.verify(`${h}.${p}.${s.slice(0, -3)}`))).code, 'INVALID_SIGNATURE', 'truncated')
  t.equal((await rejection(ti.verify(`${h}.${p}.`))).code, 'INVALID_SIGNATURE', 'empty signature segment')
  const tampered = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'admin' })).toString('base64url')
  t.equal((await rejection(ti.verify(`${h}.${tampered}.${s}`))).code, 'INVALID_SIGNATURE', 'payload changed after signing')
  const expiredForged = Buffer.from(JSON.stringify({ iss, sub: 'admin', aud: AUD, exp: now() - 3600 })).toString('base64url')
  t.equal((await rejection(ti.verify(`${h}.${expiredForged}.${s}`))).code, 'INVALID_SIGNATURE', 'signature error wins over expiry')
  // A signed array payload (CVE-2026-107723) is refused.
  const arrayInput = `${h}.${Buffer.from('[1]').toString('base64url')}`
  t.equal((await rejection(ti.verify(`${arrayInput}.${s}`))).code, 'INVALID_TOKEN')
})

t.test('ES256: DER-encoded and zero (r=s=0) signatures are refused; EdDSA works', async (t) => {
  const { key, iss, ti } = await setup(t, {}, await testKey('ES256', 'es'))
  const token = await sign(key, { iss, sub: 'e', aud: AUD })
  t.equal((await ti.verify(token)).sub, 'e')
  const [h, p] = token.split('.')
  // The same key, but the signature in ASN.1 DER instead of JOSE's raw R||S (RFC 7518 §3.4).
  const der = cryptoSign('sha256', Buffer.from(`${h}.${p}`), KeyObject.from(key.privateKey)).toString('base64url')
  const derErr = await rejection(ti.verify(`${h}.${p}.${der}`))
  t.equal(derErr.statusCode, 401, `DER signature refused (${derErr.code})`)
  t.equal(derErr.code, 'INVALID_SIGNATURE')
  t.equal((await rejection(ti.verify(`${h}.${p}.${Buffer.alloc(64).toString('base64url')}`))).code, 'INVALID_SIGNATURE', 'psychic signature')

  const ed = await setup(t, {}, await testKey('EdDSA', 'ed'))
  t.equal((await ed.ti.verify(await sign(ed.key, { iss: ed.iss, sub: 'ed', aud: AUD }))).sub, 'ed')
})
