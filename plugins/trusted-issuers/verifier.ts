// Verification of tokens from allowlisted external issuers, as a plain object (no Fastify):
// createTrustedIssuers(resolveOptions(...)) -> { has, verify, stats, close }.
//
// Order matters: the token is decoded without trusting it only far enough to read `iss`, `alg`
// and `kid`; `iss` must match an allowlist entry exactly and `alg` must be on that entry's list
// BEFORE any key is looked up, so a token from anyone else costs no network call. Keys come only
// from the entry's configured source; `jku`, `x5u`, `jwk` and `x5c` headers are never read.
// The signature is checked (node:crypto, lib/signature.ts: on libuv's thread pool or inline,
// with the one algorithm the key is bound to; HMAC inline) before any claim (claims.ts).
//
// Verified tokens are cached (lib/verified-cache.ts, as gatehouse-tokens does): the whole token
// must be equal for a hit, an entry enters on the token's second verification (doorkeeper), lives
// at most until exp (and cacheMaxAge), is not served before its nbf/iat, and is served only while
// the key that verified it is still in the issuer's current, fresh key set.
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { AuthUser } from '../../lib/auth-user.ts'
import { isObject, parseSegment } from '../../lib/jwt.ts'
import { bearerError, isGatehouseError, type GatehouseError } from '../../lib/errors.ts'
import { checkSignature, checkSignatureSync, signatureScheme, type SignatureScheme } from '../../lib/signature.ts'
import { cacheKeyOf, Doorkeeper, ExpiringLru } from '../../lib/verified-cache.ts'
import { checkRegisteredClaims, checkTokenRules, readRoles, toUser } from './claims.ts'
import type { KeyEntry } from './jwks.ts'
import { IssuerKeySource, type Counters, type SourceLog } from './key-source.ts'
import { normalizeTyp, type Algorithm, type AsymmetricAlgorithm, type ResolvedIssuer, type ResolvedOptions } from './options.ts'

export { readRoles } from './claims.ts'

export interface TrustedIssuersStats extends Counters {
  /** Tokens accepted (from the verified-token cache or not). */
  verified: number
  /** Tokens accepted from the verified-token cache. */
  verifiedCacheHits: number
  /** Verified tokens cached now. */
  verifiedCacheSize: number
  /** Tokens refused (any reason, UNTRUSTED_ISSUER and JWKS_UNAVAILABLE included). */
  rejected: number
  /** Tokens whose `iss` is not allowlisted (or not a string). */
  rejectedIssuers: number
  /** Tokens whose `alg` is not allowed for their issuer. */
  rejectedAlgorithms: number
  /** Per issuer: keys cached, time of the last good fetch, last fetch error. */
  issuers: Record<string, { keys: number, fetchedAt: string | null, lastError: string | null }>
}

export interface TrustedIssuers {
  /** True when `iss` is exactly (string equality) an allowlisted issuer. */
  has: (iss: unknown) => boolean
  /** Verifies a compact JWS from an allowlisted issuer; throws a coded error otherwise. */
  verify: (token: string) => Promise<AuthUser>
  /**
   * The AuthUser of `token` when it is in the verified-token cache and still holds (what verify
   * would answer), else undefined: a synchronous Map lookup for callers on a hot path.
   */
  cached: (token: string) => AuthUser | undefined
  stats: () => TrustedIssuersStats
  /** Aborts fetches in flight (the plugin calls it on close). */
  close: () => void
}

/** A verified token, as the cache holds it. */
interface Verified {
  /** The whole token: a hit must equal it (the cache is indexed by its tail). */
  readonly token: string
  readonly issuer: ResolvedIssuer
  /** The key that verified the signature, and its source; null for a secret issuer. */
  readonly key: KeyEntry | null
  readonly source: IssuerKeySource | null
  readonly claims: Record<string, unknown>
  readonly roles: string[]
  /** Epoch ms before which the token is not valid yet (nbf, iat, with the tolerance). */
  readonly notBefore: number
}

/** A token decoded (not trusted yet) far enough to pick its verifier. */
interface Decoded {
  issuer: ResolvedIssuer
  header: Record<string, unknown>
  payload: Record<string, unknown>
  alg: Algorithm
  kid: string | undefined
  /** The token, and the index of its last dot: the signing input is before it, the signature after. */
  token: string
  dot: number
}

const SEGMENT = /^[A-Za-z0-9_-]+$/
const KID = /^[\x21-\x7e]{1,256}$/
const HMAC_DIGESTS: Readonly<Record<string, string>> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }

function translate (err: unknown): GatehouseError {
  if (isGatehouseError(err)) return err
  return bearerError('INVALID_TOKEN', undefined, err)
}

/** Claims shared by every request that presents a cached token: frozen all the way down. */
function deepFreeze (value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const member of Object.values(value)) deepFreeze(member)
}

