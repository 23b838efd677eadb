// Strict parsing of Gatehouse access tokens (RFC 8725, RFC 9068), in plain functions, and the
// signer (fast-jwt). The signature and claim checks are in verify.ts.
//
// Order: size and shape, then the header (parsed once: algorithm allowlist, kid syntax, typ, no
// crit/b64/JWE members), then the signature with the one key the kid names (pinned to that key's
// algorithm) before any claim, then claims and their types. Keys are never taken from
// jku/jwk/x5u/x5c.
import { createSigner } from 'fast-jwt'
import type { GatehouseError } from '../../lib/errors.ts'
import { bearerError } from '../../lib/errors.ts'
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../lib/algorithms.ts'
import { checkShape, isObject, parseSegment, peekIssuer } from '../../lib/jwt.ts'

export { checkShape, MAX_TOKEN_LENGTH, peekIssuer } from '../../lib/jwt.ts'
import { KID_PATTERN, type SigningKey } from './keys.ts'

export const CLOCK_TOLERANCE_SECONDS = 30
export const ACCESS_TOKEN_TYPE = 'at+jwt'
const ALLOWED_ALGORITHMS: ReadonlySet<string> = new Set<SigningAlgorithm>(SIGNING_ALGORITHMS)
/** Header members that change how a JWS is processed; Gatehouse issues none of them. */
const FORBIDDEN_HEADER_MEMBERS = ['crit', 'b64', 'enc', 'zip', 'cty'] as const

/** The claims of a verified Gatehouse access token. */
export interface AccessTokenClaims {
  iss: string
  sub: string
  aud: string | string[]
  exp: number
  iat: number
  nbf?: number
  jti: string
  roles: string[]
  /** Refresh family (session) id; absent only on client_credentials tokens. */
  sid?: string
  /** The user's token version when the token was issued. */
  ver: number
  client_id?: string
  scope?: string
  /** RFC 8176 authentication methods of the session (user tokens). */
  amr?: string[]
  /** When the session's login happened, seconds since the epoch (user tokens; OIDC Core §2). */
  auth_time?: number
  [claim: string]: unknown
}

export interface DecodedToken {
  header: Record<string, unknown>
  payload: Record<string, unknown>
  kid: string
  alg: string
}

export interface VerifierSettings {
  issuer: string
  audience: string
  /** Seconds: also the maximum age of a token (from `iat`). */
  accessTokenTtl: number
  /** Seconds of accepted clock skew for exp/nbf/iat. @default 30 */
  clockTolerance?: number
}

function invalid (message: string): GatehouseError {
  return bearerError('INVALID_TOKEN', message)
}

/** A base64url segment as JSON, or undefined. */
/** RFC 9068 §4: `at+jwt`, also as the full media type, compared case-insensitively. */
function isAccessTokenType (typ: unknown): boolean {
  if (typeof typ !== 'string') return false
  const lower = typ.toLowerCase()
  return lower === ACCESS_TOKEN_TYPE || lower === 'application/' + ACCESS_TOKEN_TYPE
}

/** Size and shape (RFC 7515 §7.1), then the header as a JSON object. Throws INVALID_TOKEN. */
export function parseHeader (token: string): Record<string, unknown> {
  checkShape(token)
  return parseHeaderSegment(token.slice(0, token.indexOf('.')))
}

/** The first segment of a token whose shape was checked, as a JSON object. Throws INVALID_TOKEN. */
export function parseHeaderSegment (segment: string): Record<string, unknown> {
  const header = parseSegment(segment)
  if (!isObject(header)) throw invalid('The token header is not a JSON object')
  return header
}

/**
 * The header rules: `alg` on the allowlist, `kid` of a safe shape, `typ` at+jwt, no member that
 * changes how the JWS is processed. Returns the kid and alg; throws INVALID_TOKEN.
 */
