// Checking the signature of a compact JWS with node:crypto, for the asymmetric algorithms of RFC
// 7518 §3.3-3.5 and RFC 8037. `checkSignature` runs the check on libuv's thread pool
// (`crypto.verify` with a callback), so a server with more than one core checks signatures in
// parallel with its HTTP work (what jose does through WebCrypto); `checkSignatureSync` runs it
// on the JavaScript thread. Choosing the key, and pinning it to one algorithm, is the caller's
// concern: a scheme is built for exactly one (algorithm, key) pair.
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import type { AsymmetricAlgorithm } from './algorithms.ts'

/** How node:crypto checks one algorithm: the digest (none for EdDSA) and the key with its options. */
export interface SignatureScheme {
  readonly digest: string | null
  readonly key: KeyObject | { key: KeyObject, dsaEncoding: 'ieee-p1363' } | { key: KeyObject, padding: number, saltLength: number }
}

const DIGESTS: Readonly<Record<string, string>> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }

/**
 * The scheme of `alg` with `publicKey`. RS*: RSASSA-PKCS1-v1_5 (node's default padding for an RSA
 * key); PS*: RSASSA-PSS with MGF1 and a salt as long as the digest (RFC 7518 §3.5); ES*: the JOSE
 * R||S form (not DER, RFC 7518 §3.4); EdDSA: no digest (Ed25519 or Ed448, from the key).
 */
export function signatureScheme (alg: AsymmetricAlgorithm, publicKey: KeyObject): SignatureScheme {
  if (alg === 'EdDSA') return { digest: null, key: publicKey }
  const digest = DIGESTS[alg.slice(2)]
  if (alg.startsWith('ES')) return { digest, key: { key: publicKey, dsaEncoding: 'ieee-p1363' } }
  if (alg.startsWith('PS')) return { digest, key: { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } }
  return { digest, key: publicKey }
}

/**
 * The signing input and the signature of the compact JWS `token` whose last dot is at `dot`
 * (`token.slice(0, dot)` as bytes, and the base64url text after it decoded), written into one
 * scratch buffer that every check shares. node:crypto copies both before an asynchronous check
 * returns, and a synchronous check is over when it returns, so no check ever reads another's
 * bytes, while a check allocates no buffer memory of its own (per-check buffers, kept alive on
 * the thread-pool path until their answer, left the main thread's malloc heap fragmented: about
 * 60 MiB more RSS under a stream of unique tokens). A token longer than the scratch buffer gets
 * buffers of its own.
 */
const SCRATCH_BYTES = 16 * 1024
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES)

function stage (token: string, dot: number): [input: Buffer, signature: Buffer] {
  const encoded = token.slice(dot + 1)
  if (token.length > SCRATCH_BYTES) return [Buffer.from(token.slice(0, dot), 'latin1'), Buffer.from(encoded, 'base64url')]
  // latin1 is one byte per character: the first `dot` characters are the first `dot` bytes.
  const inputLength = scratch.write(token, 0, dot, 'latin1')
  // The decoded signature is shorter than its text, which fits in what is left (length - dot).
  const signatureLength = scratch.write(encoded, inputLength, 'base64url')
  return [scratch.subarray(0, inputLength), scratch.subarray(inputLength, inputLength + signatureLength)]
}

/** The signature of `token` (last dot at `dot`), on the JavaScript thread. A signature that cannot be processed is false. */
export function checkSignatureSync (scheme: SignatureScheme, token: string, dot: number): boolean {
  const [input, signature] = stage(token, dot)
  try {
    return cryptoVerify(scheme.digest, input, scheme.key, signature)
  } catch {
    // A signature of the wrong length or encoding cannot even be checked.
    return false
  }
}

/**
 * The signature of `token` (last dot at `dot`), on libuv's thread pool; `done` is called once
 * with the answer (false as well for a signature that cannot be processed).
 */
export function checkSignature (scheme: SignatureScheme, token: string, dot: number, done: (ok: boolean) => void): void {
  const [input, signature] = stage(token, dot)
  try {
    cryptoVerify(scheme.digest, input, scheme.key, signature, (err, ok) => done(err === null && ok))
  } catch {
    done(false)
  }
}
