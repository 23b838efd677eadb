// API keys: `<prefix>_<lookup>_<secret>`, e.g. `gh_3f9c0a7b12d4e856_<43 base64url chars>`.
// The lookup part (64 random bits, hex) is stored in clear in `api_keys.prefix` to find the row;
// the secret part carries 256 random bits. Only SHA-256 of the whole key is stored: with 256 bits
// of entropy nothing can be guessed, so a slow hash (argon2) would add cost on every request and
// no protection (unlike passwords, which are low-entropy and need a slow hash).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export interface ParsedApiKey {
  /** `<prefix>_<lookup>`: the non-secret part stored in `api_keys.prefix`. */
  lookup: string
  key: string
}

export function generateApiKey (prefix: string): { key: string, lookup: string, hash: string } {
  const lookup = `${prefix}_${randomBytes(8).toString('hex')}`
  const key = `${lookup}_${randomBytes(32).toString('base64url')}`
  return { key, lookup, hash: hashApiKey(key) }
}

/** The stored form: SHA-256 of the whole key, base64url. */
export function hashApiKey (key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('base64url')
}

/** Null unless `key` has the exact shape this server issues (checked before any lookup). */
export function parseApiKey (prefix: string, key: unknown): ParsedApiKey | null {
  if (typeof key !== 'string' || key.length !== prefix.length + 1 + 16 + 1 + 43) return null
  const match = /^([a-z]+_[0-9a-f]{16})_[A-Za-z0-9_-]{43}$/.exec(key)
  if (match === null || !match[1].startsWith(`${prefix}_`)) return null
  return { lookup: match[1], key }
}

/** Constant-time comparison of two stored-form hashes. */
export function sameHash (a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && timingSafeEqual(x, y)
}
