// The opaque refresh token: `<familyId>.<secret>`, where the secret is 32 CSPRNG bytes in
// base64url (43 characters). Only its SHA-256 is stored (RFC 6819 §5.1.4.1.3); the family id
// prefix lets the rate limiter key refreshes per session without a database read.
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'

export const SECRET_BYTES = 32
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
const TOKEN_PATTERN = new RegExp(`^(${UUID})\\.([A-Za-z0-9_-]{43})$`)

/** Longest string accepted where a refresh token is expected (a uuid, a dot, 43 characters). */
export const REFRESH_TOKEN_LENGTH = 36 + 1 + 43
/** Schema cap on request fields that carry a refresh token: generous, but far below a 10 KB probe. */
export const REFRESH_TOKEN_MAX_LENGTH = 512

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

/** The family id of a well-formed token, or null (malformed strings never reach the database). */
export function parseRefreshToken (token: unknown): { familyId: string } | null {
  if (typeof token !== 'string' || token.length !== REFRESH_TOKEN_LENGTH) return null
  const match = TOKEN_PATTERN.exec(token)
  return match === null ? null : { familyId: match[1] }
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
