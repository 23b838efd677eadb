// Single-use tokens sent in a mail's link (verification, reset, invitation): 32 CSPRNG bytes
// (256 bits) in base64url, stored only as their SHA-256.
import { createHash, randomBytes } from 'node:crypto'

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/
/** Schema cap for fields that carry such a token: generous, far below a probe of kilobytes. */
export const MAIL_TOKEN_MAX_LENGTH = 512

export function newMailToken (): string {
  return randomBytes(32).toString('base64url')
}

/** True for a string that could be one of our tokens (anything else never reaches the database). */
export function isMailTokenShape (token: unknown): token is string {
  return typeof token === 'string' && TOKEN_PATTERN.test(token)
}

export function hashMailToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}
