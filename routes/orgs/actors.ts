// Who calls an /orgs route, as the organization service needs to know it.
import type { FastifyRequest } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import { isLocalUser, mayAdminister, type AuthUser } from '../../lib/auth-user.ts'
import type { OrgChangeContext } from '../../plugins/orgs/index.ts'

/** The authenticated own (database) user; external principals have no account to make members of. */
export function accountOf (request: FastifyRequest, doing: string): AuthUser {
  const user = request.user
  if (user === null) throw missingAuthorization()
  if (!isLocalUser(user)) throw gatehouseError('FORBIDDEN', `Only accounts of this server can ${doing}`)
  return user
}

/** CONTRACT §14: organizations are managed by local users (or an issuer with `adminApi`), never by an OAuth client. */
export async function managers (request: FastifyRequest): Promise<void> {
  if (request.user === null) throw missingAuthorization()
  if (!mayAdminister(request.user)) throw gatehouseError('FORBIDDEN', 'Organizations are managed by accounts of this server')
}

/**
 * The actor of a change; a local account's org admin role (from our membership table, not from an
 * external token's claim) is checked again under the organization's lock.
 */
export function by (request: FastifyRequest): OrgChangeContext {
  const user = request.user
  return { actorId: user?.id ?? null, ownActorId: isLocalUser(user) ? user.id : undefined, request }
}
