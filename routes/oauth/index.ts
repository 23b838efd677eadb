// OAuth 2.0 endpoints: token (RFC 6749 §4.3, §4.4, §6), revocation (RFC 7009) and
// introspection (RFC 7662). An encapsulated group with its own error handler, so every failure
// here is answered in RFC 6749 §5.2 form; responses carry Cache-Control: no-store (§5.1).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { isGatehouseError } from '../../lib/errors.ts'
import { REFRESH_TOKEN_MAX_LENGTH, parseRefreshToken } from '../../lib/refresh-token.ts'
import { DEFAULT_CLIENT_ID } from '../../plugins/sessions/index.ts'
import { identifyClient, type ClientFields, type IdentifiedClient } from './client-auth.ts'
import { OAuthError, invalidClient, invalidRequest, oauthErrorHandler, oauthErrorSchema } from './errors.ts'
import { parseRoles } from '../../lib/roles.ts'
import { AUDIT_EVENTS } from '../../plugins/audit/index.ts'

export const SUPPORTED_GRANTS = ['password', 'refresh_token', 'client_credentials'] as const
/** Scope values a user grant may ask for; they change nothing (user tokens carry roles, not scopes). */
const USER_GRANT_SCOPES = new Set(['openid', 'offline_access'])
/** RFC 6749 §3.3: scope-token = 1*NQCHAR. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

export interface OAuthRoutesOptions {
  /** client_id of the built-in public client. @default fastify.sessions' default, 'gatehouse' */
  defaultClientId?: string
}

const clientFields = {
  client_id: { type: 'string', minLength: 1, maxLength: 256 },
  client_secret: { type: 'string', minLength: 1, maxLength: 512 }
} as const

const errorResponses = { 400: oauthErrorSchema, 401: oauthErrorSchema, 429: oauthErrorSchema, 503: oauthErrorSchema }

const tokenSchema = {
  tags: ['oauth'],
  summary: 'OAuth 2.0 token endpoint: password, refresh_token and client_credentials grants',
  description: 'Form-encoded (RFC 6749 §4.3, §4.4, §6). The password and refresh_token grants accept the public client `gatehouse` when client_id is omitted; client_credentials needs a registered confidential client (client_secret_basic or client_secret_post). Errors follow RFC 6749 §5.2.',
  consumes: ['application/x-www-form-urlencoded'],
  security: [{}, { basicAuth: [] }],
  body: {
    type: 'object',
    properties: {
      grant_type: { type: 'string', maxLength: 64 },
      username: { type: 'string', maxLength: 1024 },
      password: { type: 'string', maxLength: 4096 },
      refresh_token: { type: 'string', maxLength: REFRESH_TOKEN_MAX_LENGTH },
      scope: { type: 'string', maxLength: 1024 },
      ...clientFields
    },
    required: ['grant_type']
  },
  response: {
    200: {
      type: 'object',
      properties: {
        access_token: { type: 'string' },
        token_type: { type: 'string', enum: ['Bearer'] },
        expires_in: { type: 'integer' },
        refresh_token: { type: 'string' },
        scope: { type: 'string' }
      },
      required: ['access_token', 'token_type', 'expires_in']
    },
    ...errorResponses,
    403: {
      type: 'object',
      description: '`mfa_required`: the password was right and the account has a second factor; complete the login at POST /auth/mfa/verify with the mfa_token',
      properties: { error: { type: 'string' }, error_description: { type: 'string' }, mfa_token: { type: 'string' } },
      required: ['error']
    }
  }
} as const

const revokeSchema = {
  tags: ['oauth'],
  summary: 'Revoke a refresh token or an access token (RFC 7009)',
  description: 'Revoking either kind ends its session: the refresh family and every access token of it. Unknown, expired or foreign tokens are answered 200 too.',
  consumes: ['application/x-www-form-urlencoded'],
  security: [{}, { basicAuth: [] }],
  body: {
    type: 'object',
    properties: {
      token: { type: 'string', maxLength: 16_384 },
      token_type_hint: { type: 'string', maxLength: 64 },
      ...clientFields
    },
    required: ['token']
  },
  response: { 200: { type: 'null', description: 'Revoked, or nothing to revoke' }, ...errorResponses }
} as const

