// Fetching and importing an issuer's public keys: a bounded JSON fetch (timeout, streamed
// size cap, no redirects, https: or loopback only) and a strict JWK filter that turns a JWKS
// (RFC 7517) into verification keys, each bound to the algorithms it may verify.
import { createPublicKey, type KeyObject } from 'node:crypto'
import { keySourceProblem, type AsymmetricAlgorithm } from './options.ts'

/** Why a key source could not be used; the message names the URL and the reason, never a body. */
export class KeySourceError extends Error {
  override name = 'KeySourceError'
}

export interface FetchLimits {
  timeoutMs: number
  maxResponseBytes: number
  /** Aborts the request early (e.g. when the app closes). */
  signal?: AbortSignal
}

/**
 * GETs `url` and parses the JSON body. The timeout covers headers and body; the body is read
 * as a stream and the request aborted as soon as it passes `maxResponseBytes` (Content-Length
 * is not trusted, and a compressed body is counted after decompression). Redirects are refused:
 * a key source is fixed by configuration, and a redirect would let the host point us elsewhere.
 */
export async function fetchBoundedJson (url: string, limits: FetchLimits): Promise<unknown> {
  const problem = keySourceProblem(url)
  if (problem !== null) throw new KeySourceError(`${url} ${problem}`)
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new KeySourceError(`${url} did not answer within ${limits.timeoutMs} ms`)), limits.timeoutMs)
  const onOuterAbort = (): void => controller.abort(new KeySourceError('the trusted-issuers plugin is closing'))
  limits.signal?.addEventListener('abort', onOuterAbort, { once: true })
  try {
    let response: Response
    try {
      response = await fetch(url, { redirect: 'error', signal: controller.signal, headers: { accept: 'application/json' } })
    } catch (err) {
      throw controller.signal.aborted ? controller.signal.reason : new KeySourceError(`${url} could not be fetched: ${describe(err)}`)
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {})
      throw new KeySourceError(`${url} answered HTTP ${response.status}`)
    }
    if (response.body === null) throw new KeySourceError(`${url} answered with no body`)
    const reader = response.body.getReader()
    const chunks: Uint8Array[] = []
    let total = 0
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        total += value.byteLength
        if (total > limits.maxResponseBytes) {
          controller.abort(new KeySourceError(`${url} sent more than ${limits.maxResponseBytes} bytes`))
          throw controller.signal.reason
        }
        chunks.push(value)
      }
    } catch (err) {
      await reader.cancel().catch(() => {})
      if (err instanceof KeySourceError) throw err
      throw controller.signal.aborted ? controller.signal.reason : new KeySourceError(`${url} body could not be read: ${describe(err)}`)
    }
    const text = Buffer.concat(chunks).toString('utf8')
    try {
      return JSON.parse(text)
    } catch {
      throw new KeySourceError(`${url} did not answer with JSON`)
    }
  } finally {
    clearTimeout(timer)
    limits.signal?.removeEventListener('abort', onOuterAbort)
  }
}

function describe (err: unknown): string {
  const e = err as { message?: string, cause?: { message?: string, code?: string } }
  return [e.message, e.cause?.code ?? e.cause?.message].filter(Boolean).join(': ')
}

/** A usable verification key of one issuer. */
export interface KeyEntry {
  readonly kid?: string
  readonly kty: 'RSA' | 'EC' | 'OKP'
  /** The JWK's own `alg`, when it has one. */
  readonly alg?: AsymmetricAlgorithm
  /** The only algorithms this key may verify. */
  readonly algorithms: ReadonlySet<AsymmetricAlgorithm>
  /** SPKI PEM for fast-jwt. */
  readonly pem: string
}

export interface ImportedKeys {
  keys: KeyEntry[]
  /** Keys that were refused, by reason (for stats and logs). */
  skipped: Record<string, number>
}

const RSA_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
/** An RSA JWK without `alg` may only verify PKCS#1 v1.5 signatures. */
const RSA_DEFAULT_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['RS256', 'RS384', 'RS512']
const EC_CURVES: Readonly<Record<string, AsymmetricAlgorithm>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }
const OKP_CURVES = new Set(['Ed25519', 'Ed448'])
/** Private or symmetric members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037). */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
export const MIN_RSA_BITS = 2048
const MAX_KID_LENGTH = 256

