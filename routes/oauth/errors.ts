// OAuth error responses: RFC 6749 §5.2 `{ error, error_description }`, never Fastify's shape.
// Gatehouse's coded errors are mapped here so /oauth/* speaks OAuth whatever goes wrong below it.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isGatehouseError, REALM } from '../../lib/errors.ts'
import { translatePrismaError } from '../../lib/database-errors.ts'

export type OAuthErrorCode =
  | 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client'
  | 'unsupported_grant_type' | 'invalid_scope' | 'unsupported_token_type'
  | 'temporarily_unavailable' | 'server_error'

export class OAuthError extends Error {
  override name = 'OAuthError'
  readonly error: OAuthErrorCode
  readonly statusCode: number
  readonly headers: Record<string, string>
  constructor (error: OAuthErrorCode, description: string, statusCode = 400, headers: Record<string, string> = {}) {
    super(description)
    this.error = error
    this.statusCode = statusCode
    this.headers = headers
  }
}

/** RFC 6749 §5.2: 401 with a challenge for the scheme the client used (or could use). */
export function invalidClient (description = 'Client authentication failed'): OAuthError {
  return new OAuthError('invalid_client', description, 401, { 'www-authenticate': `Basic realm="${REALM}"` })
}

export function invalidRequest (description: string): OAuthError {
  return new OAuthError('invalid_request', description)
}

/** Gatehouse codes that mean "this grant (credentials, refresh token) is not good". */
const GRANT_CODES = new Set([
  'INVALID_REFRESH_TOKEN', 'REFRESH_TOKEN_REUSED', 'INVALID_CREDENTIALS', 'TOKEN_REVOKED',
  'ACCOUNT_DISABLED', 'USER_NOT_FOUND', 'WEAK_PASSWORD', 'EMAIL_NOT_VERIFIED'
])

/** JSON schema of the error body, for the OpenAPI document. */
export const oauthErrorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, error_description: { type: 'string' } },
  required: ['error']
} as const

/** The OAuth error a thrown value stands for. `grantFields`: body fields whose validation failure is a grant error. */
export function toOAuthError (raw: unknown, grantFields: readonly string[] = ['refresh_token']): OAuthError {
  if (raw instanceof OAuthError) return raw
  const err = translatePrismaError(raw) as FastifyError & { headers?: Record<string, string> }
  if (isGatehouseError(err)) {
    if (GRANT_CODES.has(err.code)) return new OAuthError('invalid_grant', err.message)
    if (err.code === 'RATE_LIMITED') return new OAuthError('temporarily_unavailable', err.message, 429, err.headers)
    if (err.statusCode >= 500) return new OAuthError('temporarily_unavailable', err.message, 503, err.headers)
    return new OAuthError('invalid_request', err.message, 400)
  }
  if (Array.isArray(err.validation)) {
    const field = err.validation[0]?.instancePath?.replace(/^\//, '') ?? ''
    if (field !== '' && grantFields.includes(field)) return new OAuthError('invalid_grant', `The ${field} is invalid`)
    return invalidRequest(`Invalid request: ${err.validationContext ?? 'body'}${err.validation[0]?.instancePath ?? ''} ${err.validation[0]?.message ?? 'is invalid'}`)
  }
  const status = err.statusCode ?? 500
  if (status === 429) return new OAuthError('temporarily_unavailable', 'Too many requests; try again later', 429)
  if (status >= 400 && status < 500) return invalidRequest(err.message)
  return new OAuthError('server_error', 'Internal server error', 500)
}

/** setErrorHandler of the /oauth route group. */
export function oauthErrorHandler (raw: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const err = toOAuthError(raw)
  if (err.statusCode >= 500) request.log.error({ err: raw }, 'oauth endpoint failed')
  else request.log.info({ error: err.error }, err.message)
  reply.headers(err.headers)
  reply.code(err.statusCode).send({ error: err.error, error_description: err.message })
}
