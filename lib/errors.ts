// The one error map of Gatehouse. Every code here is documented in docs/errors.md and
// test/errors.test.ts fails when the two drift apart. Messages are generic on purpose:
// the cause of an error goes to the log, never a token, a password, a hash or a key.
import createError, { type FastifyErrorConstructor } from '@fastify/error'

export const ERRORS = {
  MALFORMED_AUTHORIZATION: { status: 400, message: 'The Authorization header is malformed' },
  MISSING_AUTHORIZATION: { status: 401, message: 'Authentication is required' },
  INVALID_TOKEN: { status: 401, message: 'The access token is invalid' },
  INVALID_SIGNATURE: { status: 401, message: 'The token signature does not verify' },
  TOKEN_EXPIRED: { status: 401, message: 'The access token has expired' },
  TOKEN_NOT_YET_VALID: { status: 401, message: 'The access token is not valid yet' },
  UNTRUSTED_ISSUER: { status: 401, message: 'The token issuer is not trusted' },
  MISSING_CLAIM: { status: 401, message: 'The token lacks a required claim' },
  TOKEN_REVOKED: { status: 401, message: 'The token has been revoked' },
  USER_NOT_FOUND: { status: 401, message: 'The account no longer exists' },
  ACCOUNT_DISABLED: { status: 401, message: 'The account is disabled' },
  INVALID_CREDENTIALS: { status: 401, message: 'Invalid email or password' },
  INVALID_REFRESH_TOKEN: { status: 401, message: 'The refresh token is invalid, expired or revoked' },
  REFRESH_TOKEN_REUSED: { status: 401, message: 'The refresh token was already used; the session has been revoked' },
  MFA_REQUIRED: { status: 401, message: 'A second factor is required to complete the login' },
  INVALID_LOGIN_CODE: { status: 401, message: 'The login code is invalid, expired or already used' },
  INVALID_MFA_CODE: { status: 401, message: 'The code or passkey answer is wrong, used or expired' },
  INSUFFICIENT_AUTHENTICATION: { status: 401, message: 'This requires an authentication with a second factor' },
  FORBIDDEN: { status: 403, message: 'You do not have permission to do this' },
  ORIGIN_NOT_ALLOWED: { status: 403, message: 'Requests authenticated by the session cookie must come from an allowed origin' },
  EMAIL_NOT_VERIFIED: { status: 403, message: 'The email address of this account is not verified yet' },
  INVALID_EMAIL_TOKEN: { status: 400, message: 'The link is invalid, expired or already used' },
  INVALID_INVITATION: { status: 400, message: 'The invitation is invalid, expired, revoked or already used' },
  INVALID_REDIRECT_URI: { status: 400, message: 'The redirect_uri is not one of the allowed app URLs' },
  INVALID_PROVIDER_STATE: { status: 400, message: 'The sign-in flow is unknown, expired, already used or was started in another browser' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  WEAK_PASSWORD: { status: 400, message: 'The password does not meet the password policy' },
  EMAIL_TAKEN: { status: 409, message: 'An account with this email already exists' },
  ACCOUNT_EXISTS: { status: 409, message: 'An account with this email exists and cannot be linked automatically: sign in and link the provider' },
  CONFLICT: { status: 409, message: 'The request conflicts with the current state' },
  INVALID_ROLE: { status: 400, message: 'The role is not a role of the hierarchy' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; try again later' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error' },
  JWKS_UNAVAILABLE: { status: 503, message: 'The keys of the token issuer cannot be fetched right now' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'The service is temporarily unavailable' }
} as const satisfies Record<string, { status: number, message: string }>

export type ErrorCode = keyof typeof ERRORS

export interface GatehouseError extends Error {
  code: ErrorCode
  statusCode: number
  headers?: Record<string, string>
}

const constructors = Object.fromEntries(
  Object.entries(ERRORS).map(([code, spec]) => [code, createError(code, '%s', spec.status)])
) as Record<ErrorCode, FastifyErrorConstructor>

export interface ErrorOptions {
  /** Response headers the error carries (Fastify's error handler sets them). */
  headers?: Record<string, string>
  /** The internal cause: logged, never sent to the client. */
  cause?: unknown
}

/** Creates the coded error for `code`, with the map's generic message unless one is given. */
export function gatehouseError (code: ErrorCode, message?: string, options?: ErrorOptions): GatehouseError {
  const args: unknown[] = [message ?? ERRORS[code].message]
  if (options?.cause !== undefined) args.push({ cause: options.cause })
  const err = new constructors[code](...args) as GatehouseError
  if (options?.headers !== undefined) err.headers = options.headers
  return err
}

export function isGatehouseError (err: unknown): err is GatehouseError {
  if (!(err instanceof Error)) return false
  const { code, statusCode } = err as Partial<GatehouseError>
  return typeof code === 'string' && Object.hasOwn(ERRORS, code) && statusCode === ERRORS[code].status
}

export const REALM = 'gatehouse'

/** RFC 6750 §3: a 401 about a presented bearer token carries `error="invalid_token"`. */
export function bearerError (code: ErrorCode, message?: string, cause?: unknown): GatehouseError {
  return gatehouseError(code, message, { headers: { 'www-authenticate': 'Bearer error="invalid_token"' }, cause })
}

/** RFC 7617: a failed Basic authentication carries the realm challenge. */
export function basicError (code: ErrorCode, message?: string): GatehouseError {
  return gatehouseError(code, message, { headers: { 'www-authenticate': `Basic realm="${REALM}"` } })
}

/** RFC 6750 §3.1: no credentials at all: a challenge without an error code. */
export function missingAuthorization (): GatehouseError {
  return gatehouseError('MISSING_AUTHORIZATION', undefined, { headers: { 'www-authenticate': `Bearer realm="${REALM}"` } })
}

/**
 * RFC 9470 §3: the token is valid but its authentication is too weak, or too old, for this
 * resource. With `maxAge` the challenge carries `max_age` (seconds): an authentication at most
 * that old, with a second factor, is what would do.
 */
export function insufficientAuthentication (message?: string, options: { maxAge?: number } = {}): GatehouseError {
  const challenge = options.maxAge === undefined
    ? 'Bearer error="insufficient_user_authentication", error_description="A second factor is required"'
    : `Bearer error="insufficient_user_authentication", error_description="A recent authentication with a second factor is required", max_age="${options.maxAge}"`
  return gatehouseError('INSUFFICIENT_AUTHENTICATION', message, { headers: { 'www-authenticate': challenge } })
}

/** 503 with a Retry-After, for an infrastructure fault (database, Redis, a full hashing queue). */
export function serviceUnavailable (cause?: unknown, retryAfterSeconds = 1): GatehouseError {
  return gatehouseError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': String(retryAfterSeconds) }, cause })
}
