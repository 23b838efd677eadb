import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERRORS, gatehouseError, isGatehouseError } from './errors.ts'
import { translatePrismaError } from './database-errors.ts'

/** The error body every route answers with: Fastify's shape plus our code. */
export const errorSchema = {
  $id: 'GatehouseError',
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' }
  },
  required: ['statusCode', 'code', 'error', 'message']
} as const

/**
 * Coded errors go out as they are (with their headers); validation errors keep Fastify's
 * FST_ERR_VALIDATION 400; database faults become 503; anything unexpected is logged with its
 * cause and answered with a generic 500 that carries no stack and no detail.
 */
export function errorHandler (this: FastifyInstance, rawError: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const error = translatePrismaError(rawError) as FastifyError
  if (isGatehouseError(error)) {
    if (error.statusCode >= 500) request.log.error({ err: error.cause ?? error, code: error.code }, error.message)
    else request.log.info({ code: error.code }, error.message)
    if (error.headers !== undefined) reply.headers(error.headers)
    reply.code(error.statusCode).send({ statusCode: error.statusCode, code: error.code, error: httpReason(error.statusCode), message: error.message })
    return
  }
  const status = error.statusCode ?? 500
  if (status === 429) {
    // @fastify/rate-limit and others: keep their headers, answer in our code.
    reply.code(429).send({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: ERRORS.RATE_LIMITED.message })
    return
  }
  if (status >= 400 && status < 500 && typeof error.code === 'string') {
    // Fastify's own client errors (validation, body too large, bad content type, ...).
    reply.code(status).send({ statusCode: status, code: error.code, error: httpReason(status), message: error.message })
    return
  }
  if (status >= 400 && status < 500) {
    reply.code(status).send({ statusCode: status, code: 'BAD_REQUEST', error: httpReason(status), message: error.message })
    return
  }
  request.log.error({ err: error }, 'unhandled error')
  const internal = gatehouseError('INTERNAL_ERROR')
  reply.code(500).send({ statusCode: 500, code: internal.code, error: 'Internal Server Error', message: internal.message })
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable'
}

export function httpReason (status: number): string {
  return REASONS[status] ?? (status >= 500 ? 'Internal Server Error' : 'Bad Request')
}
