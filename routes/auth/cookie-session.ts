// Cookie sessions for browser apps (CONTRACT §9). A route that starts a session passes its token
// response through `deliver`: with `"session": "cookie"` in the body, the refresh token goes into
// an HttpOnly; Secure; SameSite=Strict cookie scoped to the /auth routes and leaves the body.
// Requests that the cookie authenticates must come from an allowed Origin (`assertOrigin`).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { gatehouseError } from '../../lib/errors.ts'
import type { TokenResponse } from '../../plugins/sessions/index.ts'

export const REFRESH_COOKIE = 'gatehouse_refresh'

/** The `session` body field of the routes that start a session. */
export const sessionModeField = {
  type: 'string',
  enum: ['body', 'cookie'],
  description: '`cookie`: the refresh token is set as an HttpOnly cookie and left out of the body (browser apps). Default `body`.'
} as const

export type DeliveredTokens = Omit<TokenResponse, 'refresh_token'> & { refresh_token?: string }

export interface CookieSession {
  /** The token response as the client gets it: in cookie mode without refresh_token, which is set as the cookie. */
  deliver: (request: FastifyRequest, reply: FastifyReply, tokens: TokenResponse, mode?: 'body' | 'cookie') => Promise<DeliveredTokens>
  /** The refresh token of the cookie, if the request carries one. */
  read: (request: FastifyRequest) => string | undefined
  clear: (reply: FastifyReply) => void
  /** ORIGIN_NOT_ALLOWED unless the Origin header is the server's own origin or one of CORS_ORIGINS. */
  assertOrigin: (request: FastifyRequest) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    cookieSession: CookieSession
  }
}

export function createCookieSession (fastify: FastifyInstance, path: string): CookieSession {
  const attributes = { httpOnly: true, secure: true, sameSite: 'strict' as const, path }
  return {
    async deliver (request, reply, tokens, mode) {
      const wanted = mode ?? (request.body as { session?: string } | null | undefined)?.session
      reply.header('cache-control', 'no-store')
      if (wanted !== 'cookie') return tokens
      const { refresh_token: refreshToken, ...rest } = tokens
      // Max-Age is what the token has left (idle lifetime, capped by the session's absolute end).
      const live = await fastify.sessions.lookup(refreshToken)
      const maxAge = live === null ? 0 : Math.max(1, Math.floor((live.expiresAt.getTime() - Date.now()) / 1000))
      reply.setCookie(REFRESH_COOKIE, refreshToken, { ...attributes, maxAge })
      return rest
    },
    read (request) {
      const value = request.cookies?.[REFRESH_COOKIE]
      return typeof value === 'string' && value !== '' ? value : undefined
    },
    clear (reply) {
      reply.clearCookie(REFRESH_COOKIE, attributes)
    },
    assertOrigin (request) {
      if (!fastify.allowedOrigin(request)) {
        request.log.info({ origin: typeof request.headers.origin === 'string' ? request.headers.origin.slice(0, 200) : null }, 'cookie-authenticated request from an origin that is not allowed')
        throw gatehouseError('ORIGIN_NOT_ALLOWED')
      }
    }
  }
}
