// Fetching and importing an issuer's public keys: a bounded JSON GET (timeout, streamed size
// cap, no redirects, https: or loopback only, non-public addresses refused at connect time) and
// a strict JWK filter that turns a JWKS (RFC 7517) into verification keys, each bound to the
// algorithms it may verify.
import { createPublicKey, type KeyObject } from 'node:crypto'
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { BlockList, isIP } from 'node:net'
import { isLoopbackHost, keySourceProblem, type AsymmetricAlgorithm } from './options.ts'

/** Why a key source could not be used; the message names the URL and the reason, never a body. */
export class KeySourceError extends Error {
  override name = 'KeySourceError'
}

export interface FetchLimits {
  timeoutMs: number
  maxResponseBytes: number
  /** Connect to private, link-local and other non-public addresses too. @default false */
  allowPrivateNetwork?: boolean
  /** Aborts the request early (e.g. when the app closes). */
  signal?: AbortSignal
}

const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/** RFC 6890 special-purpose ranges: nothing a public identity provider lives on. */
const NON_PUBLIC = new BlockList()
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6')
}

/**
 * A host named as loopback (localhost, 127.x, ::1) may only reach loopback addresses; any other
 * host may only reach public addresses unless the issuer allows its private network. Checked on
 * the addresses actually connected to, so DNS cannot turn a configured name into an internal
 * target (IPv4-mapped IPv6 addresses are matched as IPv4).
 */
export function addressProblem (address: string, loopbackHost: boolean, allowPrivateNetwork: boolean): string | null {
  const type = isIP(address) === 6 ? 'ipv6' : 'ipv4'
  if (loopbackHost) return LOOPBACK.check(address, type) ? null : `resolves to ${address}, which is not a loopback address`
  if (allowPrivateNetwork) return null
  return NON_PUBLIC.check(address, type) ? `resolves to the non-public address ${address} (set allowPrivateNetwork for an internal provider)` : null
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

function guardedLookup (loopbackHost: boolean, allowPrivateNetwork: boolean) {
  return (hostname: string, options: { all?: boolean, family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) {
        callback(err, [])
        return
      }
      for (const { address } of addresses) {
        const problem = addressProblem(address, loopbackHost, allowPrivateNetwork)
        if (problem !== null) {
          callback(new KeySourceError(`${hostname} ${problem}`), [])
          return
        }
      }
      if (options.all === true) callback(null, addresses)
      else callback(null, addresses[0].address, addresses[0].family)
    })
  }
}

/**
 * GETs `url` and parses the JSON body. The timeout covers connecting, headers and body; the body
 * is counted as it streams and the connection destroyed as soon as it passes `maxResponseBytes`
 * (Content-Length is not trusted). Only identity encoding is accepted, so no decompression bomb.
 * Redirects are not followed: a key source is fixed by configuration, and a redirect would let
 * the host point us elsewhere. No connection pooling: each fetch connects (and is checked) anew.
 */
export async function fetchBoundedJson (url: string, limits: FetchLimits): Promise<unknown> {
  const problem = keySourceProblem(url)
  if (problem !== null) throw new KeySourceError(`${url} ${problem}`)
  const target = new URL(url)
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1')
  const loopbackHost = isLoopbackHost(target.hostname)
  const allowPrivateNetwork = limits.allowPrivateNetwork === true
  if (isIP(host) !== 0) {
    // An address literal is connected to without a lookup: check it here.
    const literal = addressProblem(host, loopbackHost, allowPrivateNetwork)
    if (literal !== null) throw new KeySourceError(`${url} ${literal.replace(/^resolves to/, 'is')}`)
  }

  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(new KeySourceError(`${url} did not answer within ${limits.timeoutMs} ms`)), limits.timeoutMs)
  const onOuterAbort = (): void => controller.abort(new KeySourceError('the trusted-issuers plugin is closing'))
  limits.signal?.addEventListener('abort', onOuterAbort, { once: true })
  try {
    return await new Promise<unknown>((resolve, reject) => {
      let settled = false
      const fail = (err: unknown): void => {
        if (settled) return
        settled = true
        req.destroy()
        reject(controller.signal.aborted
          ? controller.signal.reason
          : err instanceof KeySourceError ? err : new KeySourceError(`${url} could not be fetched: ${describe(err)}`))
      }
      const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, {
        method: 'GET',
        headers: { accept: 'application/json', 'accept-encoding': 'identity' },
        agent: false,
        lookup: guardedLookup(loopbackHost, allowPrivateNetwork) as never,
        signal: controller.signal
      })
      req.on('error', fail)
      req.on('response', (res: IncomingMessage) => {
        res.on('error', fail)
        res.on('aborted', () => fail(new KeySourceError(`${url} closed the connection mid-body`)))
        if (res.statusCode !== 200) {
          fail(new KeySourceError(`${url} answered HTTP ${res.statusCode ?? 0}`))
          return
        }
        const encoding = res.headers['content-encoding']
        if (encoding !== undefined && encoding !== 'identity') {
          fail(new KeySourceError(`${url} answered with content-encoding ${encoding}`))
          return
        }
        const chunks: Buffer[] = []
        let total = 0
        res.on('data', (chunk: Buffer) => {
          total += chunk.length
          if (total > limits.maxResponseBytes) {
            fail(new KeySourceError(`${url} sent more than ${limits.maxResponseBytes} bytes`))
            return
          }
          chunks.push(chunk)
        })
        res.on('end', () => {
          if (settled) return
          settled = true
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch {
            reject(new KeySourceError(`${url} did not answer with JSON`))
          }
        })
      })
      req.end()
    })
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
  /** The public key (node:crypto). */
  readonly publicKey: KeyObject
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
    publicKey: key
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
