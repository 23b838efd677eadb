// Server sessions and Gatehouse tokens side by side, during a migration (docs/migrating-from-sessions.md).
// A request with an Authorization header is authenticated by Gatehouse (fastify.authenticate);
// one with the legacy session cookie by the old session store; both set `request.user`, so the
// route handlers do not change. Remove the cookie branch when no valid session is left.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { randomBytes } from 'node:crypto'
import { missingAuthorization, type AuthScheme } from 'gatehouse/authenticate'
import { build, type ExistingAppOptions } from './index.ts'

/** The app's legacy session store (in memory here; Redis or a table in a real app). */
export interface LegacySessions {
  create: (session: { userId: string, roles: string[] }) => string
  get: (sid: string) => { userId: string, roles: string[] } | undefined
}

export function memorySessions (): LegacySessions {
  const sessions = new Map<string, { userId: string, roles: string[] }>()
  return {
    create (session) {
      const sid = randomBytes(32).toString('base64url')
      sessions.set(sid, session)
      return sid
    },
    get: (sid) => sessions.get(sid)
  }
}

function sessionCookie (request: FastifyRequest): string | undefined {
  const header = request.headers.cookie
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const [name, ...value] = part.trim().split('=')
    if (name === 'sid') return value.join('=')
  }
  return undefined
}

export async function buildSideBySide (options: ExistingAppOptions & { legacy: LegacySessions }): Promise<FastifyInstance> {
  const app = await build(options)

  // Token clients first; cookie clients until they have moved; otherwise 401.
  async function authenticateEither (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.headers.authorization !== undefined) {
      await new Promise<void>((resolve, reject) => {
        app.authenticate(request, reply, (err?: Error) => { if (err !== undefined && err !== null) reject(err); else resolve() })
      })
      return
    }
    const sid = sessionCookie(request)
    const session = sid === undefined ? undefined : options.legacy.get(sid)
    if (session !== undefined) {
      // AuthScheme has no value for a cookie session; 'session' marks these users for the handlers.
      request.user = { id: session.userId, sub: session.userId, iss: 'session', roles: session.roles, scheme: 'session' as AuthScheme, external: false }
      return
    }
    throw missingAuthorization()
  }

  app.get('/dashboard', { onRequest: authenticateEither }, async (request) => ({ user: request.user!.id, via: request.user!.iss === 'session' ? 'cookie' : 'token' }))
  return app
}