export function createTrustedIssuers (options: ResolvedOptions, log: SourceLog = { warn () {}, info () {} }): TrustedIssuers {
  const counters = {
    fetches: 0,
    fetchFailures: 0,
    discoveryFetches: 0,
    cacheHits: 0,
    cacheMisses: 0,
    staleServed: 0,
    unknownKids: 0,
    skippedKeys: 0,
    verified: 0,
    verifiedCacheHits: 0,
    rejected: 0,
    rejectedIssuers: 0,
    rejectedAlgorithms: 0
  }
  const offload = options.signatureCheck === 'pool'
  const closing = new AbortController()
  const sources = new Map<string, IssuerKeySource>()
  for (const issuer of options.issuers.values()) {
    if (issuer.kind !== 'secret') sources.set(issuer.issuer, new IssuerKeySource(issuer, options, counters, log, closing.signal))
  }
  // Schemes are built once per (key, algorithm): the key object itself is the WeakMap key,
  // so a key dropped from a replaced key set takes its schemes with it.
  const schemes = new WeakMap<KeyEntry, Map<Algorithm, SignatureScheme>>()
  const secrets = new Map<string, KeyObject>()
  const verified = new ExpiringLru<Verified>(options.verifiedCacheSize)
  const doorkeeper = new Doorkeeper(options.verifiedCacheSize)

  function schemeOf (key: KeyEntry, alg: Algorithm): SignatureScheme {
    let byAlg = schemes.get(key)
    if (byAlg === undefined) schemes.set(key, byAlg = new Map())
    let scheme = byAlg.get(alg)
    if (scheme === undefined) byAlg.set(alg, scheme = signatureScheme(alg as AsymmetricAlgorithm, key.publicKey))
    return scheme
  }

  function has (iss: unknown): boolean {
    return typeof iss === 'string' && options.issuers.has(iss)
  }

  /** Every check before the signature; reads iss, alg and kid without trusting them. */
  function decode (token: string): Decoded {
    if (typeof token !== 'string' || token.length === 0 || token.length > options.maxTokenBytes) throw bearerError('INVALID_TOKEN')
    const parts = token.split('.')
    // A compact JWS (RFC 7515 §7.1): three base64url segments (an empty signature is judged below).
    if (parts.length !== 3 || !SEGMENT.test(parts[0]) || !SEGMENT.test(parts[1]) || !(parts[2] === '' || SEGMENT.test(parts[2]))) {
      throw bearerError('INVALID_TOKEN')
    }
    const header = parseSegment(parts[0])
    const payload = parseSegment(parts[1])
    if (!isObject(header) || !isObject(payload)) throw bearerError('INVALID_TOKEN')

    if (!Object.hasOwn(payload, 'iss')) throw bearerError('MISSING_CLAIM')
    const iss = payload.iss
    if (typeof iss !== 'string' || !options.issuers.has(iss)) {
      // An array or object `iss` is no issuer of ours either (CVE-2025-30144): same answer.
      counters.rejectedIssuers++
      throw bearerError('UNTRUSTED_ISSUER')
    }
    const issuer = options.issuers.get(iss) as ResolvedIssuer

    const alg = header.alg
    if (typeof alg !== 'string' || !(issuer.algorithms as readonly string[]).includes(alg)) {
      counters.rejectedAlgorithms++
      throw bearerError('INVALID_TOKEN')
    }
    // RFC 7515 §4.1.11: no extension is understood here, so any `crit` is refused (and b64, RFC 7797).
    if (Object.hasOwn(header, 'crit') || Object.hasOwn(header, 'b64')) throw bearerError('INVALID_TOKEN')
    const kid = header.kid
    if (kid !== undefined && (typeof kid !== 'string' || !KID.test(kid))) throw bearerError('INVALID_TOKEN')
    // An allowed alg with no signature (CVE-2020-28042) can never verify: no key is needed to say so.
    if (parts[2] === '') throw bearerError('INVALID_SIGNATURE')
    return {
      issuer,
      header,
      payload,
      alg: alg as Algorithm,
      kid,
      token,
      dot: token.length - parts[2].length - 1
    }
  }

  /** HS256/384/512 with the issuer's secret, inline (constant-time comparison). */
  function hmacHolds (issuer: ResolvedIssuer, decoded: Decoded): boolean {
    let secret = secrets.get(issuer.issuer)
    if (secret === undefined) secrets.set(issuer.issuer, secret = createSecretKey(Buffer.from(issuer.secret as string, 'utf8')))
    const expected = createHmac(HMAC_DIGESTS[decoded.alg], secret).update(decoded.token.slice(0, decoded.dot), 'latin1').digest()
    const signature = Buffer.from(decoded.token.slice(decoded.dot + 1), 'base64url')
    return expected.length === signature.length && timingSafeEqual(expected, signature)
  }

  function signatureHolds (scheme: SignatureScheme, decoded: Decoded): boolean | Promise<boolean> {
    if (!offload) return checkSignatureSync(scheme, decoded.token, decoded.dot)
    return new Promise((resolve) => checkSignature(scheme, decoded.token, decoded.dot, resolve))
  }

  /** Several keys may share a kid: the first whose signature holds is the token's key. */
  async function signingKey (decoded: Decoded, keys: readonly KeyEntry[]): Promise<KeyEntry> {
    for (const key of keys) {
      if (await signatureHolds(schemeOf(key, decoded.alg), decoded)) return key
    }
    throw bearerError('INVALID_SIGNATURE')
  }

  /** Full verification of a token that is not cached (or whose cached entry no longer holds). */
  async function check (token: string, cacheKey: string, recached: boolean): Promise<AuthUser> {
    const decoded = decode(token)
    const { issuer, header, payload, alg, kid } = decoded
    let key: KeyEntry | null = null
    let source: IssuerKeySource | null = null
    if (issuer.kind === 'secret') {
      if (!hmacHolds(issuer, decoded)) throw bearerError('INVALID_SIGNATURE')
    } else {
      source = sources.get(issuer.issuer) as IssuerKeySource
      const keys = (await source.lookup(kid)).filter((k) => k.algorithms.has(alg as never))
      // Without a kid, only an unambiguous key set is usable (OIDC: a single key).
      if (keys.length === 0 || (kid === undefined && keys.length !== 1)) throw bearerError('INVALID_TOKEN')
      key = await signingKey(decoded, keys)
    }
    const now = Date.now()
    checkRegisteredClaims(payload, issuer, now)
    // RFC 8725 §3.11: an issuer may pin the token type, e.g. at+jwt (RFC 9068) to refuse ID tokens.
    // Checked after the signature, like every other header and claim rule.
    if (issuer.allowedTypes !== undefined && (typeof header.typ !== 'string' || !issuer.allowedTypes.includes(normalizeTyp(header.typ)))) {
      throw bearerError('INVALID_TOKEN')
    }
    checkTokenRules(payload, issuer, now)
    const roles = readRoles(payload, issuer.rolesClaim)
    // A token without kid is acceptable only while its issuer has one fitting key: that is
    // decided anew each time, so such tokens are not cached.
    if (kid !== undefined || key === null) {
      remember({ token, issuer, key, source, claims: payload, roles, notBefore: notBeforeOf(payload, issuer) }, cacheKey, recached, now)
    }
    return toUser(issuer, payload, roles)
  }

  /** The earliest time the token is valid (nbf and iat, minus the tolerance), for hits. */
  function notBeforeOf (claims: Record<string, unknown>, issuer: ResolvedIssuer): number {
    const tolerance = issuer.clockToleranceSeconds * 1000
    let at = Number.NEGATIVE_INFINITY
    if (typeof claims.nbf === 'number') at = claims.nbf * 1000 - tolerance
    if (typeof claims.iat === 'number') at = Math.max(at, claims.iat * 1000 - tolerance)
    return at
  }

  /** A verified token enters the cache on its second verification (or again, once re-verified). */
  function remember (entry: Verified, cacheKey: string, recached: boolean, now: number): void {
    if (!recached && !doorkeeper.admit(cacheKey)) return
    // Never past exp (the tolerance only widens the full check), nor past one key-set age.
    const expiresAt = Math.min((entry.claims.exp as number) * 1000, now + options.cacheMaxAgeMs)
    if (expiresAt <= now) return
    deepFreeze(entry.claims)
    Object.freeze(entry.roles)
    verified.set(cacheKey, entry, expiresAt)
  }

  /** The cached entry of exactly this token while it still holds; null when one is there but no longer holds. */
  function lookup (token: string, cacheKey: string): Verified | null | undefined {
    const now = Date.now()
    const entry = verified.get(cacheKey, now)
    if (entry === undefined || entry.token !== token) return undefined
    if (now < entry.notBefore) return null
    // Only while the key that verified it is still published, in a key set younger than cacheMaxAge.
    if (entry.key !== null && !(entry.source as IssuerKeySource).serves(entry.key)) return null
    return entry
  }

  async function verify (token: string): Promise<AuthUser> {
    try {
      const cacheKey = typeof token === 'string' ? cacheKeyOf(token) : ''
      const entry = typeof token === 'string' ? lookup(token, cacheKey) : undefined
      if (entry != null) {
        counters.verified++
        counters.verifiedCacheHits++
        return toUser(entry.issuer, entry.claims, entry.roles)
      }
      const user = await check(token, cacheKey, entry === null)
      counters.verified++
      return user
    } catch (err) {
      counters.rejected++
      throw translate(err)
    }
  }

  function cached (token: string): AuthUser | undefined {
    if (typeof token !== 'string') return undefined
    const entry = lookup(token, cacheKeyOf(token))
    if (entry == null) return undefined
    counters.verified++
    counters.verifiedCacheHits++
    return toUser(entry.issuer, entry.claims, entry.roles)
  }

  function stats (): TrustedIssuersStats {
    const issuers: TrustedIssuersStats['issuers'] = {}
    for (const [iss, source] of sources) issuers[iss] = source.describe()
    for (const issuer of options.issuers.values()) {
      if (issuer.kind === 'secret') issuers[issuer.issuer] = { keys: 1, fetchedAt: null, lastError: null }
    }
    return { ...counters, verifiedCacheSize: verified.size, issuers }
  }

  return {
    has,
    verify,
    cached,
    stats,
    close: () => closing.abort()
  }
}
