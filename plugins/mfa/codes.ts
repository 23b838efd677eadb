// The random, opaque values of MFA: recovery codes and mfa_tokens. Only their SHA-256 is stored;
// both carry enough entropy (80 and 256 bits) that a fast hash is safe, as for refresh tokens.
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'

export const RECOVERY_CODE_COUNT = 10
/** Crockford's base32 alphabet, lower case: no i, l, o, u to misread. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const RECOVERY_CODE_LENGTH = 16 // 16 x 5 bits = 80 bits
const MFA_TOKEN_PREFIX = 'mfa_'

export function sha256 (value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url')
}

/** A recovery code as shown: four groups of four (`7k2m-9qxd-...`). */
export function newRecoveryCode (): string {
  let code = ''
  for (let i = 0; i < RECOVERY_CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)]
  return code.match(/.{4}/g)!.join('-')
}

/**
 * What a typed recovery code means: case, spaces and dashes do not matter, and the letters
 * Crockford's base32 leaves out read as the digits they look like. Null when it cannot be one.
 */
export function normalizeRecoveryCode (input: unknown): string | null {
  if (typeof input !== 'string' || input.length > 64) return null
  const compact = input.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0')
  if (compact.length !== RECOVERY_CODE_LENGTH) return null
  for (const ch of compact) if (!ALPHABET.includes(ch)) return null
  return compact
}

export function hashRecoveryCode (normalized: string): string {
  return sha256(`recovery:${normalized}`)
}

export function newMfaToken (): string {
  return MFA_TOKEN_PREFIX + randomBytes(32).toString('base64url')
}

/** Null for anything that is not shaped like an mfa_token (never looked up). */
export function hashMfaToken (token: unknown): string | null {
  if (typeof token !== 'string' || token.length !== MFA_TOKEN_PREFIX.length + 43 || !token.startsWith(MFA_TOKEN_PREFIX)) return null
  if (!/^[A-Za-z0-9_-]+$/.test(token.slice(MFA_TOKEN_PREFIX.length))) return null
  return sha256(token)
}

export function sameString (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