export function checkHeader (header: Record<string, unknown>): { kid: string, alg: string } {
  const alg = header.alg
  if (typeof alg !== 'string' || !ALLOWED_ALGORITHMS.has(alg)) throw invalid('The token algorithm is not allowed')
  const kid = header.kid
  if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) throw invalid('The token kid is missing or malformed')
  if (!isAccessTokenType(header.typ)) throw invalid(`The token type must be ${ACCESS_TOKEN_TYPE}`)
  for (const member of FORBIDDEN_HEADER_MEMBERS) {
    if (Object.hasOwn(header, member)) throw invalid(`The token header member ${member} is not supported`)
  }
  return { kid, alg }
}

/**
 * The payload must be a JSON object whose `iss` is exactly `issuer`: MISSING_CLAIM without one,
 * UNTRUSTED_ISSUER for any other value (including an array, CVE-2025-30144). The signature is not checked.
 */
export function checkIssuer (token: string, issuer: string): void {
  const iss = peekIssuer(token)
  if (iss === undefined) throw bearerError('MISSING_CLAIM', 'The token lacks the iss claim')
  // Anything but our exact string (another string, an array that contains it, ...) is not us.
  if (iss !== issuer) throw bearerError('UNTRUSTED_ISSUER')
}

/** Every check before the signature, for a token whose key is looked up next (tests and tools). */
export function decodeAccessToken (token: string, issuer: string): DecodedToken {
  const header = parseHeader(token)
  checkIssuer(token, issuer)
  const { kid, alg } = checkHeader(header)
  const dot1 = token.indexOf('.')
  const payload = parseSegment(token.slice(dot1 + 1, token.indexOf('.', dot1 + 1))) as Record<string, unknown>
  return { header, payload, kid, alg }
}


function isStringArray (value: unknown): value is string[] {
  if (!Array.isArray(value)) return false
  for (const item of value) if (typeof item !== 'string') return false
  return true
}

/**
 * The claim rules fast-jwt does not know: types of our own claims, `iat` not in the future
 * (RFC 7519 leaves it to us; jose rejects it too), and the two principal shapes: a user token
 * carries `sid`; a client_credentials token has `client_id` = `sub` and no `sid`.
 */
export function checkClaimTypes (payload: Record<string, unknown>, now: number, toleranceMs: number): void {
  const { sub, jti, iat, roles, ver, sid } = payload
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255) throw invalid('The sub claim must be a non-empty string')
  if (typeof jti !== 'string' || jti.length === 0) throw invalid('The jti claim must be a non-empty string')
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('The iat claim must be a number')
  if (iat * 1000 > now + toleranceMs) throw bearerError('TOKEN_NOT_YET_VALID', 'The token was issued in the future')
  if (!isStringArray(roles)) throw invalid('The roles claim must be an array of strings')
  if (!Number.isSafeInteger(ver) || (ver as number) < 0) throw invalid('The ver claim must be a non-negative integer')
  if (sid !== undefined && (typeof sid !== 'string' || sid.length === 0)) throw invalid('The sid claim must be a non-empty string')
  if (payload.scope !== undefined && typeof payload.scope !== 'string') throw invalid('The scope claim must be a string')
  if (payload.amr !== undefined && !isStringArray(payload.amr)) throw invalid('The amr claim must be an array of strings')
  if (payload.auth_time !== undefined && (!Number.isSafeInteger(payload.auth_time) || (payload.auth_time as number) < 0)) throw invalid('The auth_time claim must be whole seconds since the epoch')
  const clientId = payload.client_id
  if (clientId === undefined) {
    if (sid === undefined) throw bearerError('MISSING_CLAIM', 'The token lacks the sid claim')
  } else if (typeof clientId !== 'string' || clientId !== sub || sid !== undefined) {
    throw invalid('A client token must have client_id equal to sub and no sid')
  }
}

export type KeySigner = (payload: Record<string, unknown>) => string

/** One fast-jwt signer per key; the header carries `typ: at+jwt` and the key's `kid`. */
export function createKeySigner (key: SigningKey): KeySigner {
  const signer = createSigner({ key: key.privatePem, algorithm: key.alg, kid: key.kid, header: { alg: key.alg, typ: ACCESS_TOKEN_TYPE } })
  return (payload) => signer(payload)
}