const introspectSchema = {
  tags: ['oauth'],
  summary: 'Token introspection for confidential clients (RFC 7662)',
  consumes: ['application/x-www-form-urlencoded'],
  security: [{ basicAuth: [] }],
  body: {
    type: 'object',
    properties: {
      token: { type: 'string', maxLength: 16_384 },
      token_type_hint: { type: 'string', maxLength: 64 },
      ...clientFields
    },
    required: ['token']
  },
  response: {
    200: {
      type: 'object',
      properties: {
        active: { type: 'boolean' },
        sub: { type: 'string' },
        client_id: { type: 'string' },
        exp: { type: 'integer' },
        iat: { type: 'integer' },
        iss: { type: 'string' },
        aud: { type: 'string' },
        scope: { type: 'string' },
        token_type: { type: 'string' },
        sid: { type: 'string' },
        username: { type: 'string' },
        amr: { type: 'array', items: { type: 'string' }, description: 'RFC 8176 methods of the authentication behind the token' },
        auth_time: { type: 'integer', description: 'When that authentication happened (RFC 9470 §6.2); a refresh does not move it' }
      },
      required: ['active']
    },
    ...errorResponses
  }
} as const

interface TokenBody extends ClientFields {
  grant_type: string
  username?: string
  password?: string
  refresh_token?: string
  scope?: string
}

interface TokenHintBody extends ClientFields {
  token: string
  token_type_hint?: string
}


function scopeList (scope: string | undefined): string[] | undefined {
  if (scope === undefined || scope.trim() === '') return undefined
  const list = scope.split(' ').filter((s) => s !== '')
  if (!list.every((s) => SCOPE_TOKEN.test(s))) throw new OAuthError('invalid_scope', 'The scope is malformed')
  return [...new Set(list)]
}

/** RFC 6749 §3.2: a parameter sent without a value is treated as omitted. */
function withoutEmpty<T extends object> (body: T): T {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== '')) as T
}

function looksLikeJwt (token: string): boolean {
  return token.length <= 8192 && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)
}

