// Account routes under /auth (registered by routes/auth/index.ts): register, login, me, password
// change and API keys. Passwords are checked by fastify.credentials, tokens come from
// fastify.sessions. The password fields carry no length rules in their schemas: the policy
// answers WEAK_PASSWORD (CONTRACT §4), never a validation error.
import type { FastifyInstance } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import { loginErrorSchema, loginResponse, publicUser, secondFactorChallenge, sendMfaRequired, tokenWithUserSchema, userSchema } from './login-response.ts'
import { tokenResponseSchema } from '../../plugins/sessions/index.ts'
import { sessionModeField } from './cookie-session.ts'
import { requireStepUp, stepUp, stepUpProperties, type StepUpBody } from './step-up.ts'
import { ownBearerUser } from './caller.ts'
import { createProfileReader } from './profile.ts'

const errorResponse = { $ref: 'GatehouseError#' }

/** Register: the tokens are left out while REQUIRE_VERIFIED_EMAIL waits for the address to be verified. */
const registeredSchema = {
  type: 'object',
  properties: { user: userSchema, ...tokenResponseSchema.properties },
  required: ['user']
} as const

// A loose shape (surrounding spaces allowed: they are trimmed); the stored form is normalised.
const emailField = { type: 'string', minLength: 3, maxLength: 320, pattern: '^\\s*[^\\s@]+@[^\\s@]+\\s*$' } as const
const passwordField = { type: 'string' } as const

