// Options of gatehouse-trusted-issuers: the per-issuer allowlist (CONTRACT §5, the JSON of
// TRUSTED_ISSUERS) and the limits of the JWKS fetcher. resolveOptions() validates everything
// once, fills the defaults below and returns a frozen object; a bad entry throws a ConfigError
// naming TRUSTED_ISSUERS with one line that says which entry and what is wrong.
import { availableParallelism } from 'node:os'
import { ConfigError } from '../../lib/options.ts'
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, type Algorithm, type AsymmetricAlgorithm, type HmacAlgorithm } from '../../lib/algorithms.ts'
import { isLoopbackHost } from '../../lib/loopback.ts'

export { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, isLoopbackHost }
export type { Algorithm, AsymmetricAlgorithm, HmacAlgorithm } from '../../lib/algorithms.ts'

/** RFC 7518 §3.2: an HMAC key must be at least as long as the hash output. */
export const HMAC_MIN_SECRET_BYTES: Readonly<Record<HmacAlgorithm, number>> = { HS256: 32, HS384: 48, HS512: 64 }

export const DEFAULT_ASYMMETRIC_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['RS256']
export const DEFAULT_HMAC_ALGORITHMS: readonly HmacAlgorithm[] = ['HS256']
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30
export const MAX_CLOCK_TOLERANCE_SECONDS = 300
export const DEFAULT_TIMEOUT_MS = 5_000
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024
export const DEFAULT_MAX_KEYS = 100
export const DEFAULT_COOLDOWN_MS = 30_000
export const DEFAULT_FAILURE_BACKOFF_MS = 5_000
export const DEFAULT_CACHE_MAX_AGE_MS = 10 * 60_000
export const DEFAULT_MAX_STALE_MS = 24 * 60 * 60_000
export const DEFAULT_NEGATIVE_CACHE_SIZE = 1_000
export const DEFAULT_MAX_TOKEN_BYTES = 8 * 1024
export const DEFAULT_VERIFIED_CACHE_SIZE = 10_000
/** CONTRACT §14: a trusted issuer's token may live at most a day unless its entry says otherwise. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 86_400

/** One entry of TRUSTED_ISSUERS, as written by the operator. */
export interface TrustedIssuerInput {
  /** The exact `iss` value; compared as a string, byte for byte. */
  issuer: string
  /** Where the issuer's public keys are (https:, or http: on a loopback host). */
  jwksUri?: string
  /** Read `jwks_uri` from `<issuer>/.well-known/openid-configuration`. @default false */
  discovery?: boolean
  /** Shared secret of an HS256/384/512 issuer (at least as many bytes as the hash output). */
  secret?: string
  /** At least one of these must be in the token's `aud`. */
  audiences: readonly string[]
  /** Allowed `alg` values. @default ['RS256'] (['HS256'] with a secret) */
  algorithms?: readonly string[]
  /** Claims that must be present (own properties) besides iss, sub, exp and aud. @default [] */
  requiredClaims?: readonly string[]
  /**
   * Claim mapped to `AuthUser.roles`: a top-level claim name (tried as is first, so
   * `https://example.com/roles` works), a dot path (`realm_access.roles`) or an array of path
   * segments. The value must be an array of strings or a space/comma separated string. @default none (roles [])
   */
  rolesClaim?: string | readonly string[]
  /** Leeway for exp/nbf/iat, seconds (finite, 0..300). @default 30 */
  clockToleranceSeconds?: number
  /** Accepted JOSE `typ` values (e.g. ['at+jwt']); compared case-insensitively without `application/`. @default any */
  allowedTypes?: readonly string[]
  /** Let the key source resolve to private/link-local addresses (an IdP inside your network). @default false */
  allowPrivateNetwork?: boolean
  /**
   * Let this issuer's tokens use the admin API and manage organizations (their roles then count
   * there too). Without it such a token gets 403 FORBIDDEN there, whatever its roles. @default false
   */
  adminApi?: boolean
  /**
   * Longest accepted token lifetime, seconds: `exp - iat`, or `exp - now` for a token without `iat`.
   * A token that lives longer is INVALID_TOKEN. @default 86400
   */
  maxTokenLifetime?: number
}

