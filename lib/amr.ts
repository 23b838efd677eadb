// Authentication method references (RFC 8176) carried in the `amr` claim, and the one rule that
// decides whether a principal authenticated with more than one factor (step-up, RFC 9470).
import type { AuthUser } from './auth-user.ts'

/** A password alone. */
export const AMR_PASSWORD: readonly string[] = Object.freeze(['pwd'])
/** A password, then a TOTP code or a recovery code. */
export const AMR_PASSWORD_OTP: readonly string[] = Object.freeze(['pwd', 'otp', 'mfa'])

/** A passkey: `hwk` + `user` (presence); with user verification the passkey is two factors in one. */
export function passkeyAmr (userVerified: boolean, afterPassword = false): string[] {
  const amr = afterPassword ? ['pwd', 'hwk', 'user'] : ['hwk', 'user']
  if (userVerified || afterPassword) amr.push('mfa')
  return amr
}

// RFC 8176 §2 values by factor kind: something you know, have, are.
const KNOWLEDGE = new Set(['pwd', 'pin', 'kba'])
const POSSESSION = new Set(['hwk', 'swk', 'otp', 'sms', 'tel', 'sc'])
const INHERENCE = new Set(['fpt', 'face', 'iris', 'retina', 'vbm', 'bio'])

/** A token's `amr` as a list of strings; anything else is no information. */
export function amrOf (claims: Record<string, unknown> | undefined): string[] {
  const amr = claims?.amr
  return Array.isArray(amr) ? amr.filter((v): v is string => typeof v === 'string') : []
}

/**
 * True when `amr` says `mfa`, or names methods of two different kinds (e.g. `pwd` + `otp`, as
 * some providers send without `mfa`), or `acr` is one of `mfaAcrValues`.
 */
export function isMultiFactor (amr: readonly string[], acr?: unknown, mfaAcrValues: readonly string[] = []): boolean {
  if (amr.includes('mfa')) return true
  const kinds = [KNOWLEDGE, POSSESSION, INHERENCE].filter((kind) => amr.some((m) => kind.has(m))).length
  if (kinds >= 2) return true
  return typeof acr === 'string' && mfaAcrValues.includes(acr)
}

/** Whether a principal authenticated with several factors: from its bearer token's claims only. */
export function userHasMfa (user: AuthUser | null | undefined, mfaAcrValues: readonly string[] = []): boolean {
  if (user === null || user === undefined || user.scheme !== 'bearer' || user.claims === undefined) return false
  return isMultiFactor(amrOf(user.claims), user.claims.acr, mfaAcrValues)
}

/**
 * When the user last really authenticated, from a bearer token's `auth_time` claim (OIDC Core
 * §2, RFC 9470 §4; seconds since the epoch). A refresh does not move it. Null when the token
 * says nothing usable: such a token is never "recent".
 */
export function authTimeOf (user: AuthUser | null | undefined): number | null {
  if (user === null || user === undefined || user.scheme !== 'bearer') return null
  const authTime = user.claims?.auth_time
  return typeof authTime === 'number' && Number.isSafeInteger(authTime) && authTime >= 0 ? authTime : null
}

/**
 * Whether `user` holds a bearer token from a multi-factor authentication at most `maxAgeSeconds`
 * old at `nowMs` (RFC 9470 `max_age`): what a sensitive action accepts instead of a current code.
 */
export function isRecentMultiFactor (user: AuthUser | null | undefined, nowMs: number, maxAgeSeconds: number): boolean {
  const authTime = authTimeOf(user)
  if (authTime === null || !userHasMfa(user)) return false
  return Math.floor(nowMs / 1000) - authTime <= maxAgeSeconds
}
