// /orgs: organizations and memberships (CONTRACT §3). Every route is authenticated; reading an
// organization needs a membership, changing its members needs the org `admin` role. A
// non-member gets 404 NOT_FOUND exactly as for an organization that does not exist, so the
// existence of an organization is not revealed to outsiders. Members join by invitation
// (invitations.ts).
import type { FastifyInstance } from 'fastify'
import { accountOf, by, managers } from './actors.ts'
import invitationRoutes from './invitations.ts'
import { bearer, errors, member, memberParams, orgDetail, orgParams, orgSummary } from './schemas.ts'

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
    const user = accountOf(request, 'create organizations')
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

  await invitationRoutes(fastify, { adminRole, roleSchema })

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
