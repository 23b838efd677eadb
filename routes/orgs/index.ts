// /orgs: organizations and memberships (CONTRACT §3). Every route is authenticated; reading an
// organization needs a membership, changing its members needs the org `admin` role. A
// non-member gets 404 NOT_FOUND exactly as for an organization that does not exist, so the
// existence of an organization is not revealed to outsiders.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import { isLocalUser, mayAdminister, type AuthUser } from '../../lib/auth-user.ts'
import { highestRole } from '../../plugins/rbac/hierarchy.ts'
import { normalizeEmail } from '../../plugins/credentials/policy.ts'
import { createOrgService } from './service.ts'
import { bearer, errorRef, member, memberParams, orgDetail, orgParams, orgSummary } from './schemas.ts'

export { slugify, nextFreeSlug } from './slug.ts'
export { createOrgService } from './service.ts'

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

/** The actor's id when its org role comes from our membership table (not from an external token's claim). */
function ownActor (request: FastifyRequest): string | undefined {
  return isLocalUser(request.user) ? request.user.id : undefined
}

export default async function orgRoutes (fastify: FastifyInstance): Promise<void> {
  const orgRoles = fastify.rbac.options.org
  const adminRole = highestRole(orgRoles, orgRoles.roles) ?? 'admin'
  const lowestRole = [...orgRoles.roles].sort((a, b) => (orgRoles.grants.get(a)?.size ?? 0) - (orgRoles.grants.get(b)?.size ?? 0))[0]
  const roleSchema = { type: 'string', enum: [...orgRoles.roles] } as const
  const service = createOrgService(fastify.store.prisma, adminRole)

  fastify.addHook('onRequest', fastify.authenticate)

  async function changed (request: FastifyRequest, type: string, orgId: string, subjectId: string, details: Record<string, unknown>): Promise<void> {
    await fastify.rbac.membershipChanged(subjectId, orgId)
    fastify.audit.record({ type, outcome: 'success', actorId: request.user?.id, subjectId, orgId, details, request })
  }

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
    const org = await service.create(user.id, request.body.name.trim())
    await fastify.rbac.membershipChanged(user.id, org.id)
    fastify.audit.record({ type: 'org_created', outcome: 'success', actorId: user.id, subjectId: user.id, orgId: org.id, details: { slug: org.slug, role: adminRole }, request })
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
    const added = await service.addMember(orgId, normalizeEmail(request.body.email), request.body.role)
    await changed(request, 'membership_added', orgId, added.id, { role: added.role })
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
    const { previous, ...updated } = await service.changeRole(orgId, userId, request.body.role, ownActor(request))
    if (previous !== updated.role) await changed(request, 'membership_changed', orgId, userId, { from: previous, to: updated.role })
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
    const role = await service.removeMember(orgId, userId, ownActor(request))
    await changed(request, 'membership_removed', orgId, userId, { role })
    return reply.code(204).send()
  })
}