export default async function oauthRoutes (fastify: FastifyInstance, options: OAuthRoutesOptions = {}): Promise<void> {
  const defaultClientId = options.defaultClientId ?? DEFAULT_CLIENT_ID
  const prisma = fastify.store.prisma

  fastify.setErrorHandler(oauthErrorHandler)
  fastify.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store')
    reply.header('pragma', 'no-cache')
    return payload
  })

  function client (request: FastifyRequest, body: ClientFields): Promise<IdentifiedClient> {
    return identifyClient(request, body, prisma, defaultClientId)
  }

  /** Verifies one of our access tokens; null when it is not valid (any token error), 503 passes. */
  async function verifiedAccessToken (token: string) {
    if (!looksLikeJwt(token)) return null
    try {
      return await fastify.tokens.verify(token)
    } catch (err) {
      if (isGatehouseError(err) && err.statusCode < 500) return null
      throw err
    }
  }

  fastify.post('/token', {
    schema: tokenSchema,
    config: { rateLimitClass: 'token' }
  }, async (request, reply) => {
    const body = withoutEmpty(request.body as TokenBody)
    if (body.grant_type === undefined) throw invalidRequest('grant_type is required')
    if (!(SUPPORTED_GRANTS as readonly string[]).includes(body.grant_type)) {
      throw new OAuthError('unsupported_grant_type', 'The grant type is not supported')
    }
    const caller = await client(request, body)
    if (body.grant_type === 'client_credentials' && !caller.authenticated) throw invalidClient('client_credentials requires a confidential client')
    if (!caller.grants.includes(body.grant_type)) throw new OAuthError('unauthorized_client', 'The client may not use this grant type')
    const scopes = scopeList(body.scope)

    if (body.grant_type === 'client_credentials') {
      // RFC 6749 §4.4: the client acts for itself; scopes are the client's roles (a subset may be asked for).
      if (scopes !== undefined && !scopes.every((s) => caller.roles.includes(s))) throw new OAuthError('invalid_scope', 'The scope exceeds what the client was granted')
      const granted = scopes ?? caller.roles
      const access = await fastify.tokens.sign({ id: caller.id, roles: granted, tokenVersion: 0 }, { clientId: caller.id, scope: granted.join(' ') })
      fastify.audit?.record({ type: AUDIT_EVENTS.CLIENT_CREDENTIALS, outcome: 'success', actorId: null, details: { clientId: caller.id }, request })
      return { access_token: access.access_token, token_type: 'Bearer', expires_in: access.expires_in, scope: granted.join(' ') }
    }

    if (scopes !== undefined && !scopes.every((s) => USER_GRANT_SCOPES.has(s))) {
      throw new OAuthError('invalid_scope', 'The scope is not supported for user grants')
    }
    if (body.grant_type === 'password') {
      if (body.username === undefined || body.password === undefined) throw invalidRequest('username and password are required')
      // REQUIRE_VERIFIED_EMAIL (gatehouse-accounts) is applied inside, after a correct password.
      const user = await fastify.credentials.login(body.username, body.password, request)
      const challenge = fastify.hasDecorator('mfa') ? await fastify.mfa.challenge(user, caller.id) : null
      if (challenge !== null) {
        return reply.code(403).send({ error: 'mfa_required', error_description: 'A second factor is required: send the mfa_token and a code to POST /auth/mfa/verify', mfa_token: challenge.mfaToken })
      }
      return await fastify.sessions.start({ id: user.id, roles: parseRoles(user.roles), tokenVersion: user.tokenVersion }, { clientId: caller.id, request })
    }
    if (body.refresh_token === undefined) throw invalidRequest('refresh_token is required')
    const { userId: _userId, ...response } = await fastify.sessions.refresh(body.refresh_token, { clientId: caller.id, request })
    return response
  })

  fastify.post('/revoke', { schema: revokeSchema, config: { rateLimitClass: 'token' } }, async (request, reply) => {
    const body = withoutEmpty(request.body as TokenHintBody)
    if (body.token === undefined) throw invalidRequest('token is required')
    const caller = await client(request, body)
    if (parseRefreshToken(body.token) !== null) {
      const found = await fastify.sessions.lookup(body.token)
      // RFC 7009 §2.1: only the client the token was issued to may revoke it.
      if (found !== null && found.clientId === caller.id) await fastify.sessions.logout(found.familyId, 'revoked', { request })
      return reply.code(200).send()
    }
    const user = await verifiedAccessToken(body.token)
    if (user !== null) {
      if (user.sid === undefined) throw new OAuthError('unsupported_token_type', 'Client access tokens cannot be revoked; they expire')
      // RFC 7009 §2.1: only the client the session was issued to may end it; for any other the
      // answer is the same 200, so it learns nothing about the token.
      await fastify.sessions.logout(user.sid, 'revoked', { request, clientId: caller.id })
    }
    return reply.code(200).send()
  })

  fastify.post('/introspect', { schema: introspectSchema, config: { rateLimitClass: 'token' } }, async (request) => {
    const body = withoutEmpty(request.body as TokenHintBody)
    if (body.token === undefined) throw invalidRequest('token is required')
    const caller = await client(request, body)
    if (!caller.authenticated) throw invalidClient('Introspection requires client authentication')

    if (parseRefreshToken(body.token) !== null) {
      const found = await fastify.sessions.lookup(body.token)
      if (found === null || !found.active || found.clientId !== caller.id) return { active: false }
      return {
        active: true,
        token_type: 'refresh_token',
        client_id: found.clientId,
        sub: found.userId,
        sid: found.familyId,
        iss: fastify.tokens.issuer,
        iat: Math.floor(found.createdAt.getTime() / 1000),
        exp: Math.floor(found.expiresAt.getTime() / 1000)
      }
    }
    const user = await verifiedAccessToken(body.token)
    if (user === null) return { active: false }
    const claims = (user.claims ?? {}) as Record<string, unknown>
    let clientId = typeof claims.client_id === 'string' ? claims.client_id : undefined
    if (clientId === undefined && user.sid !== undefined) {
      const family = await prisma.refreshFamily.findUnique({ where: { id: user.sid }, select: { clientId: true } })
      clientId = family?.clientId
    }
    return {
      active: true,
      token_type: 'Bearer',
      sub: user.sub,
      client_id: clientId,
      iss: claims.iss,
      aud: claims.aud,
      exp: claims.exp,
      iat: claims.iat,
      scope: typeof claims.scope === 'string' ? claims.scope : undefined,
      sid: user.sid,
      username: user.email,
      amr: Array.isArray(claims.amr) ? claims.amr : undefined,
      auth_time: typeof claims.auth_time === 'number' ? claims.auth_time : undefined
    }
  })
}
