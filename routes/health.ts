import type { FastifyInstance } from 'fastify'
import { serviceUnavailable } from '../lib/errors.ts'

const statusSchema = {
  type: 'object',
  properties: { status: { type: 'string' } },
  required: ['status']
} as const

export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.get('/health', {
    schema: { tags: ['health'], summary: 'Liveness: 200 while the process serves', response: { 200: statusSchema } },
    logLevel: 'warn'
  }, async () => ({ status: 'ok' }))

  fastify.get('/ready', {
    schema: {
      tags: ['health'],
      summary: 'Readiness: 200 only while the database (and Redis, when configured) answer',
      response: { 200: statusSchema, 503: { $ref: 'GatehouseError#' } }
    },
    logLevel: 'warn'
  }, async () => {
    const [database, redis] = await Promise.all([
      fastify.store.ping(),
      fastify.redis === null ? Promise.resolve(true) : fastify.redis.ping().then(() => true, () => false)
    ])
    if (!database || !redis) throw serviceUnavailable(new Error(`not ready: database=${database} redis=${redis}`), 5)
    return { status: 'ready' }
  })
}
