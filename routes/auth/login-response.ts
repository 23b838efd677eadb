// The end of every successful login, whatever proved it (a password, a password and a second
// factor, a passkey): a new session and the login response `{ user, access_token, refresh_token,
// token_type, expires_in }`, delivered through the cookie session (with `"session": "cookie"` the
// refresh token is an HttpOnly cookie instead of a field). And the MFA_REQUIRED answer that a
// correct password gets when the account has a second factor.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { User } from '../../plugins/store/index.ts'
import { ERRORS } from '../../lib/errors.ts'
import { parseRoles } from '../../lib/roles.ts'
import { tokenResponseSchema } from '../../plugins/sessions/index.ts'
import type { DeliveredTokens } from './cookie-session.ts'
import type { MfaChallenge } from '../../plugins/mfa/index.ts'

/** A user as the API shows it: never the password hash. */
export const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    name: { type: ['string', 'null'] },
    roles: { type: 'array', items: { type: 'string' } },
    email_verified: { type: 'boolean' }
  },
  required: ['id', 'email', 'name', 'roles', 'email_verified'],
  additionalProperties: false
} as const

/** With `"session": "cookie"` the refresh token is a cookie, not a field (CONTRACT §9). */
export const tokenWithUserSchema = {
  type: 'object',
  properties: { user: userSchema, ...tokenResponseSchema.properties },
  required: ['user', 'access_token', 'token_type', 'expires_in']
} as const

/** The 401 of a login: INVALID_CREDENTIALS and the like, or MFA_REQUIRED with its `mfa_token`. */
export const loginErrorSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
    mfa_token: { type: 'string', description: 'MFA_REQUIRED only: single use, for POST /auth/mfa/verify' },
    methods: { type: 'array', items: { type: 'string', enum: ['totp', 'recovery_code', 'webauthn'] }, description: 'MFA_REQUIRED only: the second factors the account has' },
    expires_in: { type: 'integer', description: 'MFA_REQUIRED only: seconds the mfa_token lives' }
  },
  required: ['statusCode', 'code', 'error', 'message']
} as const

export interface PublicUser { id: string, email: string, name: string | null, roles: string[], email_verified: boolean }

export function publicUser (user: Pick<User, 'id' | 'email' | 'name' | 'roles' | 'emailVerifiedAt'>): PublicUser {
  return { id: user.id, email: user.email, name: user.name, roles: parseRoles(user.roles), email_verified: user.emailVerifiedAt !== null }
}

export interface LoginContext {
  request?: FastifyRequest
  /** With the request, the answer goes through the cookie session (`"session": "cookie"` in the body). */
  reply?: FastifyReply
  /** RFC 8176 methods the login used. @default ['pwd'] */
  amr?: readonly string[]
  /** OAuth client the session belongs to. @default the built-in public client */
  clientId?: string
}

/** A new session for `user`, answered as the login response. */
export async function loginResponse (fastify: FastifyInstance, user: User, ctx: LoginContext = {}): Promise<{ user: PublicUser } & DeliveredTokens> {
  const tokens = await fastify.sessions.start({ id: user.id, roles: parseRoles(user.roles), tokenVersion: user.tokenVersion }, { request: ctx.request, amr: ctx.amr, clientId: ctx.clientId })
  const delivered = ctx.request !== undefined && ctx.reply !== undefined && fastify.hasDecorator('cookieSession')
    ? await fastify.cookieSession.deliver(ctx.request, ctx.reply, tokens)
    : tokens
  return { user: publicUser(user), ...delivered }
}

/** After a correct password: the second-factor challenge when the account has a factor, else null. */
export async function secondFactorChallenge (fastify: FastifyInstance, user: User, clientId: string): Promise<MfaChallenge | null> {
  if (!fastify.hasDecorator('mfa')) return null
  return await fastify.mfa.challenge(user, clientId)
}

/** Answers 401 MFA_REQUIRED with the challenge (no tokens). */
export function sendMfaRequired (reply: FastifyReply, challenge: MfaChallenge): FastifyReply {
  return reply.code(401).header('cache-control', 'no-store').send({
    statusCode: 401,
    code: 'MFA_REQUIRED',
    error: 'Unauthorized',
    message: ERRORS.MFA_REQUIRED.message,
    mfa_token: challenge.mfaToken,
    methods: challenge.methods,
    expires_in: challenge.expiresIn
  })
}
