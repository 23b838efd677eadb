// The claim rules of an external token whose signature holds, as plain functions, and the
// AuthUser it becomes. The rules are the ones fast-jwt applied when it verified these tokens
// (same order, same codes), then ours:
//   iss, sub, exp and aud present (MISSING_CLAIM); nbf and exp numbers, checked with the issuer's
//   clock tolerance; aud a string or an array of strings that contains a configured audience;
//   then (checkTokenRules) sub a non-empty string, exp finite, iat a finite number not in the
//   future, the lifetime within maxTokenLifetime, and the entry's requiredClaims as own properties.
import type { AuthUser } from '../../lib/auth-user.ts'
import { bearerError, type GatehouseError } from '../../lib/errors.ts'
import { readClaim } from '../../lib/jwt.ts'
import type { ResolvedIssuer } from './options.ts'

const REQUIRED = ['iss', 'sub', 'exp', 'aud'] as const

function invalid (): GatehouseError {
  return bearerError('INVALID_TOKEN')
}

/** A NumericDate (RFC 7519 §2) in seconds: a number, never an array. */
function date (value: unknown): number {
  if (typeof value !== 'number') throw invalid()
  return value
}

/**
 * The registered claims of a payload whose signature holds, at `now` (epoch ms): presence,
 * nbf and exp with the tolerance, and the audience. Throws the CONTRACT §4 error.
 */
export function checkRegisteredClaims (payload: Record<string, unknown>, issuer: ResolvedIssuer, now: number): void {
  for (const claim of REQUIRED) if (!(claim in payload)) throw bearerError('MISSING_CLAIM')
  const tolerance = issuer.clockToleranceSeconds * 1000
  if ('nbf' in payload && now < date(payload.nbf) * 1000 - tolerance) throw bearerError('TOKEN_NOT_YET_VALID')
  if (now > date(payload.exp) * 1000 + tolerance) throw bearerError('TOKEN_EXPIRED')
  const aud = payload.aud
  const audiences = Array.isArray(aud) ? aud : [aud]
  for (const value of audiences) if (typeof value !== 'string') throw invalid()
  if (!audiences.some((value) => issuer.audiences.includes(value as string))) throw invalid()
  if (payload.iss !== issuer.issuer) throw bearerError('UNTRUSTED_ISSUER')
}

/**
 * The rules fast-jwt does not know, after the registered claims (and the typ pin): the shape of
 * sub, exp and iat, iat not in the future, the lifetime, and the entry's own required claims.
 */
export function checkTokenRules (claims: Record<string, unknown>, issuer: ResolvedIssuer, now: number): void {
  const { sub, exp, iat } = claims
  if (typeof sub !== 'string' || sub === '') throw invalid()
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalid()
  if (iat !== undefined) {
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid()
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
}

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

/** The AuthUser of verified claims (a new object each time: callers may add to it). */
export function toUser (issuer: ResolvedIssuer, claims: Record<string, unknown>, roles: string[]): AuthUser {
  const sub = claims.sub as string
  const user: AuthUser = { id: sub, sub, iss: issuer.issuer, roles, scheme: 'bearer', external: true, claims }
  if (issuer.adminApi) user.adminApi = true
  if (typeof claims.client_id === 'string') user.clientId = claims.client_id
  return user
}
