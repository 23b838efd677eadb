// lib/signature.ts: every check stages its signing input and signature in one shared scratch
// buffer. Checks started together on the thread pool, interleaved with checks on the JavaScript
// thread, must each get the answer for their own token; a token longer than the scratch buffer
// is checked as well.
import t from 'tap'
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { checkSignature, checkSignatureSync, signatureScheme, type SignatureScheme } from '../../lib/signature.ts'
import type { AsymmetricAlgorithm } from '../../lib/algorithms.ts'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

function signer (alg: AsymmetricAlgorithm): { scheme: SignatureScheme, make: (claims: Record<string, unknown>) => string } {
  let privateKey: KeyObject
  let publicKey: KeyObject
  if (alg.startsWith('ES')) ({ privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' }))
  else if (alg === 'EdDSA') ({ privateKey, publicKey } = generateKeyPairSync('ed25519'))
  else ({ privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 }))
  const digest = alg === 'EdDSA' ? null : 'sha256'
  const options = alg.startsWith('ES')
    ? { key: privateKey, dsaEncoding: 'ieee-p1363' as const }
    : alg.startsWith('PS')
      ? { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
      : privateKey
  return {
    scheme: signatureScheme(alg, publicKey),
    make (claims) {
      const input = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`
      return `${input}.${sign(digest, Buffer.from(input), options).toString('base64url')}`
    }
  }
}

/** The same token with one character of its signature changed (still base64url). */
function tamper (token: string): string {
  const i = token.lastIndexOf('.') + 5
  return token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1)
}

const lastDot = (token: string): number => token.lastIndexOf('.')

const checkAsync = (scheme: SignatureScheme, token: string): Promise<boolean> =>
  new Promise((resolve) => checkSignature(scheme, token, lastDot(token), resolve))

for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
  t.test(`${alg}: checks in flight together each answer for their own token`, async (t) => {
    const { scheme, make } = signer(alg)
    const cases = Array.from({ length: 120 }, (_, i) => {
      const token = make({ sub: `user-${i}`, pad: 'x'.repeat(i * 7) })
      return i % 3 === 0 ? { token: tamper(token), ok: false } : { token, ok: true }
    })
    const answers: Array<Promise<boolean>> = []
    const inline: boolean[] = []
    for (const c of cases) {
      answers.push(checkAsync(scheme, c.token))
      // A check on the JavaScript thread right after, overwriting the scratch buffer while the
      // checks above are queued on the thread pool.
      const other = cases[cases.length - 1 - cases.indexOf(c)]
      inline.push(checkSignatureSync(scheme, other.token, lastDot(other.token)))
    }
    const results = await Promise.all(answers)
    t.same(results, cases.map((c) => c.ok), 'thread pool: every answer is its own token\'s')
    t.same(inline, [...cases].reverse().map((c) => c.ok), 'JavaScript thread: every answer is its own token\'s')
  })
}

t.test('a token longer than the scratch buffer is checked with buffers of its own', async (t) => {
  const { scheme, make } = signer('RS256')
  const token = make({ sub: 'big', pad: 'y'.repeat(20_000) })
  t.ok(token.length > 16 * 1024, `the token has ${token.length} characters`)
  t.equal(checkSignatureSync(scheme, token, lastDot(token)), true, 'valid, inline')
  t.equal(await checkAsync(scheme, token), true, 'valid, thread pool')
  t.equal(checkSignatureSync(scheme, tamper(token), lastDot(token)), false, 'tampered, inline')
  t.equal(await checkAsync(scheme, tamper(token)), false, 'tampered, thread pool')
  // A small token checked after it still gets the right answer (the scratch buffer was not replaced).
  const small = make({ sub: 'small' })
  t.equal(checkSignatureSync(scheme, small, lastDot(small)), true, 'a small token after it')
})

t.test('a signature that cannot be processed is false, on both paths', async (t) => {
  const { scheme, make } = signer('ES256')
  const token = make({ sub: 'short' })
  const dot = lastDot(token)
  for (const [name, bad] of [
    ['empty', token.slice(0, dot + 1)],
    ['too short', token.slice(0, dot + 10)],
    ['too long', token + 'AAAA'],
    ['not base64url', token.slice(0, dot + 1) + '!!!!'.repeat(22)]
  ] as const) {
    t.equal(checkSignatureSync(scheme, bad, dot), false, `${name}, inline`)
    t.equal(await checkAsync(scheme, bad), false, `${name}, thread pool`)
  }
})
