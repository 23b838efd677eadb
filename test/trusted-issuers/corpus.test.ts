// The attack corpus for external tokens (security.md §(b), the rows that apply to a trusted
// issuer), on both signature paths (libuv's thread pool and inline), first with nothing cached and
// then with the genuine token in the verified-token cache: forged, confused and malformed tokens
// are refused with the same code either way, and none of them is ever cached.
import t, { type Test } from 'tap'
import { constants, createHmac, createPublicKey, generateKeyPairSync, KeyObject, sign as cryptoSign, type JsonWebKey } from 'node:crypto'
import { SignJWT } from 'jose'
import { createTrustedIssuers, resolveOptions } from '../../plugins/trusted-issuers/index.ts'
import { keyServer, rejection, testKey, type TestKey } from './helpers.ts'

const AUD = 'my-api'
const now = (): number => Math.floor(Date.now() / 1000)
const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A compact JWS over any header and payload (`raw:` for a payload that is not JSON), signed by `sign`. */
function forge (header: unknown, payload: unknown, sign: (input: Buffer) => Buffer): string {
  const input = `${b64(header)}.${typeof payload === 'string' && payload.startsWith('raw:') ? b64(payload.slice(4)) : b64(payload)}`
  return `${input}.${sign(Buffer.from(input)).toString('base64url')}`
}

