// Request fields and rate-limit keys shared by the routes that send mail or take a mailed token
// (routes/auth/email.ts, routes/orgs).
import { createHash } from 'node:crypto'
import { MAIL_TOKEN_MAX_LENGTH } from '../lib/mail-token.ts'

// No control characters: no valid address has them (CONTRACT §14: a 400, never a 500 later).
export const emailField = { type: 'string', minLength: 3, maxLength: 320, pattern: '^\\s*[^\\s@\\u0000-\\u001f\\u007f]+@[^\\s@\\u0000-\\u001f\\u007f]+\\s*$' } as const
export const tokenField = { type: 'string', minLength: 1, maxLength: MAIL_TOKEN_MAX_LENGTH, description: 'The token of the mail\'s link (`?token=`)' } as const

/** Rate-limit keys name a recipient without holding the address itself. */
export function addressKey (normalizedEmail: string): string {
  return `address:${createHash('sha256').update(normalizedEmail).digest('base64url').slice(0, 32)}`
}
