// Tokens sent by mail: 32 CSPRNG bytes (256 bits) in base64url, stored only as their SHA-256.
// Each one names its purpose and is bound to the account state it was issued for (stateHash):
// a reset token stops working when the password or the address changed by any other way.
import { createHash, randomBytes } from 'node:crypto'

export const EMAIL_TOKEN_PURPOSES = ['verify_email', 'change_email', 'reset_password'] as const
export type EmailTokenPurpose = typeof EMAIL_TOKEN_PURPOSES[number]

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/
/** Schema cap for fields that carry such a token: generous, far below a probe of kilobytes. */
export const EMAIL_TOKEN_MAX_LENGTH = 512

export function newEmailToken (): string {
  return randomBytes(32).toString('base64url')
}

/** True for a string that could be one of our tokens (anything else never reaches the database). */
export function isEmailTokenShape (token: unknown): token is string {
  return typeof token === 'string' && TOKEN_PATTERN.test(token)
}

export function hashEmailToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

export interface AccountState {
  id: string
  email: string
  passwordHash: string | null
}

/**
 * What a token of `purpose` depends on: the address for a verification; the address and the
 * password for an email change and a reset. A different state later means the token is stale.
 */
export function stateHash (purpose: EmailTokenPurpose, user: AccountState): string {
  const parts = purpose === 'verify_email'
    ? [purpose, user.id, user.email]
    : [purpose, user.id, user.email, user.passwordHash ?? '']
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url')
}
