// POST /admin/users/:id/password-reset: an admin sends the user a password-reset mail (the
// link itself is never shown to the admin). Registered by routes/admin/index.ts, behind its
// authentication and admin-role hooks.
import type { FastifyInstance } from 'fastify'

const errorRef = { $ref: 'GatehouseError#' } as const

export default async function passwordResetRoute (fastify: FastifyInstance): Promise<void> {
  fastify.post<{ Params: { id: string } }>('/users/:id/password-reset', {
    schema: {
      tags: ['admin'],
      summary: 'Send the user a password-reset mail',
      description: 'The link goes to the account\'s address only; it is never part of the answer. The user\'s password, sessions and keys stay as they are until the link is used.',
      security: [{ bearerAuth: [] }],
      params: { type: 'object', properties: { id: { type: 'string', format: 'uuid' } }, required: ['id'], additionalProperties: false },
      response: {
        202: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'], additionalProperties: false },
        400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 429: errorRef, 503: errorRef
      }
    },
    config: { rateLimitClass: 'mail' }
  }, async (request, reply) => {
    await fastify.limitByKey('mail_target', `account:${request.params.id}`, request)
    await fastify.accounts.sendPasswordReset(request.params.id, request.user!.id, request)
    reply.code(202)
    return { message: 'A reset link is on its way to the user\'s address' }
  })
}
