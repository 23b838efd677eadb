// Defense in depth for audit details: callers must never pass a secret, and if one slips
// through anyway it is dropped here before it reaches the database.
//  - any key that names a secret (password, token, secret, key, hash, authorization, cookie,
//    credential, ...) is removed, unless it is plainly an identifier or a label
//    (`apiKeyId`, `keyName`, `tokenType`, `kid`);
//  - any string value shaped like a credential (a JWT/JWS, a PHC hash, a Basic/Bearer/ApiKey
//    header value, a PEM block, a refresh token `<uuid>.<43 chars>`) is replaced by a marker.
// Output is bounded in depth, keys, array length and string length.

const SECRET_KEY = /pass(word|wd|phrase)?|pwd|secret|token|hash|authori[sz]ation|cookie|credential|private|salt|otp|(^|[^a-z])key|[a-z]Key|api_?key|signature/i
const HARMLESS_KEY = /(id|ids|count|type|prefix|name|names|at|version|ttl)$/i
const SECRET_VALUE = [
  /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*$/, // JWS / JWT (RFC 7515 compact)
  /\$(argon2(id|i|d)|2[aby]|scrypt|pbkdf2)[$-]/, // PHC / bcrypt hashes
  /^(bearer|basic|apikey)\s+\S/i, // Authorization header values (RFC 7235)
  /-----BEGIN [A-Z ]*(PRIVATE|PUBLIC)? ?KEY-----/,
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/i // refresh token
]

export const REDACTED = '[redacted]'
const MAX_DEPTH = 4
const MAX_KEYS = 50
const MAX_ITEMS = 50
const MAX_STRING = 500

export function isSecretKey (key: string): boolean {
  return SECRET_KEY.test(key) && !HARMLESS_KEY.test(key)
}

export function looksLikeSecret (value: string): boolean {
  return SECRET_VALUE.some((re) => re.test(value))
}

function clean (value: unknown, depth: number): unknown {
  if (value === null || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : null
  if (typeof value === 'string') return looksLikeSecret(value) ? REDACTED : value.length > MAX_STRING ? value.slice(0, MAX_STRING) + '…' : value
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString()
  if (depth >= MAX_DEPTH) return undefined
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((v) => clean(v, depth + 1) ?? null)
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).slice(0, MAX_KEYS)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype' || isSecretKey(key)) continue
      const v = clean((value as Record<string, unknown>)[key], depth + 1)
      if (v !== undefined) out[key] = v
    }
    return out
  }
  return undefined
}

/** A copy of `details` with secrets removed; null when nothing is left. */
export function sanitizeDetails (details: unknown): Record<string, unknown> | null {
  if (details === null || details === undefined || typeof details !== 'object' || Array.isArray(details)) return null
  const out = clean(details, 0) as Record<string, unknown>
  return Object.keys(out).length === 0 ? null : out
}

/** A short free-text field (reason): cut to length and blanked when it looks like a credential. */
export function sanitizeText (value: unknown, max = 200): string | null {
  if (typeof value !== 'string' || value === '') return null
  if (looksLikeSecret(value)) return REDACTED
  return value.length > max ? value.slice(0, max) : value
}
