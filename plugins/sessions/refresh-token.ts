// The opaque refresh token: `<familyId>.<secret>`, where the secret is 32 CSPRNG bytes in
// base64url (43 characters). Only its SHA-256 is stored (RFC 6819 §5.1.4.1.3); the family id
// prefix lets the rate limiter key refreshes per session without a database read.
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'

export { parseRefreshToken, REFRESH_TOKEN_LENGTH, REFRESH_TOKEN_MAX_LENGTH } from '../../lib/refresh-token.ts'

export const SECRET_BYTES = 32

export function newFamilyId (): string {
  return randomUUID()
}

export function newRefreshToken (familyId: string): string {
  return `${familyId}.${randomBytes(SECRET_BYTES).toString('base64url')}`
}

/**
 * The successor of `previous` when a reuse grace window is enabled: HMAC-SHA256 keyed by the
 * previous token (256 random bits) over the successor's random row id. The server can derive it
 * again from the re-presented previous token (so a client that lost the response gets the same
 * successor, on any instance), while nobody holding only the previous token can compute it.
 */
export function derivedRefreshToken (familyId: string, previous: string, successorId: string): string {
  return `${familyId}.${createHmac('sha256', previous).update(`gatehouse-refresh-successor:${successorId}`).digest('base64url')}`
}

/** SHA-256 of the whole token string, base64url: what refresh_tokens.token_hash holds. */
export function hashRefreshToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

export function sameHash (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
