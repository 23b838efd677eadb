// Verification of tokens from allowlisted external issuers, as a plain object (no Fastify):
// createTrustedIssuers(resolveOptions(...)) -> { has, verify, stats, close }.
//
// Order matters: the token is decoded without trusting it only far enough to read `iss`, `alg`
// and `kid`; `iss` must match an allowlist entry exactly and `alg` must be on that entry's list
// BEFORE any key is looked up, so a token from anyone else costs no network call. Keys come only
// from the entry's configured source; `jku`, `x5u`, `jwk` and `x5c` headers are never read.
// The signature is checked (fast-jwt, one verifier per key and algorithm) before any claim.
import { createVerifier, TokenError } from 'fast-jwt'
import type { AuthUser } from '../../lib/auth-user.ts'
import { isObject, parseSegment, readClaim } from '../../lib/jwt.ts'
import { bearerError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
import type { KeyEntry } from './jwks.ts'
import { IssuerKeySource, type Counters, type SourceLog } from './key-source.ts'
import { normalizeTyp, type Algorithm, type ResolvedIssuer, type ResolvedOptions } from './options.ts'

export interface TrustedIssuersStats extends Counters {
  /** Tokens accepted. */
  verified: number
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
  stats: () => TrustedIssuersStats
  /** Aborts fetches in flight (the plugin calls it on close). */
  close: () => void
}

type Verify = (token: string) => Record<string, unknown>

/** fast-jwt error codes -> CONTRACT §4 codes (by code, never by message). */
const FAST_JWT_CODES: Readonly<Record<string, ErrorCode>> = {
  [TokenError.codes.invalidSignature]: 'INVALID_SIGNATURE',
  // A signature that cannot even be processed (e.g. an ES256 signature in DER, not R||S).
  [TokenError.codes.verifyError]: 'INVALID_SIGNATURE',
  [TokenError.codes.missingSignature]: 'INVALID_SIGNATURE',
  [TokenError.codes.expired]: 'TOKEN_EXPIRED',
  [TokenError.codes.inactive]: 'TOKEN_NOT_YET_VALID',
  [TokenError.codes.missingRequiredClaim]: 'MISSING_CLAIM'
}

function translate (err: unknown): GatehouseError {
  if (isGatehouseError(err)) return err
  const code = (err as { code?: unknown })?.code
  return bearerError((typeof code === 'string' ? FAST_JWT_CODES[code] : undefined) ?? 'INVALID_TOKEN', undefined, err)
}

const SEGMENT = /^[A-Za-z0-9_-]+$/
const KID = /^[\x21-\x7e]{1,256}$/

/** Reads `rolesClaim` from verified claims: only own properties, only strings. */
export function readRoles (claims: Record<string, unknown>, rolesClaim: ResolvedIssuer['rolesClaim']): string[] {
  if (rolesClaim === undefined) return []
  const value = typeof rolesClaim === 'string' && Object.hasOwn(claims, rolesClaim)
    ? claims[rolesClaim]
    : readClaim(claims, typeof rolesClaim === 'string' ? rolesClaim.split('.') : rolesClaim)
  if (typeof value === 'string') return [...new Set(value.split(/[\s,]+/).filter((r) => r !== ''))]
  if (Array.isArray(value) && value.every((r) => typeof r === 'string')) return [...new Set(value as string[])]
  return []
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
    rejected: 0,
    rejectedIssuers: 0,
    rejectedAlgorithms: 0
  }
  const closing = new AbortController()
  const sources = new Map<string, IssuerKeySource>()
  for (const issuer of options.issuers.values()) {
    if (issuer.kind !== 'secret') sources.set(issuer.issuer, new IssuerKeySource(issuer, options, counters, log, closing.signal))
  }
  // Verifiers are built once per (key, algorithm): the key object itself is the WeakMap key,
  // so a key dropped from a replaced key set takes its verifiers with it.
  const keyVerifiers = new WeakMap<KeyEntry, Map<Algorithm, Verify>>()
  const secretVerifiers = new Map<string, Map<Algorithm, Verify>>()

  function verifierOptions (issuer: ResolvedIssuer, alg: Algorithm): Record<string, unknown> {
    return {
      algorithms: [alg],
      allowedIss: [issuer.issuer],
      allowedAud: [...issuer.audiences],
      requiredClaims: ['iss', 'sub', 'exp', 'aud'],
      clockTolerance: issuer.clockToleranceSeconds * 1000,
      cache: false
    }
  }

  function keyVerifier (issuer: ResolvedIssuer, key: KeyEntry, alg: Algorithm): Verify {
    let byAlg = keyVerifiers.get(key)
    if (byAlg === undefined) keyVerifiers.set(key, byAlg = new Map())
    let verifier = byAlg.get(alg)
    if (verifier === undefined) {
      verifier = createVerifier({ ...verifierOptions(issuer, alg), key: key.pem }) as unknown as Verify
      byAlg.set(alg, verifier)
    }
    return verifier
  }

  function secretVerifier (issuer: ResolvedIssuer, alg: Algorithm): Verify {
    let byAlg = secretVerifiers.get(issuer.issuer)
    if (byAlg === undefined) secretVerifiers.set(issuer.issuer, byAlg = new Map())
    let verifier = byAlg.get(alg)
    if (verifier === undefined) {
      verifier = createVerifier({ ...verifierOptions(issuer, alg), key: issuer.secret as string }) as unknown as Verify
      byAlg.set(alg, verifier)
    }
    return verifier
  }

  function has (iss: unknown): boolean {
    return typeof iss === 'string' && options.issuers.has(iss)
  }

  async function check (token: string): Promise<AuthUser> {
    if (typeof token !== 'string' || token.length === 0 || token.length > options.maxTokenBytes) throw bearerError('INVALID_TOKEN')
    const parts = token.split('.')
    // A compact JWS (RFC 7515 §7.1): three base64url segments (an empty signature is judged below).
    if (parts.length !== 3 || !SEGMENT.test(parts[0]) || !SEGMENT.test(parts[1]) || !(parts[2] === '' || SEGMENT.test(parts[2]))) {
      throw bearerError('INVALID_TOKEN')
    }
    const header = parseSegment(parts[0])
    const unverified = parseSegment(parts[1])
    if (!isObject(header) || !isObject(unverified)) throw bearerError('INVALID_TOKEN')

    if (!Object.hasOwn(unverified, 'iss')) throw bearerError('MISSING_CLAIM')
    const iss = unverified.iss
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

    let claims: Record<string, unknown>
    if (issuer.kind === 'secret') {
      claims = run(secretVerifier(issuer, alg as Algorithm), token)
    } else {
      const source = sources.get(issuer.issuer) as IssuerKeySource
      const keys = (await source.lookup(kid)).filter((k) => k.algorithms.has(alg as never))
      // Without a kid, only an unambiguous key set is usable (OIDC: a single key).
      if (keys.length === 0 || (kid === undefined && keys.length !== 1)) throw bearerError('INVALID_TOKEN')
      claims = verifyWithAny(issuer, keys, alg as Algorithm, token)
    }
    // RFC 8725 §3.11: an issuer may pin the token type, e.g. at+jwt (RFC 9068) to refuse ID tokens.
    // Checked after the signature, like every other header and claim rule.
    if (issuer.allowedTypes !== undefined && (typeof header.typ !== 'string' || !issuer.allowedTypes.includes(normalizeTyp(header.typ)))) {
      throw bearerError('INVALID_TOKEN')
    }
    return toUser(issuer, claims)
  }

  function run (verifier: Verify, token: string): Record<string, unknown> {
    try {
      return verifier(token)
    } catch (err) {
      throw translate(err)
    }
  }

  /** Several keys may share a kid; a bad signature tries the next, any other error ends it. */
  function verifyWithAny (issuer: ResolvedIssuer, keys: readonly KeyEntry[], alg: Algorithm, token: string): Record<string, unknown> {
    let last: GatehouseError | undefined
    for (const key of keys) {
      try {
        return keyVerifier(issuer, key, alg)(token)
      } catch (err) {
        last = translate(err)
        if (last.code !== 'INVALID_SIGNATURE') throw last
      }
    }
    throw last ?? bearerError('INVALID_SIGNATURE')
  }

  function toUser (issuer: ResolvedIssuer, claims: Record<string, unknown>): AuthUser {
    if (!isObject(claims)) throw bearerError('INVALID_TOKEN')
    const { sub, exp, iat } = claims
    if (typeof sub !== 'string' || sub === '') throw bearerError('INVALID_TOKEN')
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw bearerError('INVALID_TOKEN')
    const now = Date.now()
    if (iat !== undefined) {
      if (typeof iat !== 'number' || !Number.isFinite(iat)) throw bearerError('INVALID_TOKEN')
      if (iat * 1000 > now + issuer.clockToleranceSeconds * 1000) throw bearerError('TOKEN_NOT_YET_VALID')
    }
    // A token that lives far longer than any access token should (stolen, or minted by mistake)
    // is refused, whether its lifetime is stated (`iat`) or only implied by `exp`.
    const lifetime = iat === undefined ? exp - now / 1000 : exp - (iat as number)
    if (lifetime > issuer.maxTokenLifetime + issuer.clockToleranceSeconds) {
      throw bearerError('INVALID_TOKEN', `The token lives longer than this issuer's maxTokenLifetime (${issuer.maxTokenLifetime} s)`)
    }
    for (const claim of issuer.requiredClaims) {
      if (!Object.hasOwn(claims, claim)) throw bearerError('MISSING_CLAIM')
    }
    const user: AuthUser = {
      id: sub,
      sub,
      iss: issuer.issuer,
      roles: readRoles(claims, issuer.rolesClaim),
      scheme: 'bearer',
      external: true,
      claims
    }
    if (issuer.adminApi) user.adminApi = true
    if (typeof claims.client_id === 'string') user.clientId = claims.client_id
    return user
  }

  async function verify (token: string): Promise<AuthUser> {
    try {
      const user = await check(token)
      counters.verified++
      return user
    } catch (err) {
      counters.rejected++
      throw translate(err)
    }
  }

  function stats (): TrustedIssuersStats {
    const issuers: TrustedIssuersStats['issuers'] = {}
    for (const [iss, source] of sources) issuers[iss] = source.describe()
    for (const issuer of options.issuers.values()) {
      if (issuer.kind === 'secret') issuers[issuer.issuer] = { keys: 1, fetchedAt: null, lastError: null }
    }
    return { ...counters, issuers }
  }

  return {
    has,
    verify,
    stats,
    close: () => closing.abort()
  }
}
