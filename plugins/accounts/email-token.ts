// Tokens sent by mail (lib/mail-token.ts: 256 bits, stored only as their SHA-256). Each one names
// its purpose and is bound to the account state it was issued for (stateHash): a reset token
// stops working when the password or the address changed by any other way.
import { createHash } from 'node:crypto'
import { MAIL_TOKEN_MAX_LENGTH, hashMailToken, isMailTokenShape, newMailToken } from '../../lib/mail-token.ts'

export const EMAIL_TOKEN_PURPOSES = ['verify_email', 'change_email', 'reset_password'] as const
export type EmailTokenPurpose = typeof EMAIL_TOKEN_PURPOSES[number]

export const EMAIL_TOKEN_MAX_LENGTH = MAIL_TOKEN_MAX_LENGTH
export { newMailToken as newEmailToken, isMailTokenShape as isEmailTokenShape, hashMailToken as hashEmailToken }

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
