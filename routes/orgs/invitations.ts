// Membership by invitation (CONTRACT §3). An org admin invites an address: the answer is the same
// 202 whether or not the address has an account, and the link goes only into the mail. The
// invitee, signed in with that (verified) address, accepts with the mailed token. Sending is
// limited per client address (class `invite`), per inviter and per organization (`invite`,
// through fastify.limitByKey) and per organization and address (`mail_target`).
import type { FastifyInstance } from 'fastify'
import type { AuthUser } from '../../lib/auth-user.ts'
import type { Invitation } from '../../plugins/orgs/index.ts'
import { addressKey, emailField, tokenField } from '../mail-fields.ts'
import { accountOf, by, managers } from './actors.ts'
import { accepted, bearer, errorRef, errors, invitation, invitationParams, orgParams, pendingInvitations } from './schemas.ts'

export interface InvitationRoutesOptions {
  adminRole: string
  roleSchema: { type: 'string', enum: readonly string[] }
}

/** One budget per inviter: our user id, or an external principal's issuer and subject. */
function inviterKey (user: AuthUser): string {
  return user.external ? `inviter:${user.iss} ${user.id}` : `inviter:${user.id}`
}

function shown ({ id, email, role, expiresAt }: Invitation) {
  return { id, email, role, expires_at: expiresAt.toISOString() }
}

/** Registers the invitation routes on the /orgs scope (whose onRequest hook authenticates). */
export default async function invitationRoutes (fastify: FastifyInstance, { adminRole, roleSchema }: InvitationRoutesOptions): Promise<void> {
  const service = fastify.orgs
  const asAdmin = [fastify.requireOrgRole(adminRole), managers]

  fastify.post<{ Params: { orgId: string }, Body: { email: string, role: string } }>('/:orgId/members', {
    schema: {
      tags: ['orgs'],
      summary: 'Invite an address to the organization (org admin)',
      description: 'Mails `<APP_URL>/accept-invite?token=...` to the address; the invitee becomes a member by accepting it (POST /orgs/invitations/accept). The same 202 whether or not the address has an account. Inviting an address again replaces its pending invitation (new link, role and expiry; the old link stops working). 409 when the address belongs to a member already.',
      security: bearer,
      params: orgParams,
      body: {
        type: 'object',
        properties: { email: emailField, role: roleSchema },
        required: ['email', 'role'],
        additionalProperties: false
      },
      response: { 202: invitation, ...errors, 429: errorRef }
    },
    config: { rateLimitClass: 'invite' },
    preHandler: asAdmin
  }, async (request, reply) => {
    const { orgId } = request.params
    const email = fastify.credentials.normalizeEmail(request.body.email)
    // Counted before anything is looked up, for every address alike: the limit itself tells nothing.
    await fastify.limitByKey('invite', inviterKey(request.user!), request)
    await fastify.limitByKey('invite', `org:${orgId}`, request)
    await fastify.limitByKey('mail_target', `invite:${orgId}:${addressKey(email)}`, request)
    const sent = await service.invite(orgId, email, request.body.role, by(request))
    return reply.code(202).send(shown(sent))
  })

  fastify.get<{ Params: { orgId: string } }>('/:orgId/invitations', {
    schema: {
      tags: ['orgs'],
      summary: 'The organization\'s pending invitations (org admin)',
      description: 'Neither accepted, revoked nor expired; never a token.',
      security: bearer,
      params: orgParams,
      response: { 200: pendingInvitations, ...errors }
    },
    preHandler: asAdmin
  }, async (request) => {
    const pending = await service.listInvitations(request.params.orgId)
    return pending.map((p) => ({ ...shown(p), created_at: p.createdAt.toISOString(), invited_by: p.invitedBy }))
  })

  fastify.delete<{ Params: { orgId: string, id: string } }>('/:orgId/invitations/:id', {
    schema: {
      tags: ['orgs'],
      summary: 'Revoke a pending invitation (org admin); its link stops working',
      security: bearer,
      params: invitationParams,
      response: { 204: { type: 'null', description: 'Revoked' }, ...errors }
    },
    preHandler: asAdmin
  }, async (request, reply) => {
    await service.revokeInvitation(request.params.orgId, request.params.id, by(request))
    return reply.code(204).send()
  })

  fastify.post<{ Body: { token: string } }>('/invitations/accept', {
    schema: {
      tags: ['orgs'],
      summary: 'Accept an invitation with the token of its mail',
      description: 'The caller\'s account must have the invited address, confirmed (EMAIL_NOT_VERIFIED otherwise; FORBIDDEN for another address; the link stays usable). A link works once, even when sent several times at once; an unknown, expired, revoked or used one is INVALID_INVITATION. 409 for a member already.',
      security: bearer,
      body: { type: 'object', properties: { token: tokenField }, required: ['token'], additionalProperties: false },
      response: { 200: accepted, ...errors, 429: errorRef }
    },
    config: { rateLimitClass: 'login' }
  }, async (request) => {
    const user = accountOf(request, 'join organizations')
    const joined = await service.acceptInvitation(request.body.token, user.id, by(request))
    return { org_id: joined.orgId, role: joined.role }
  })
}
