// Session routes under /auth (registered by routes/auth/index.ts): refresh, logout, logout-all.
// Refresh needs no access token (the refresh token is the credential); logout and logout-all
// authenticate in onRequest, so the body of an unauthenticated request is never parsed.
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import { REFRESH_TOKEN_MAX_LENGTH } from '../../lib/refresh-token.ts'
import { tokenResponseSchema } from '../../plugins/sessions/index.ts'

const errorResponse = { $ref: 'GatehouseError#' }

const refreshSchema = {
  tags: ['auth'],
  summary: 'Exchange a refresh token for a new access token and a rotated refresh token',
  description: 'The presented refresh token is used up; presenting it again revokes the whole session (REFRESH_TOKEN_REUSED). A refresh token in the query string is ignored.',
  security: [],
  body: {
    type: 'object',
    properties: { refresh_token: { type: 'string', minLength: 1, maxLength: REFRESH_TOKEN_MAX_LENGTH } },
    required: ['refresh_token']
  },
  response: { 200: tokenResponseSchema, 401: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const logoutSchema = {
  tags: ['auth'],
  summary: 'End this session: its refresh tokens and access tokens stop working',
  description: 'Revokes the refresh family of the access token used (its `sid`) and, when `refresh_token` is given and belongs to the same user, that token\'s family too.',
  security: [{ bearerAuth: [] }],
  body: {
    type: ['object', 'null'],
    properties: { refresh_token: { type: 'string', maxLength: REFRESH_TOKEN_MAX_LENGTH } }
  },
  response: { 204: { type: 'null', description: 'Logged out' }, 400: errorResponse, 401: errorResponse, 403: errorResponse, 503: errorResponse }
} as const

const logoutAllSchema = {
  tags: ['auth'],
  summary: 'End every session of the user: all refresh tokens, all API keys and all access tokens issued before now stop working',
  security: [{ bearerAuth: [] }],
  response: { 204: { type: 'null', description: 'Logged out everywhere' }, 401: errorResponse, 403: errorResponse, 503: errorResponse }
} as const

/** CONTRACT §3: logout and logout-all take a bearer token (a session), not Basic or an API key. */
function authenticateHook (fastify: FastifyInstance): onRequestHookHandler {
  if (fastify.hasDecorator('createAuthenticate')) return fastify.createAuthenticate({ schemes: ['bearer'] })
  if (fastify.hasDecorator('authenticate')) return fastify.authenticate
  // Without the authenticate plugin nobody can prove who they are: refuse rather than guess.
  return async function noAuthenticator () { throw missingAuthorization() }
}

function ownUser (request: FastifyRequest): { id: string, sid?: string } {
  const user = request.user
  if (user === null || user === undefined) throw missingAuthorization()
  // A token from a trusted external issuer has no session here to end.
  if (user.external) throw gatehouseError('FORBIDDEN', 'Sessions of an external identity are managed by its issuer')
  // A client_credentials token acts for an OAuth client, which has no sessions.
  if (user.clientId !== undefined) throw gatehouseError('FORBIDDEN', 'A client token has no session to end')
  return { id: user.id, sid: user.sid }
}

export default async function sessionRoutes (fastify: FastifyInstance): Promise<void> {
  const authenticate = authenticateHook(fastify)

  fastify.post('/refresh', {
    schema: refreshSchema,
    // Any problem with the one field this route reads is an invalid refresh token (401), never
    // a validation 400 that would tell a prober what a well-formed token looks like.
    attachValidation: true,
    config: { rateLimitClass: 'refresh' }
  }, async (request) => {
    if (request.validationError !== undefined) throw gatehouseError('INVALID_REFRESH_TOKEN')
    const { refresh_token: refreshToken } = request.body as { refresh_token: string }
    const { userId: _userId, ...response } = await fastify.sessions.refresh(refreshToken, { request })
    return response
  })

  fastify.post('/logout', { schema: logoutSchema, onRequest: authenticate }, async (request, reply) => {
    const user = ownUser(request)
    const body = request.body as { refresh_token?: string } | null | undefined
    await fastify.sessions.logoutSession(user.id, { sid: user.sid, refreshToken: body?.refresh_token, request })
    reply.code(204).send()
  })

  fastify.post('/logout-all', { schema: logoutAllSchema, onRequest: authenticate }, async (request, reply) => {
    const user = ownUser(request)
    await fastify.sessions.logoutAll(user.id, { request })
    await fastify.credentials.revokeUserApiKeys(user.id, 'logout_all', request)
    reply.code(204).send()
  })
}
