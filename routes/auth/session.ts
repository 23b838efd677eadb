// Session routes under /auth (registered by routes/auth/index.ts): refresh, logout, logout-all.
// Refresh needs no access token (the refresh token is the credential); logout and logout-all
// authenticate in onRequest, so the body of an unauthenticated request is never parsed.
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import { REFRESH_TOKEN_MAX_LENGTH } from '../../lib/refresh-token.ts'
import { tokenResponseSchema } from '../../plugins/sessions/index.ts'
import { sessionModeField } from './cookie-session.ts'

const errorResponse = { $ref: 'GatehouseError#' }

const refreshSchema = {
  tags: ['auth'],
  summary: 'Exchange a refresh token for a new access token and a rotated refresh token',
  description: 'The presented refresh token is used up; presenting it again revokes the whole session (REFRESH_TOKEN_REUSED). A refresh token in the query string is ignored. With no `refresh_token` in the body the refresh cookie of a cookie session is used: the request must then come from an allowed Origin (ORIGIN_NOT_ALLOWED), the cookie is rotated and the answer carries no refresh_token.',
  security: [],
  body: {
    type: ['object', 'null'],
    properties: { refresh_token: { type: 'string', minLength: 1, maxLength: REFRESH_TOKEN_MAX_LENGTH }, session: sessionModeField }
  },
  response: { 200: { ...tokenResponseSchema, required: ['access_token', 'token_type', 'expires_in'] }, 401: errorResponse, 403: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const logoutSchema = {
  tags: ['auth'],
  summary: 'End this session: its refresh tokens and access tokens stop working',
  description: 'Revokes the refresh family of the access token used (its `sid`) and, when `refresh_token` is given and belongs to the same user, that token\'s family too. A browser app of a cookie session may instead send just the refresh cookie (from an allowed Origin: ORIGIN_NOT_ALLOWED otherwise); its session is revoked and the cookie cleared.',
  security: [{ bearerAuth: [] }, {}],
  body: {
    type: ['object', 'null'],
    properties: { refresh_token: { type: 'string', maxLength: REFRESH_TOKEN_MAX_LENGTH } }
  },
  response: { 204: { type: 'null', description: 'Logged out' }, 400: errorResponse, 401: errorResponse, 403: errorResponse, 415: errorResponse, 503: errorResponse }
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
  }, async (request, reply) => {
    if (request.validationError !== undefined) throw gatehouseError('INVALID_REFRESH_TOKEN')
    const body = request.body as { refresh_token?: string } | null | undefined
    const cookies = fastify.cookieSession
    if (body?.refresh_token === undefined) {
      // The cookie authenticates this request: it must come from an allowed origin (CSRF).
      const cookieToken = cookies.read(request)
      if (cookieToken === undefined) throw gatehouseError('INVALID_REFRESH_TOKEN')
      cookies.assertOrigin(request)
      let rotated
      try {
        rotated = await fastify.sessions.refresh(cookieToken, { request })
      } catch (err) {
        // A dead cookie is of no further use to the browser (reuse has revoked its family).
        if ((err as { statusCode?: number }).statusCode === 401) cookies.clear(reply)
        throw err
      }
      const { userId: _userId, ...response } = rotated
      return await cookies.deliver(request, reply, response, 'cookie')
    }
    const { userId: _userId, ...response } = await fastify.sessions.refresh(body.refresh_token, { request })
    return await cookies.deliver(request, reply, response)
  })

  fastify.post('/logout', {
    schema: logoutSchema,
    // A browser app of a cookie session may log out with the cookie alone (no access token at hand).
    onRequest: async function bearerOrCookie (request, reply) {
      if (request.headers.authorization === undefined && fastify.cookieSession.read(request) !== undefined) return
      await new Promise<void>((resolve, reject) => {
        const result = (authenticate as (this: FastifyInstance, req: FastifyRequest, rep: typeof reply, done: (err?: Error) => void) => unknown)
          .call(fastify, request, reply, (err?: Error) => err === undefined ? resolve() : reject(err))
        if (result instanceof Promise) result.then(() => resolve(), reject)
      })
    }
  }, async (request, reply) => {
    const cookies = fastify.cookieSession
    const cookieToken = cookies.read(request)
    if (cookieToken !== undefined) cookies.assertOrigin(request)
    const body = request.body as { refresh_token?: string } | null | undefined
    if (request.user === null || request.user === undefined) {
      const session = await fastify.sessions.lookup(cookieToken!)
      if (session !== null) await fastify.sessions.logout(session.familyId, 'logout', { request, actorId: session.userId })
    } else {
      const user = ownUser(request)
      await fastify.sessions.logoutSession(user.id, { sid: user.sid, refreshToken: body?.refresh_token ?? cookieToken, request })
    }
    if (cookieToken !== undefined) cookies.clear(reply)
    reply.code(204).send()
  })

  fastify.post('/logout-all', { schema: logoutAllSchema, onRequest: authenticate }, async (request, reply) => {
    const user = ownUser(request)
    await fastify.sessions.logoutAll(user.id, { request })
    await fastify.credentials.revokeUserApiKeys(user.id, 'logout_all', request)
    reply.code(204).send()
  })
}
