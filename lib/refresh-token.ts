// The format of Gatehouse's opaque refresh token: `<familyId>.<secret>`, a uuid family id and 32
// CSPRNG bytes in base64url (43 characters). Read here without crypto and without the database,
// so the rate limiter can key refreshes per session and sessions can refuse malformed strings
// before any lookup. Minting and hashing live in plugins/sessions/refresh-token.ts.

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
const TOKEN_PATTERN = new RegExp(`^(${UUID})\\.[A-Za-z0-9_-]{43}$`)

/** Length of every refresh token (a uuid, a dot, 43 characters). */
export const REFRESH_TOKEN_LENGTH = 36 + 1 + 43
/** Schema cap on request fields that carry a refresh token: generous, but far below a 10 KB probe. */
export const REFRESH_TOKEN_MAX_LENGTH = 512

/** The family id of a well-formed token, or null. Never returns any part of the secret. */
export function parseRefreshToken (token: unknown): { familyId: string } | null {
  if (typeof token !== 'string' || token.length !== REFRESH_TOKEN_LENGTH) return null
  const match = TOKEN_PATTERN.exec(token)
  return match === null ? null : { familyId: match[1] }
}