const rs = (key: KeyObject, digest = 'sha256') => (input: Buffer) => cryptoSign(digest, input, key)
const ps = (key: KeyObject, saltLength = 32) => (input: Buffer) => cryptoSign('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength })
const es = (key: KeyObject, dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363') => (input: Buffer) => cryptoSign('sha256', input, { key, dsaEncoding })
const hs = (secret: string | Buffer) => (input: Buffer) => createHmac('sha256', secret).update(input).digest()

async function rejects (t: Test, promise: Promise<unknown>, code: string, name: string): Promise<void> {
  const err = await rejection(promise)
  t.equal(err.statusCode, 401, `${name}: 401${err.statusCode === 401 ? '' : ` (got ${err.statusCode})`}`)
  t.equal(err.code, code, `${name}: ${code}${err.code === code ? '' : ` (got ${err.code})`}`)
}

const keys = {
  rs: await testKey('RS256', 'rs'),
  ps: await testKey('PS256', 'ps'),
  es: await testKey('ES256', 'es')
}
const privateOf = (key: TestKey): KeyObject => KeyObject.from(key.privateKey)
const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
const weak = generateKeyPairSync('rsa', { modulusLength: 1024 })
const weakJwk = { ...weak.publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256', use: 'sig' }

for (const signatureCheck of ['pool', 'inline'] as const) {
  for (const cached of [false, true]) {
    t.test(`external token corpus, signatures ${signatureCheck === 'pool' ? 'on the thread pool' : 'inline'}, genuine token ${cached ? 'cached' : 'not cached'}`, { timeout: 120_000 }, async (t) => {
      const ks = await keyServer(t, { keys: [keys.rs.jwk, keys.ps.jwk, keys.es.jwk, weakJwk] })
      let evilHits = 0
      const evil = await keyServer(t)
      evil.handle((_req, res) => { evilHits++; res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [{ ...attacker.publicKey.export({ format: 'jwk' }), kid: 'rs', alg: 'RS256' }] })) })
      const ti = createTrustedIssuers(resolveOptions({ signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], algorithms: ['RS256', 'PS256', 'ES256'] }] }))
      t.teardown(() => ti.close())

      const iss = ks.url
      const claims = { iss, sub: 'alice', aud: AUD, iat: now(), exp: now() + 300 }
      const header = { alg: 'RS256', kid: 'rs', typ: 'at+jwt' }
      const genuine = forge(header, claims, rs(privateOf(keys.rs)))
      const [hSeg, pSeg, sigSeg] = genuine.split('.')
      const rounds = cached ? 3 : 1
      for (let i = 0; i < rounds; i++) t.equal((await ti.verify(genuine)).sub, 'alice', 'the genuine RS256 token is accepted')
      for (const [name, token] of Object.entries({
        PS256: forge({ alg: 'PS256', kid: 'ps' }, claims, ps(privateOf(keys.ps))),
        ES256: forge({ alg: 'ES256', kid: 'es' }, claims, es(privateOf(keys.es)))
      })) {
        for (let i = 0; i < rounds; i++) t.equal((await ti.verify(token)).sub, 'alice', `the genuine ${name} token is accepted`)
      }
      const cachedBefore = ti.stats().verifiedCacheSize
      t.equal(cachedBefore, cached ? 3 : 0)

      // Rows 1-3: alg none in every casing; an empty signature.
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        await rejects(t, ti.verify(`${b64({ ...header, alg })}.${pSeg}.`), 'INVALID_TOKEN', `alg ${alg}, empty signature`)
        await rejects(t, ti.verify(`${b64({ ...header, alg })}.${pSeg}.${sigSeg}`), 'INVALID_TOKEN', `alg ${alg} with a signature`)
      }
      await rejects(t, ti.verify(`${hSeg}.${pSeg}.`), 'INVALID_SIGNATURE', 'empty signature')

      // Rows 4-7: HS256 keyed with the issuer's public key (every form), or with an empty key.
      const rsPublic = createPublicKey({ key: keys.rs.jwk as JsonWebKey, format: 'jwk' })
      for (const [form, secret] of Object.entries({
        'an empty secret': '',
        'the JWK JSON': JSON.stringify(keys.rs.jwk),
        'the JWKS JSON': JSON.stringify({ keys: [keys.rs.jwk] }),
        'the SPKI PEM': rsPublic.export({ type: 'spki', format: 'pem' }).toString(),
        'the PKCS#1 PEM': rsPublic.export({ type: 'pkcs1', format: 'pem' }).toString()
      })) {
        await rejects(t, ti.verify(forge({ ...header, alg: 'HS256' }, claims, hs(secret))), 'INVALID_TOKEN', `HS256 keyed with ${form}`)
      }

      // Algorithm confusion between keys: alg must match the key's kty and alg (RFC 8725 §3.1).
      await rejects(t, ti.verify(forge({ alg: 'ES256', kid: 'rs' }, claims, es(privateOf(keys.es)))), 'INVALID_TOKEN', 'ES256 under the RSA key\'s kid')
      await rejects(t, ti.verify(forge({ alg: 'PS256', kid: 'rs' }, claims, ps(privateOf(keys.rs)))), 'INVALID_TOKEN', 'PS256 with the RS256-only key')
      await rejects(t, ti.verify(forge({ alg: 'RS256', kid: 'ps' }, claims, rs(privateOf(keys.ps)))), 'INVALID_TOKEN', 'RS256 with the PS256-only key')
      await rejects(t, ti.verify(forge({ alg: 'RS256', kid: 'es' }, claims, rs(privateOf(keys.rs)))), 'INVALID_TOKEN', 'RS256 under the EC key\'s kid')
      await rejects(t, ti.verify(forge({ alg: 'RS256', kid: 'weak' }, claims, rs(weak.privateKey))), 'INVALID_TOKEN', 'a 1024-bit RSA key is never used')
      await rejects(t, ti.verify(forge({ alg: 'PS256', kid: 'ps' }, claims, ps(privateOf(keys.ps), 0))), 'INVALID_SIGNATURE', 'PS256 with a salt shorter than the digest')

      // Rows 9-11: keys embedded in or pointed at by the header are never used; nothing is fetched.
      const attackerJwk = attacker.publicKey.export({ format: 'jwk' })
      const evilUrl = `${evil.url}/jwks`
      await rejects(t, ti.verify(forge({ ...header, jwk: attackerJwk }, claims, rs(attacker.privateKey))), 'INVALID_SIGNATURE', 'embedded jwk, the issuer\'s kid')
      await rejects(t, ti.verify(forge({ alg: 'RS256', kid: 'evil', jwk: attackerJwk }, claims, rs(attacker.privateKey))), 'INVALID_TOKEN', 'embedded jwk with its own kid')
      await rejects(t, ti.verify(forge({ ...header, jku: evilUrl }, claims, rs(attacker.privateKey))), 'INVALID_SIGNATURE', 'jku')
      await rejects(t, ti.verify(forge({ ...header, x5u: evilUrl }, claims, rs(attacker.privateKey))), 'INVALID_SIGNATURE', 'x5u')
      await rejects(t, ti.verify(forge({ ...header, x5c: ['MIIBxyz'] }, claims, rs(attacker.privateKey))), 'INVALID_SIGNATURE', 'x5c')
      t.equal(evilHits, 0, 'no request reached the attacker\'s server')

      // Rows 12-13: hostile kids.
      for (const [name, kid] of Object.entries({ traversal: '../../../../dev/null', nul: 'a\u0000b', huge: 'k'.repeat(10_000), number: 42, object: { a: 1 } })) {
        await rejects(t, ti.verify(forge({ ...header, kid }, claims, rs(privateOf(keys.rs)))), 'INVALID_TOKEN', `kid ${name}`)
      }

      // Rows 15-17: tampering; the signature is checked before claims and header rules.
      const flipped = sigSeg.slice(0, 10) + (sigSeg[10] === 'A' ? 'B' : 'A') + sigSeg.slice(11)
      await rejects(t, ti.verify(`${hSeg}.${pSeg}.${flipped}`), 'INVALID_SIGNATURE', 'signature bit flip')
      const tail = sigSeg.slice(0, -6) + (sigSeg.at(-6) === 'A' ? 'B' : 'A') + sigSeg.slice(-5)
      await rejects(t, ti.verify(`${hSeg}.${pSeg}.${tail}`), 'INVALID_SIGNATURE', 'signature changed near its end')
      await rejects(t, ti.verify(`${hSeg}.${pSeg}.${sigSeg.slice(0, -3)}`), 'INVALID_SIGNATURE', 'signature truncated')
      await rejects(t, ti.verify(`${hSeg}.${b64({ ...claims, sub: 'admin' })}.${sigSeg}`), 'INVALID_SIGNATURE', 'sub changed after signing')
      await rejects(t, ti.verify(`${hSeg}.${b64({ ...claims, exp: 1 })}.${sigSeg}`), 'INVALID_SIGNATURE', 'exp changed after signing: signature before claims')
      await rejects(t, ti.verify(`${b64({ ...header, 'x-extra': 1 })}.${pSeg}.${sigSeg}`), 'INVALID_SIGNATURE', 'header changed after signing')
      const [eh, ep] = forge({ alg: 'ES256', kid: 'es' }, claims, es(privateOf(keys.es))).split('.')
      await rejects(t, ti.verify(`${eh}.${ep}.${es(privateOf(keys.es), 'der')(Buffer.from(`${eh}.${ep}`)).toString('base64url')}`), 'INVALID_SIGNATURE', 'ES256 signature in DER')
      await rejects(t, ti.verify(`${eh}.${ep}.${Buffer.alloc(64).toString('base64url')}`), 'INVALID_SIGNATURE', 'ES256 r = s = 0 (psychic signature)')

      // Rows 18-20: crit, b64, payloads that are not JSON objects.
      await rejects(t, ti.verify(forge({ ...header, crit: ['x-bind'], 'x-bind': 1 }, claims, rs(privateOf(keys.rs)))), 'INVALID_TOKEN', 'crit')
      await rejects(t, ti.verify(forge({ ...header, b64: false }, claims, rs(privateOf(keys.rs)))), 'INVALID_TOKEN', 'b64 false')
      for (const payload of [[claims], null, 'str', 123]) {
        await rejects(t, ti.verify(forge(header, payload, rs(privateOf(keys.rs)))), 'INVALID_TOKEN', `payload ${JSON.stringify(payload).slice(0, 20)}`)
      }
      await rejects(t, ti.verify(forge(header, 'raw:{not json', rs(privateOf(keys.rs)))), 'INVALID_TOKEN', 'payload that is not JSON')

      // Rows 22-24: shapes.
      await rejects(t, ti.verify(`${hSeg}.${pSeg}`), 'INVALID_TOKEN', '2 segments')
      await rejects(t, ti.verify(`${genuine}.x.y`), 'INVALID_TOKEN', '5 segments (JWE shape)')
      await rejects(t, ti.verify(`${genuine}`.replace(/.$/, '*')), 'INVALID_TOKEN', 'a character outside base64url')
      await rejects(t, ti.verify(forge(header, { ...claims, pad: 'x'.repeat(9000) }, rs(privateOf(keys.rs)))), 'INVALID_TOKEN', 'a token over 8 KiB')

      // Rows 26-35: claims, with validly signed tokens.
      const signed = (payload: Record<string, unknown>): string => forge(header, payload, rs(privateOf(keys.rs)))
      const at = now()
      await rejects(t, ti.verify(signed({ ...claims, iat: at - 120, exp: at - 40 })), 'TOKEN_EXPIRED', 'exp 40 s ago')
      await rejects(t, ti.verify(signed({ ...claims, nbf: at + 40 })), 'TOKEN_NOT_YET_VALID', 'nbf 40 s ahead')
      await rejects(t, ti.verify(signed({ ...claims, iat: at + 300, exp: at + 900 })), 'TOKEN_NOT_YET_VALID', 'iat 5 min in the future')
      await rejects(t, ti.verify(signed({ ...claims, exp: String(claims.exp) })), 'INVALID_TOKEN', 'exp as a string')
      await rejects(t, ti.verify(signed({ ...claims, exp: [claims.exp] })), 'INVALID_TOKEN', 'exp as an array')
      await rejects(t, ti.verify(signed({ ...claims, nbf: null })), 'INVALID_TOKEN', 'nbf null')
      await rejects(t, ti.verify(signed({ ...claims, iat: at - 10, exp: at + 2 * 86_400 })), 'INVALID_TOKEN', 'a lifetime over maxTokenLifetime')
      for (const claim of ['sub', 'exp', 'aud']) {
        const { [claim as 'sub']: _drop, ...rest } = claims
        await rejects(t, ti.verify(signed(rest)), 'MISSING_CLAIM', `${claim} missing`)
      }
      await rejects(t, ti.verify(signed({ ...claims, iss: [iss] })), 'UNTRUSTED_ISSUER', 'iss as an array')
      await rejects(t, ti.verify(signed({ ...claims, iss: `${iss}/` })), 'UNTRUSTED_ISSUER', 'iss with a trailing slash')
      await rejects(t, ti.verify(signed({ ...claims, aud: 'another-api' })), 'INVALID_TOKEN', 'aud of another service')
      await rejects(t, ti.verify(signed({ ...claims, aud: [] })), 'INVALID_TOKEN', 'aud empty')
      await rejects(t, ti.verify(signed({ ...claims, aud: [AUD, 42] })), 'INVALID_TOKEN', 'aud with a non-string')
      await rejects(t, ti.verify(signed({ ...claims, sub: 42 })), 'INVALID_TOKEN', 'sub as a number')

      t.equal(ti.stats().verifiedCacheSize, cachedBefore, 'no refused token entered the cache')
      const hits = ti.stats().verifiedCacheHits
      t.equal((await ti.verify(genuine)).sub, 'alice', 'the genuine token is still accepted')
      t.equal(ti.stats().verifiedCacheHits, cached ? hits + 1 : hits)
    })
  }
}

t.test('every asymmetric algorithm verifies on both paths (interop with jose)', async (t) => {
  const algs = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
  const list = await Promise.all(algs.map((alg) => testKey(alg, `k-${alg}`)))
  const ks = await keyServer(t, { keys: list.map((k) => k.jwk) })
  for (const signatureCheck of ['pool', 'inline'] as const) {
    const ti = createTrustedIssuers(resolveOptions({ signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], algorithms: [...algs] }] }))
    t.teardown(() => ti.close())
    for (const key of list) {
      const token = await new SignJWT({ iss: ks.url, sub: key.alg, aud: AUD, exp: now() + 60 }).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey)
      t.equal((await ti.verify(token)).sub, key.alg, `${key.alg} (${signatureCheck})`)
      const [h, p, s] = token.split('.')
      const bytes = Buffer.from(s, 'base64url')
      bytes[3] ^= 1
      await rejects(t, ti.verify(`${h}.${p}.${bytes.toString('base64url')}`), 'INVALID_SIGNATURE', `${key.alg} tampered (${signatureCheck})`)
    }
  }
})
