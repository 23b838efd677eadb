// Who may call the self-service routes: one of this server's own users with an access token.
import type { FastifyRequest } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'

/** The caller as one of our own users holding an access token of this server. */
export function ownBearerUser (request: FastifyRequest): { id: string, sid?: string } {
  const user = request.user
  if (user === null || user === undefined) throw missingAuthorization()
  if (user.external || user.clientId !== undefined || user.scheme !== 'bearer') {
    throw gatehouseError('FORBIDDEN', 'This requires an access token of one of this server\'s users')
  }
  return { id: user.id, sid: user.sid }
}
