// The signed-in user's sessions under /auth: GET /sessions lists the live ones (a refresh family
// with a usable refresh token), DELETE /sessions/:id ends one of them and its access tokens.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'

const errorResponse = { $ref: 'GatehouseError#' }
const dateTime = { type: 'string', format: 'date-time' } as const

const sessionSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The session id (the `sid` claim of its access tokens)' },
    created_at: dateTime,
    last_used_at: { ...dateTime, nullable: true, description: 'The latest refresh; null when never refreshed' },
    client_id: { type: 'string' },
    ip: { type: 'string', nullable: true, description: 'Client address at sign-in, then at the latest refresh' },
    user_agent: { type: 'string', nullable: true },
    current: { type: 'boolean', description: 'The session of the access token of this request' }
  },
  required: ['id', 'created_at', 'last_used_at', 'client_id', 'ip', 'user_agent', 'current'],
  additionalProperties: false
} as const

const listSchema = {
  tags: ['auth'],
  summary: 'Your active sessions',
  security: [{ bearerAuth: [] }],
  response: { 200: { type: 'array', items: sessionSchema }, 401: errorResponse, 403: errorResponse, 503: errorResponse }
} as const

const endSchema = {
  tags: ['auth'],
  summary: 'End one of your sessions: its refresh and access tokens stop working',
  security: [{ bearerAuth: [] }],
  params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['id'] },
  response: { 204: { type: 'null', description: 'Ended' }, 401: errorResponse, 403: errorResponse, 404: errorResponse, 503: errorResponse }
} as const

function ownSessionUser (request: FastifyRequest): { id: string, sid?: string } {
  const user = request.user
  if (user === null || user === undefined) throw missingAuthorization()
  if (user.external || user.clientId !== undefined || user.scheme !== 'bearer') {
    throw gatehouseError('FORBIDDEN', 'Sessions are listed for this server\'s own access tokens')
  }
  return { id: user.id, sid: user.sid }
}

export default async function sessionListRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.addHook('onRequest', fastify.createAuthenticate({ schemes: ['bearer'] }))

  fastify.get('/sessions', { schema: listSchema }, async (request) => {
    const caller = ownSessionUser(request)
    const now = new Date()
    const families = await fastify.store.prisma.refreshFamily.findMany({
      where: {
        userId: caller.id,
        revokedAt: null,
        absoluteExpiresAt: { gt: now },
        tokens: { some: { usedAt: null, revokedAt: null, idleExpiresAt: { gt: now } } }
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
      take: 200
    })
    return families.map((f) => ({
      id: f.id,
      created_at: f.createdAt.toISOString(),
      last_used_at: f.lastUsedAt?.toISOString() ?? null,
      client_id: f.clientId,
      ip: f.ip,
      user_agent: f.userAgent,
      current: f.id === caller.sid
    }))
  })

  fastify.delete('/sessions/:id', { schema: endSchema }, async (request, reply) => {
    const caller = ownSessionUser(request)
    const { id } = request.params as { id: string }
    const family = await fastify.store.prisma.refreshFamily.findFirst({ where: { id, userId: caller.id }, select: { id: true } })
    if (family === null) throw gatehouseError('NOT_FOUND', 'No session with this id')
    await fastify.sessions.logout(id, 'logout', { request, actorId: caller.id })
    reply.code(204).send()
  })
}