export interface TrustedIssuersOptions {
  /**
   * The allowlist: one entry per issuer, the same shape as TRUSTED_ISSUERS. Entries are checked
   * again at registration (values from JSON reach here as well). @default []
   */
  issuers?: readonly TrustedIssuerInput[]
  /** Abort a JWKS or discovery request after this many ms (headers and body). @default 5000 */
  timeoutMs?: number
  /** Largest JWKS or discovery body read, bytes (streamed; the request is aborted beyond it). @default 262144 */
  maxResponseBytes?: number
  /** A JWKS with more keys is refused. @default 100 */
  maxKeys?: number
  /** Least time between two JWKS fetches of one issuer (unknown kid, failures). @default 30000 */
  cooldownMs?: number
  /** After a failed fetch, the next one waits this long (503 meanwhile when nothing is cached). @default min(5000, cooldownMs) */
  failureBackoffMs?: number
  /** A key set older than this is refetched before use; removed keys stop verifying after it. @default 600000 */
  cacheMaxAgeMs?: number
  /** While the provider is down, a key set this old is still used. @default 86400000 */
  maxStaleMs?: number
  /** Unknown kids remembered per issuer (for the cooldown), oldest forgotten first. @default 1000 */
  negativeCacheSize?: number
  /** Tokens longer than this are refused before decoding. @default 8192 */
  maxTokenBytes?: number
  /**
   * Verified tokens remembered (all issuers together). A token is remembered the second time it
   * is verified (the first sighting only marks it), so a stream of tokens that never repeat does
   * not churn the cache. @default 10000
   */
  verifiedCacheSize?: number
  /**
   * Where the signature of an RS/PS/ES/EdDSA token that is not in the verified cache is checked:
   * 'pool' on libuv's thread pool (in parallel with the JavaScript thread), 'inline' on the
   * JavaScript thread (the better choice for a process limited to one core). HS tokens are
   * always checked inline (an HMAC costs less than the hand-off).
   * @default 'pool' when os.availableParallelism() > 1, else 'inline'
   */
  signatureCheck?: 'pool' | 'inline'
  /**
   * Milliseconds since the epoch, for the key cache: cooldown, failure backoff, max age, max
   * stale, the discovery cache and remembered unknown kids. Tests move time with it instead of
   * sleeping. Token claims (exp, nbf, iat) are checked against the real time. @default Date.now
   */
  clock?: () => number
}

export interface ResolvedIssuer {
  readonly issuer: string
  readonly kind: 'jwks' | 'discovery' | 'secret'
  readonly jwksUri?: string
  readonly secret?: string
  readonly audiences: readonly string[]
  readonly algorithms: readonly Algorithm[]
  readonly requiredClaims: readonly string[]
  readonly rolesClaim?: readonly string[] | string
  readonly clockToleranceSeconds: number
  readonly allowedTypes?: readonly string[]
  readonly allowPrivateNetwork: boolean
  readonly adminApi: boolean
  readonly maxTokenLifetime: number
}

export interface ResolvedOptions {
  readonly issuers: ReadonlyMap<string, ResolvedIssuer>
  readonly timeoutMs: number
  readonly maxResponseBytes: number
  readonly maxKeys: number
  readonly cooldownMs: number
  readonly failureBackoffMs: number
  readonly cacheMaxAgeMs: number
  readonly maxStaleMs: number
  readonly negativeCacheSize: number
  readonly maxTokenBytes: number
  readonly verifiedCacheSize: number
  readonly signatureCheck: 'pool' | 'inline'
  readonly clock: () => number
}

const ISSUER_FIELDS = new Set(['issuer', 'jwksUri', 'discovery', 'secret', 'audiences', 'algorithms', 'requiredClaims', 'rolesClaim', 'clockToleranceSeconds', 'allowedTypes', 'allowPrivateNetwork', 'adminApi', 'maxTokenLifetime'])

/** A key source URL is acceptable when it is https:, or http: to a loopback host, with no credentials in it. */
export function keySourceProblem (raw: string): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'is not an absolute URL'
  }
  if (url.username !== '' || url.password !== '') return 'must not contain credentials'
  if (url.protocol === 'https:') return null
  if (url.protocol === 'http:') return isLoopbackHost(url.hostname) ? null : 'must be https: (http: only for a loopback host)'
  return 'must be an https: URL'
}

function fail (message: string): never {
  throw new ConfigError('TRUSTED_ISSUERS', message, 'gatehouse-trusted-issuers')
}

function stringArray (value: unknown, where: string, field: string, { allowEmpty = false } = {}): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '') || (!allowEmpty && value.length === 0)) {
    fail(`${where}: ${field} must be ${allowEmpty ? 'an' : 'a non-empty'} array of non-empty strings`)
  }
  return [...new Set(value as string[])]
}

function positiveInteger (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) fail(`option ${name} must be a positive whole number`)
  return value
}

