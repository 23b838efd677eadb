// /orgs: organizations and memberships (CONTRACT §3). Every route is authenticated; reading an
// organization needs a membership, changing its members needs the org `admin` role. A
// non-member gets 404 NOT_FOUND exactly as for an organization that does not exist, so the
// existence of an organization is not revealed to outsiders.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import { isLocalUser, mayAdminister, type AuthUser } from '../../lib/auth-user.ts'
import type { OrgChangeContext } from '../../plugins/orgs/index.ts'
import { bearer, errorRef, member, memberParams, orgDetail, orgParams, orgSummary } from './schemas.ts'

const errors = { 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef }


/** The authenticated own (database) user; external principals have no account to make members of. */
function accountOf (request: FastifyRequest): AuthUser {
  const user = request.user
  if (user === null) throw missingAuthorization()
  if (!isLocalUser(user)) throw gatehouseError('FORBIDDEN', 'Only accounts of this server can create organizations')
  return user
}

/** CONTRACT §14: organizations are managed by local users (or an issuer with `adminApi`), never by an OAuth client. */
async function managers (request: FastifyRequest): Promise<void> {
  if (request.user === null) throw missingAuthorization()
  if (!mayAdminister(request.user)) throw gatehouseError('FORBIDDEN', 'Organizations are managed by accounts of this server')
}

/**
 * The actor of a change; a local account's org admin role (from our membership table, not from an
 * external token's claim) is checked again under the organization's lock.
 */
function by (request: FastifyRequest): OrgChangeContext {
  const user = request.user
  return { actorId: user?.id ?? null, ownActorId: isLocalUser(user) ? user.id : undefined, request }
}

export default async function orgRoutes (fastify: FastifyInstance): Promise<void> {
  const orgRoles = fastify.rbac.options.org
  const service = fastify.orgs
  const adminRole = service.adminRole
  const lowestRole = [...orgRoles.roles].sort((a, b) => (orgRoles.grants.get(a)?.size ?? 0) - (orgRoles.grants.get(b)?.size ?? 0))[0]
  const roleSchema = { type: 'string', enum: [...orgRoles.roles] } as const

  fastify.addHook('onRequest', fastify.authenticate)

  fastify.post<{ Body: { name: string } }>('/', {
    prefixTrailingSlash: 'no-slash',
    schema: {
      tags: ['orgs'],
      summary: 'Create an organization; the caller becomes its admin',
      security: bearer,
      body: {
        type: 'object',
        properties: { name: { type: 'string', minLength: 1, maxLength: 100, pattern: '\\S' } },
        required: ['name'],
        additionalProperties: false
      },
      response: { 201: orgSummary, ...errors }
    }
  }, async (request, reply) => {
    const user = accountOf(request)
    const org = await service.create(user.id, request.body.name.trim(), by(request))
    return reply.code(201).send(org)
  })

  fastify.get<{ Params: { orgId: string } }>('/:orgId', {
    schema: {
      tags: ['orgs'],
      summary: 'An organization and its members (members only)',
      security: bearer,
      params: orgParams,
      response: { 200: orgDetail, ...errors }
    },
    preHandler: fastify.requireOrgRole(lowestRole)
  }, async (request) => service.get(request.params.orgId))

  fastify.post<{ Params: { orgId: string }, Body: { email: string, role: string } }>('/:orgId/members', {
    schema: {
      tags: ['orgs'],
      summary: 'Add an existing account to the organization (org admin)',
      security: bearer,
      params: orgParams,
      body: {
        type: 'object',
        properties: { email: { type: 'string', minLength: 3, maxLength: 320 }, role: roleSchema },
        required: ['email', 'role'],
        additionalProperties: false
      },
      response: { 201: member, ...errors }
    },
    preHandler: [fastify.requireOrgRole(adminRole), managers]
  }, async (request, reply) => {
    const { orgId } = request.params
    const added = await service.addMember(orgId, request.body.email, request.body.role, by(request))
    return reply.code(201).send(added)
  })

  fastify.patch<{ Params: { orgId: string, userId: string }, Body: { role: string } }>('/:orgId/members/:userId', {
    schema: {
      tags: ['orgs'],
      summary: 'Change a member\'s role (org admin); the last admin cannot be demoted',
      security: bearer,
      params: memberParams,
      body: { type: 'object', properties: { role: roleSchema }, required: ['role'], additionalProperties: false },
      response: { 200: member, ...errors }
    },
    preHandler: [fastify.requireOrgRole(adminRole), managers]
  }, async (request) => {
    const { orgId, userId } = request.params
    const { previous, ...updated } = await service.changeRole(orgId, userId, request.body.role, by(request))
    return updated
  })

  fastify.delete<{ Params: { orgId: string, userId: string } }>('/:orgId/members/:userId', {
    schema: {
      tags: ['orgs'],
      summary: 'Remove a member (org admin); the last admin cannot be removed',
      security: bearer,
      params: memberParams,
      response: { 204: { type: 'null', description: 'Removed' }, ...errors }
    },
    preHandler: [fastify.requireOrgRole(adminRole), managers]
  }, async (request, reply) => {
    const { orgId, userId } = request.params
    await service.removeMember(orgId, userId, by(request))
    return reply.code(204).send()
  })
}