const registerSchema = {
  tags: ['auth'],
  summary: 'Create an account and start a session',
  description: 'The email is trimmed, NFKC-normalised and lower-cased. Password policy: at least 12 characters (Unicode code points after NFKC), at most 1024 bytes, not on the list of common or breached passwords; no composition rules. Violations answer WEAK_PASSWORD naming the rule. A verification mail goes to the address. With REQUIRE_VERIFIED_EMAIL the answer carries the user only: sign in once the address is verified.',
  security: [],
  body: {
    type: 'object',
    properties: { email: emailField, password: passwordField, name: { type: 'string', minLength: 1, maxLength: 200 }, session: sessionModeField },
    required: ['email', 'password'],
    additionalProperties: false
  },
  response: { 201: registeredSchema, 400: errorResponse, 409: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const loginSchema = {
  tags: ['auth'],
  summary: 'Log in with email and password',
  description: 'A wrong password and an unknown email answer the same INVALID_CREDENTIALS in the same time. A disabled or deleted account (and, with REQUIRE_VERIFIED_EMAIL, an unverified address: EMAIL_NOT_VERIFIED) is told so only after a correct password. When the account has a second factor, a correct password answers 401 MFA_REQUIRED with an `mfa_token` (and no tokens): complete the login at POST /auth/mfa/verify. `"session": "cookie"` sets the refresh token as an HttpOnly cookie instead of returning it.',
  security: [],
  body: {
    type: 'object',
    properties: { email: { type: 'string', maxLength: 320 }, password: passwordField, session: sessionModeField },
    required: ['email', 'password'],
    additionalProperties: false
  },
  response: { 200: tokenWithUserSchema, 400: errorResponse, 401: loginErrorSchema, 403: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const meSchema = {
  tags: ['auth'],
  summary: 'The authenticated user, with their organizations',
  security: [{ bearerAuth: [] }, { basicAuth: [] }, { apiKey: [] }],
  response: {
    200: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        email: { type: ['string', 'null'] },
        name: { type: ['string', 'null'] },
        roles: { type: 'array', items: { type: 'string' } },
        email_verified: { type: 'boolean' },
        mfa: {
          type: 'object',
          properties: { totp: { type: 'boolean' }, passkeys: { type: 'integer' } },
          required: ['totp', 'passkeys'],
          additionalProperties: false
        },
        orgs: {
          type: 'array',
          items: {
            type: 'object',
            properties: { id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } },
            required: ['id', 'name', 'role'],
            additionalProperties: false
          }
        }
,
        providers: {
          type: 'array',
          description: 'The external providers linked to the account (sign-in with a provider)',
          items: {
            type: 'object',
            properties: { id: { type: 'string' }, name: { type: 'string' }, email: { type: ['string', 'null'] }, linked_at: { type: 'string', format: 'date-time' } },
            required: ['id', 'name', 'email', 'linked_at'],
            additionalProperties: false
          }
        }
      },
      required: ['id', 'email', 'name', 'roles', 'email_verified', 'mfa', 'orgs'],
      additionalProperties: false
    },
    400: errorResponse,
    401: errorResponse,
    503: errorResponse
  }
} as const

const passwordSchema = {
  tags: ['auth'],
  summary: 'Change the password; every other session is revoked',
  description: 'Requires the current password. The new one must meet the password policy. Sessions other than the caller\'s are revoked and cached HTTP Basic verifications are dropped. An account with a second factor also needs a step-up: a current TOTP `code` or a `recovery_code`, or an access token from a multi-factor login in the last few minutes (STEP_UP_MAX_AGE); else 401 INSUFFICIENT_AUTHENTICATION before the password is even checked.',
  security: [{ bearerAuth: [] }],
  body: {
    type: 'object',
    properties: { current_password: passwordField, new_password: passwordField, ...stepUpProperties },
    required: ['current_password', 'new_password'],
    additionalProperties: false
  },
  response: { 204: { type: 'null', description: 'Password changed' }, 400: errorResponse, 401: errorResponse, 403: errorResponse, 409: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

/** One API key as listed: never the key itself or its hash. */
export const apiKeyInfoSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string', description: 'The non-secret first part of the key, to recognise it' },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { type: 'string', format: 'date-time', nullable: true },
    expires_at: { type: 'string', format: 'date-time', nullable: true }
  },
  required: ['id', 'name', 'prefix', 'created_at', 'last_used_at', 'expires_at'],
  additionalProperties: false
} as const

/** The listed form of an API key (snake_case, as the rest of the token API). */
export function apiKeyInfo (key: { id: string, name: string, prefix: string, createdAt: Date, lastUsedAt: Date | null, expiresAt: Date | null }) {
  return { id: key.id, name: key.name, prefix: key.prefix, created_at: key.createdAt.toISOString(), last_used_at: key.lastUsedAt?.toISOString() ?? null, expires_at: key.expiresAt?.toISOString() ?? null }
}

const MAX_API_KEY_LIFETIME_S = 2 * 366 * 86_400

const createKeySchema = {
  tags: ['auth'],
  summary: 'Create an API key (the key is shown only in this response)',
  description: 'Use it as `Authorization: ApiKey <key>`. Only its SHA-256 is stored. With `expires_in` (seconds) the key stops working after that long; without it, it works until revoked. Logout-all, a password change and a password reset revoke every key. A key is a password-free credential that outlives the session, so an account with a second factor needs a step-up: a current `code` or a `recovery_code`, or an access token from a multi-factor login in the last few minutes (STEP_UP_MAX_AGE); else 401 INSUFFICIENT_AUTHENTICATION.',
  security: [{ bearerAuth: [] }],
  body: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 100 },
      expires_in: { type: 'integer', minimum: 60, maximum: MAX_API_KEY_LIFETIME_S, description: 'Lifetime in seconds (60 s to 2 years)' },
      ...stepUpProperties
    },
    required: ['name'],
    additionalProperties: false
  },
  response: {
    201: {
      type: 'object',
      properties: { id: { type: 'string' }, name: { type: 'string' }, key: { type: 'string' }, expires_at: { type: 'string', format: 'date-time', nullable: true } },
      required: ['id', 'name', 'key', 'expires_at'],
      additionalProperties: false
    },
    400: errorResponse,
    401: errorResponse,
    403: errorResponse,
    503: errorResponse
  }
} as const

const listKeysSchema = {
  tags: ['auth'],
  summary: "The caller's API keys that still work (never the keys themselves)",
  security: [{ bearerAuth: [] }],
  response: { 200: { type: 'array', items: apiKeyInfoSchema }, 401: errorResponse, 403: errorResponse, 503: errorResponse }
} as const

const revokeKeySchema = {
  tags: ['auth'],
  summary: 'Revoke one of your API keys',
  security: [{ bearerAuth: [] }],
  params: {
    type: 'object',
    properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
    required: ['id']
  },
  response: { 204: { type: 'null', description: 'Revoked' }, 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 503: errorResponse }
} as const