function resolveIssuer (raw: unknown, index: number): ResolvedIssuer {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`entry ${index} must be an object`)
  const entry = raw as Record<string, unknown>
  if (typeof entry.issuer !== 'string' || entry.issuer.trim() === '' || entry.issuer !== entry.issuer.trim()) {
    fail(`entry ${index}: issuer must be a non-empty string without surrounding spaces`)
  }
  const issuer = entry.issuer
  const where = `entry ${index} (${JSON.stringify(issuer)})`
  for (const key of Object.keys(entry)) {
    if (!ISSUER_FIELDS.has(key)) fail(`${where}: unknown field ${JSON.stringify(key)} (known: ${[...ISSUER_FIELDS].join(', ')})`)
  }

  if (entry.discovery !== undefined && typeof entry.discovery !== 'boolean') fail(`${where}: discovery must be true or false`)
  const sources = [entry.jwksUri !== undefined, entry.discovery === true, entry.secret !== undefined].filter(Boolean).length
  if (sources !== 1) fail(`${where}: set exactly one of jwksUri, discovery: true or secret`)

  const audiences = stringArray(entry.audiences, where, 'audiences')

  let kind: ResolvedIssuer['kind']
  let jwksUri: string | undefined
  let secret: string | undefined
  if (entry.jwksUri !== undefined) {
    kind = 'jwks'
    if (typeof entry.jwksUri !== 'string') fail(`${where}: jwksUri must be a string`)
    const problem = keySourceProblem(entry.jwksUri)
    if (problem !== null) fail(`${where}: jwksUri ${problem}`)
    jwksUri = entry.jwksUri
  } else if (entry.discovery === true) {
    kind = 'discovery'
    const problem = keySourceProblem(issuer)
    if (problem !== null) fail(`${where}: discovery needs an issuer that is an https: URL (http: only for a loopback host): the issuer ${problem}`)
  } else {
    kind = 'secret'
    if (typeof entry.secret !== 'string') fail(`${where}: secret must be a string`)
    secret = entry.secret
  }

  const defaults = kind === 'secret' ? DEFAULT_HMAC_ALGORITHMS : DEFAULT_ASYMMETRIC_ALGORITHMS
  const algorithms = (entry.algorithms === undefined ? [...defaults] : stringArray(entry.algorithms, where, 'algorithms')) as Algorithm[]
  for (const alg of algorithms) {
    if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg) && !(HMAC_ALGORITHMS as readonly string[]).includes(alg)) {
      fail(`${where}: unknown algorithm ${JSON.stringify(alg)} (use ${[...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS].join(', ')})`)
    }
  }
  const hmac = algorithms.filter((a) => (HMAC_ALGORITHMS as readonly string[]).includes(a)) as HmacAlgorithm[]
  if (hmac.length > 0 && hmac.length < algorithms.length) fail(`${where}: HS algorithms must not be mixed with asymmetric ones for one issuer`)
  if (kind === 'secret' && hmac.length === 0) fail(`${where}: a secret issuer needs HS256, HS384 or HS512 algorithms`)
  if (kind !== 'secret' && hmac.length > 0) fail(`${where}: HS algorithms need a secret, not a JWKS`)
  if (secret !== undefined) {
    const bytes = Buffer.byteLength(secret, 'utf8')
    for (const alg of hmac) {
      if (bytes < HMAC_MIN_SECRET_BYTES[alg]) fail(`${where}: secret must be at least ${HMAC_MIN_SECRET_BYTES[alg]} bytes for ${alg} (it has ${bytes})`)
    }
  }

  const requiredClaims = entry.requiredClaims === undefined ? [] : stringArray(entry.requiredClaims, where, 'requiredClaims', { allowEmpty: true })

  let rolesClaim: ResolvedIssuer['rolesClaim']
  if (entry.rolesClaim !== undefined) {
    if (typeof entry.rolesClaim === 'string') {
      if (entry.rolesClaim === '') fail(`${where}: rolesClaim must not be empty`)
      rolesClaim = entry.rolesClaim
    } else {
      rolesClaim = Object.freeze(stringArray(entry.rolesClaim, where, 'rolesClaim'))
    }
  }

  let clockToleranceSeconds = DEFAULT_CLOCK_TOLERANCE_SECONDS
  if (entry.clockToleranceSeconds !== undefined) {
    const v = entry.clockToleranceSeconds
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_CLOCK_TOLERANCE_SECONDS) {
      fail(`${where}: clockToleranceSeconds must be a finite number from 0 to ${MAX_CLOCK_TOLERANCE_SECONDS}`)
    }
    clockToleranceSeconds = v
  }

  const allowedTypes = entry.allowedTypes === undefined
    ? undefined
    : Object.freeze(stringArray(entry.allowedTypes, where, 'allowedTypes').map(normalizeTyp))

  if (entry.allowPrivateNetwork !== undefined && typeof entry.allowPrivateNetwork !== 'boolean') fail(`${where}: allowPrivateNetwork must be true or false`)
  if (entry.adminApi !== undefined && typeof entry.adminApi !== 'boolean') fail(`${where}: adminApi must be true or false`)
  const maxTokenLifetime = entry.maxTokenLifetime ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
  if (typeof maxTokenLifetime !== 'number' || !Number.isSafeInteger(maxTokenLifetime) || maxTokenLifetime < 1) {
    fail(`${where}: maxTokenLifetime must be a whole number of seconds >= 1`)
  }

  return Object.freeze({
    issuer,
    kind,
    jwksUri,
    secret,
    audiences: Object.freeze(audiences),
    algorithms: Object.freeze(algorithms),
    requiredClaims: Object.freeze(requiredClaims),
    rolesClaim,
    clockToleranceSeconds,
    allowedTypes,
    allowPrivateNetwork: entry.allowPrivateNetwork === true,
    adminApi: entry.adminApi === true,
    maxTokenLifetime: maxTokenLifetime as number
  })
}

