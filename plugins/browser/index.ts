// gatehouse-browser: what browser apps need from the server. @fastify/cors for the exact origins
// of CORS_ORIGINS (with credentials, `Vary: Origin`; none by default), @fastify/cookie for the
// refresh cookie, and `fastify.allowedOrigin(request)`: whether a request's Origin is the
// server's own or a listed one, the CSRF check of every cookie-authenticated request
// (docs/browser-apps.md).
import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import cookie from '@fastify/cookie'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { optionChecks } from '../../lib/options.ts'

const check = optionChecks('gatehouse-browser')

export interface BrowserOptions {
  /** Exact origins (`https://app.example.com`) that may call the API with credentials. @default [] */
  corsOrigins?: string[]
  /** The server's own origin (that of AUTH_ISSUER): always allowed as Origin, never needs CORS. */
  ownOrigin: string
}

declare module 'fastify' {
  interface FastifyInstance {
    /** True when the request's Origin header is the server's own origin or one of CORS_ORIGINS. */
    allowedOrigin: (request: FastifyRequest) => boolean
  }
}

async function browserPlugin (fastify: FastifyInstance, options: BrowserOptions): Promise<void> {
  const ownOrigin = check.string('ownOrigin', options.ownOrigin)
  if (options.corsOrigins !== undefined && (!Array.isArray(options.corsOrigins) || !options.corsOrigins.every((o) => typeof o === 'string' && o !== ''))) {
    check.fail('corsOrigins', 'must be an array of origins (scheme://host[:port])')
  }
  const corsOrigins = [...(options.corsOrigins ?? [])]
  const allowed = new Set([ownOrigin, ...corsOrigins])
  if (!fastify.hasDecorator('parseCookie')) await fastify.register(cookie)
  if (corsOrigins.length > 0) {
    const listed = new Set(corsOrigins)
    await fastify.register(cors, {
      // Exact string match, no patterns: an unlisted origin gets no Access-Control-Allow-Origin.
      origin: (origin, callback) => callback(null, origin !== undefined && listed.has(origin)),
      credentials: true,
      methods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type'],
      maxAge: 600,
      strictPreflight: true
    })
  }
  fastify.decorate('allowedOrigin', (request: FastifyRequest) => {
    const origin = request.headers.origin
    return typeof origin === 'string' && allowed.has(origin)
  })
}

export const browser = fp(browserPlugin, { name: 'gatehouse-browser', fastify: '5.x' })
export default browser