export default async function accountRoutes (fastify: FastifyInstance): Promise<void> {
  const readProfile = createProfileReader(fastify.store.prisma, fastify.store.provider, fastify.store.sqlite ?? fastify.store.postgres)

  fastify.post('/register', { schema: registerSchema, config: { rateLimitClass: 'register' } }, async (request, reply) => {
    const body = request.body as { email: string, password: string, name?: string }
    const user = await fastify.credentials.register(body, request)
    reply.code(201)
    if (fastify.hasDecorator('accounts')) {
      fastify.accounts.sendVerification(user.id, 'register', request)
      if (fastify.accounts.options.requireVerifiedEmail) return { user: publicUser(user) }
    }
    return await loginResponse(fastify, user, { request, reply })
  })

  fastify.post('/login', { schema: loginSchema, config: { rateLimitClass: 'login' } }, async (request, reply) => {
    const { email, password } = request.body as { email: string, password: string }
    // REQUIRE_VERIFIED_EMAIL (gatehouse-accounts) is applied inside, after a correct password.
    const user = await fastify.credentials.login(email, password, request)
    const challenge = await secondFactorChallenge(fastify, user, '')
    if (challenge !== null) return sendMfaRequired(reply, challenge)
    return await loginResponse(fastify, user, { request, reply })
  })

  fastify.get('/me', { schema: meSchema, onRequest: fastify.authenticate }, async (request) => {
    const principal = request.user
    if (principal === null || principal === undefined) throw missingAuthorization()
    if (principal.external) {
      // A trusted issuer's user need not exist here: answer from the verified token.
      const claims = principal.claims ?? {}
      return {
        id: principal.id,
        email: typeof claims.email === 'string' ? claims.email : principal.email ?? null,
        name: typeof claims.name === 'string' ? claims.name : null,
        roles: principal.roles,
        email_verified: claims.email_verified === true,
        mfa: { totp: false, passkeys: 0 },
        orgs: [],
        providers: []
      }
    }
    const user = await readProfile(principal.id)
    if (user === null || user.deletedAt !== null) throw gatehouseError('USER_NOT_FOUND')
    // A second factor counts only where its plugin is registered, as the login step sees it.
    const mfa = fastify.hasDecorator('mfa')
    const passkeys = mfa && fastify.hasDecorator('passkeys') && fastify.passkeys !== null
    return {
      id: user.id,
      email: user.email,
      name: user.name,
      // The current roles from the user state authenticate read, not a token's copy.
      roles: principal.roles,
      email_verified: user.emailVerifiedAt !== null,
      mfa: { totp: mfa && user.totp, passkeys: passkeys ? user.passkeys : 0 },
      orgs: user.orgs
        .map((m) => ({ id: m.id, name: m.name, role: m.role }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      providers: fastify.hasDecorator('providers')
        ? user.identities.map((p) => ({ id: p.providerId, name: fastify.providers.get(p.providerId)?.name ?? p.providerId, email: p.email, linked_at: p.linkedAt.toISOString() }))
        : []
    }
  })

  // Changing credentials needs a session of this server, not a Basic password or an API key.
  fastify.register(async function bearerOnly (scope) {
    const bearer = fastify.createAuthenticate({ schemes: ['bearer'] })
    scope.addHook('onRequest', bearer)

    scope.post('/password', { schema: passwordSchema, config: { rateLimitClass: 'login' } }, async (request, reply) => {
      const caller = ownBearerUser(request)
      const body = request.body as { current_password: string, new_password: string } & StepUpBody
      // The step-up is decided first; a code it was given is checked once the password is right.
      const confirm = await stepUp(fastify, request, caller.id, body, 'password_change')
      const changed = await fastify.credentials.changePassword(caller.id, body.current_password, body.new_password, request, { confirm })
      if (fastify.hasDecorator('mailer')) fastify.mailer.send('passwordChanged', changed.email)
      await fastify.sessions.revokeOthers(caller.id, caller.sid, 'password_change')
      await fastify.credentials.revokeUserApiKeys(caller.id, 'password_change', request)
      await fastify.tokens.userChanged(caller.id)
      reply.code(204).send()
    })

    scope.post('/api-keys', { schema: createKeySchema }, async (request, reply) => {
      const caller = ownBearerUser(request)
      const body = request.body as { name: string, expires_in?: number } & StepUpBody
      const { name, expires_in: expiresIn } = body
      await requireStepUp(fastify, request, caller.id, body, 'api_key_create')
      const created = await fastify.credentials.createApiKey(caller.id, name, request, expiresIn)
      reply.code(201)
      return { id: created.id, name: created.name, key: created.key, expires_at: created.expiresAt?.toISOString() ?? null }
    })

    scope.get('/api-keys', { schema: listKeysSchema }, async (request) => {
      const caller = ownBearerUser(request)
      return (await fastify.credentials.listApiKeys(caller.id)).map(apiKeyInfo)
    })

    scope.delete('/api-keys/:id', { schema: revokeKeySchema }, async (request, reply) => {
      const caller = ownBearerUser(request)
      const { id } = request.params as { id: string }
      await fastify.credentials.revokeApiKey(caller.id, id, request)
      reply.code(204).send()
    })
  })
}