/** Reads one JWK; returns the usable key or the reason it is refused. */
export function importJwk (jwk: unknown): KeyEntry | string {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return 'not an object'
  const k = jwk as Record<string, unknown>
  if (k.kty === 'oct') return 'symmetric'
  if (SECRET_MEMBERS.some((m) => Object.hasOwn(k, m))) return 'private'
  if (k.kty !== 'RSA' && k.kty !== 'EC' && k.kty !== 'OKP') return 'unsupported kty'
  if (k.use !== undefined && k.use !== 'sig') return 'not for signatures'
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) return 'not for verification'
  if (k.kid !== undefined && (typeof k.kid !== 'string' || k.kid === '' || k.kid.length > MAX_KID_LENGTH)) return 'bad kid'
  if (k.alg !== undefined && typeof k.alg !== 'string') return 'bad alg'
  const alg = k.alg as string | undefined

  let algorithms: readonly AsymmetricAlgorithm[]
  let members: Record<string, unknown>
  if (k.kty === 'RSA') {
    if (alg !== undefined && !(RSA_ALGORITHMS as readonly string[]).includes(alg)) return 'alg contradicts kty'
    algorithms = alg === undefined ? RSA_DEFAULT_ALGORITHMS : [alg as AsymmetricAlgorithm]
    members = { kty: 'RSA', n: k.n, e: k.e }
  } else if (k.kty === 'EC') {
    const curveAlg = typeof k.crv === 'string' ? EC_CURVES[k.crv] : undefined
    if (curveAlg === undefined) return 'unsupported curve'
    if (alg !== undefined && alg !== curveAlg) return 'alg contradicts crv'
    algorithms = [curveAlg]
    members = { kty: 'EC', crv: k.crv, x: k.x, y: k.y }
  } else {
    if (typeof k.crv !== 'string' || !OKP_CURVES.has(k.crv)) return 'unsupported curve'
    if (alg !== undefined && alg !== 'EdDSA') return 'alg contradicts crv'
    algorithms = ['EdDSA']
    members = { kty: 'OKP', crv: k.crv, x: k.x }
  }

  let key: KeyObject
  try {
    key = createPublicKey({ key: members as import('node:crypto').JsonWebKey, format: 'jwk' })
  } catch {
    return 'invalid key material'
  }
  if (key.type !== 'public') return 'private'
  if (k.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return 'RSA key under 2048 bits'
  return Object.freeze({
    kid: k.kid as string | undefined,
    kty: k.kty,
    alg: alg as AsymmetricAlgorithm | undefined,
    algorithms: new Set(algorithms),
    pem: key.export({ type: 'spki', format: 'pem' }) as string
  })
}

/**
 * Validates a JWKS document and imports its usable keys. A document that is not
 * `{ keys: [...] }` with 1..maxKeys entries is refused as a whole (the previous key set stays);
 * single keys that are symmetric, private, weak, for encryption or of an unknown kind are skipped.
 */
export function importJwks (doc: unknown, maxKeys: number): ImportedKeys {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new KeySourceError('the JWKS is not a JSON object')
  const keys = (doc as Record<string, unknown>).keys
  if (!Array.isArray(keys)) throw new KeySourceError('the JWKS has no "keys" array')
  if (keys.length === 0) throw new KeySourceError('the JWKS has no keys')
  if (keys.length > maxKeys) throw new KeySourceError(`the JWKS has ${keys.length} keys, more than the ${maxKeys} allowed`)
  const imported: KeyEntry[] = []
  const skipped: Record<string, number> = {}
  for (const jwk of keys) {
    const result = importJwk(jwk)
    if (typeof result === 'string') skipped[result] = (skipped[result] ?? 0) + 1
    else imported.push(result)
  }
  return { keys: imported, skipped }
}

/** Reads an OpenID Provider Metadata document (OIDC Discovery 1.0 §4.3: `issuer` must match exactly). */
export function jwksUriFromDiscovery (doc: unknown, issuer: string): string {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new KeySourceError('the discovery document is not a JSON object')
  const meta = doc as Record<string, unknown>
  if (meta.issuer !== issuer) throw new KeySourceError('the discovery document names a different issuer')
  if (typeof meta.jwks_uri !== 'string') throw new KeySourceError('the discovery document has no jwks_uri')
  const problem = keySourceProblem(meta.jwks_uri)
  if (problem !== null) throw new KeySourceError(`the discovered jwks_uri ${problem}`)
  return meta.jwks_uri
}

/** OIDC Discovery 1.0 §4: the issuer without a trailing slash, then the well-known path. */
export function discoveryUrl (issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
}
