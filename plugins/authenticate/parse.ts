// Parsing of the Authorization header (RFC 7235 §2.1, RFC 6750 §2.1, RFC 7617 §2), as plain
// functions. Scheme names are case-insensitive; the credentials follow one or more spaces.
import { gatehouseError, type GatehouseError } from '../../lib/errors.ts'
import type { AuthScheme } from '../../lib/auth-user.ts'

export const AUTH_SCHEMES: readonly AuthScheme[] = ['bearer', 'basic', 'apikey']
/** Bearer tokens larger than this are refused before any decoding (RFC 8725 §3). */
export const MAX_BEARER_LENGTH = 8 * 1024
/** token68 of RFC 7235 §2.1 (base64, base64url and the like, with optional trailing '='). */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
/** Basic credentials are at most an email and a password policy's longest password. */
const MAX_BASIC_LENGTH = 4 * 1024

export interface ParsedAuthorization {
  scheme: AuthScheme
  credentials: string
}

export function malformed (message: string): GatehouseError {
  return gatehouseError('MALFORMED_AUTHORIZATION', message)
}

/** Splits `<scheme> <credentials>`; unknown schemes and empty credentials are malformed. */
export function parseAuthorization (header: string): ParsedAuthorization {
  const space = header.indexOf(' ')
  if (space <= 0) throw malformed('The Authorization header must be "<scheme> <credentials>"')
  const name = header.slice(0, space).toLowerCase()
  let start = space + 1
  while (header.charCodeAt(start) === 32) start++
  const credentials = header.slice(start)
  if (credentials === '') throw malformed('The Authorization header must be "<scheme> <credentials>"')
  let scheme: AuthScheme
  if (name === 'bearer') scheme = 'bearer'
  else if (name === 'basic') scheme = 'basic'
  else if (name === 'apikey') scheme = 'apikey'
  else throw malformed('The Authorization scheme is not supported: use Bearer, Basic or ApiKey')
  // Bearer tokens get the stricter JWS shape check of their verifier (a 401, RFC 6750 §3.1).
  if (scheme === 'apikey' && !TOKEN68.test(credentials)) throw malformed('The Authorization credentials contain characters a token cannot have')
  return { scheme, credentials }
}

/** RFC 7617 §2: base64 of `user-id ":" password`, UTF-8 (§2.1). */
export function decodeBasic (credentials: string): { email: string, password: string } {
  if (credentials.length > MAX_BASIC_LENGTH || !BASE64.test(credentials)) throw malformed('The Basic credentials are not valid base64')
  let decoded: string
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(credentials, 'base64'))
  } catch {
    throw malformed('The Basic credentials are not valid UTF-8')
  }
  const colon = decoded.indexOf(':')
  // The user-id is an email address here, so it cannot be empty.
  if (colon <= 0) throw malformed('The Basic credentials must be "email:password"')
  return { email: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/**
 * True when the request carries more than one Authorization header. Node keeps only the first
 * (`request.headers.authorization`), so a second one, which an intermediary may read instead,
 * would otherwise be silently ignored: such a request is MALFORMED_AUTHORIZATION (CONTRACT §14).
 */
export function hasDuplicateAuthorization (rawHeaders: readonly string[]): boolean {
  let seen = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]
    if (name.length === 13 && name.toLowerCase() === 'authorization' && ++seen > 1) return true
  }
  return false
}