/** RFC 7515 §4.1.9: `typ` is a media type; `application/` may be omitted and case does not matter. */
export function normalizeTyp (typ: string): string {
  return typ.toLowerCase().replace(/^application\//, '')
}

/** Validates the allowlist and limits, fills defaults, freezes. Throws ConfigError('TRUSTED_ISSUERS', ...). */
export function resolveOptions (input: TrustedIssuersOptions = {}): ResolvedOptions {
  const list = input.issuers ?? []
  if (!Array.isArray(list)) fail('must be a JSON array of issuer objects')
  const issuers = new Map<string, ResolvedIssuer>()
  list.forEach((raw, index) => {
    const resolved = resolveIssuer(raw, index)
    if (issuers.has(resolved.issuer)) fail(`entry ${index}: issuer ${JSON.stringify(resolved.issuer)} is listed twice`)
    issuers.set(resolved.issuer, resolved)
  })
  const cooldownMs = positiveInteger(input.cooldownMs, 'cooldownMs', DEFAULT_COOLDOWN_MS)
  const cacheMaxAgeMs = positiveInteger(input.cacheMaxAgeMs, 'cacheMaxAgeMs', DEFAULT_CACHE_MAX_AGE_MS)
  const maxStaleMs = positiveInteger(input.maxStaleMs, 'maxStaleMs', DEFAULT_MAX_STALE_MS)
  const failureBackoffMs = positiveInteger(input.failureBackoffMs, 'failureBackoffMs', Math.min(DEFAULT_FAILURE_BACKOFF_MS, cooldownMs))
  if (failureBackoffMs > cooldownMs) fail('option failureBackoffMs must not be longer than cooldownMs')
  if (cacheMaxAgeMs < cooldownMs) fail('option cacheMaxAgeMs must not be shorter than cooldownMs')
  if (maxStaleMs < cacheMaxAgeMs) fail('option maxStaleMs must not be shorter than cacheMaxAgeMs')
  const clock = input.clock ?? Date.now
  if (typeof clock !== 'function') fail('option clock must be a function')
  const signatureCheck = input.signatureCheck ?? (availableParallelism() > 1 ? 'pool' : 'inline')
  if (signatureCheck !== 'pool' && signatureCheck !== 'inline') fail("option signatureCheck must be 'pool' or 'inline'")
  return Object.freeze({
    issuers,
    timeoutMs: positiveInteger(input.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS),
    maxResponseBytes: positiveInteger(input.maxResponseBytes, 'maxResponseBytes', DEFAULT_MAX_RESPONSE_BYTES),
    maxKeys: positiveInteger(input.maxKeys, 'maxKeys', DEFAULT_MAX_KEYS),
    cooldownMs,
    failureBackoffMs,
    cacheMaxAgeMs,
    maxStaleMs,
    negativeCacheSize: positiveInteger(input.negativeCacheSize, 'negativeCacheSize', DEFAULT_NEGATIVE_CACHE_SIZE),
    maxTokenBytes: positiveInteger(input.maxTokenBytes, 'maxTokenBytes', DEFAULT_MAX_TOKEN_BYTES),
    verifiedCacheSize: positiveInteger(input.verifiedCacheSize, 'verifiedCacheSize', DEFAULT_VERIFIED_CACHE_SIZE),
    signatureCheck,
    clock
  })
}
