// Invitations to an organization: membership only with the invitee's consent.
//  - invite(): the same work and the same answer for an address with or without an account (the
//    one lookup, in one query, is whether it belongs to a member); one invitation per
//    organization and address, so inviting again replaces its token, role and expiry; the token
//    (lib/mail-token.ts) goes only into the mail, the row keeps its SHA-256.
//  - accept(): the caller's account must have the invitation's address, verified; the one request
//    whose conditional update claims the row wins, and the membership is created in the same
//    transaction (a caller who is already a member rolls it back: the invitation stays pending).
//  - revoke(): the token stops working; list(): pending invitations, never a token.
import type { FastifyRequest } from 'fastify'
import type { PrismaClient } from '../store/index.ts'
import { isUniqueViolation } from '../store/index.ts'
import type { Mailer } from '../mailer/index.ts'
import { isPlausibleEmail } from '../credentials/index.ts'
import { AUDIT_EVENTS, type Audit } from '../audit/index.ts'
import { gatehouseError, isGatehouseError, type ErrorCode } from '../../lib/errors.ts'
import { ValidationError } from '../../lib/input.ts'
import { OptionsError } from '../../lib/options.ts'
import { hashMailToken, isMailTokenShape, newMailToken } from '../../lib/mail-token.ts'

/** A pending invitation as the service reports it (never its token). */
export interface Invitation {
  id: string
  email: string
  role: string
  expiresAt: Date
  createdAt: Date
  invitedBy: string | null
}

/** Who acts, as in OrgChangeContext. */
export interface InvitationContext {
  actorId?: string | null
  request?: FastifyRequest
  via?: string
}

export interface InvitationsDeps {
  prisma: PrismaClient
  /** Null when gatehouse-mailer is not registered: invite() then fails with a clear message. */
  mailer: Pick<Mailer, 'send'> | null
  /** Links point to `<appUrl>/accept-invite?token=`. */
  appUrl: string
  /** Seconds an invitation stays valid. */
  ttlSeconds: number
  clock: () => number
  normalizeEmail: (email: string) => string
  checkRole: (role: unknown) => string
  membershipChanged: (userId: string, orgId: string) => Promise<void>
  audit: Pick<Audit, 'record'>
}

const TX = { maxWait: 5_000, timeout: 10_000 }
const PENDING = { acceptedAt: null, revokedAt: null } as const
const SELECT = { id: true, email: true, role: true, expiresAt: true, createdAt: true, invitedBy: true } as const

export function createInvitations (deps: InvitationsDeps) {
  const { prisma, clock } = deps

  function details (ctx: InvitationContext, values: Record<string, unknown>): Record<string, unknown> {
    return ctx.via === undefined ? values : { ...values, via: ctx.via }
  }

  /** One row per organization and address; a concurrent first invitation makes the other an update. */
  async function upsert (orgId: string, email: string, data: { role: string, tokenHash: string, invitedBy: string | null, expiresAt: Date, createdAt: Date }) {
    const fresh = { ...data, acceptedAt: null, acceptedBy: null, revokedAt: null }
    for (let attempt = 0; ; attempt++) {
      try {
        return await prisma.orgInvitation.upsert({
          where: { orgId_email: { orgId, email } },
          create: { orgId, email, ...fresh },
          update: fresh,
          select: SELECT
        })
      } catch (err) {
        if (!isUniqueViolation(err) || attempt > 0) throw err
      }
    }
  }

  /**
   * Invites `email` to the organization with `role` and mails it the link. NOT_FOUND: no such
   * organization; CONFLICT: the address belongs to a member already (members are no secret to an
   * org admin). Whether the address has an account changes nothing.
   */
  async function invite (orgId: string, email: string, role: string, ctx: InvitationContext = {}): Promise<Invitation> {
    deps.checkRole(role)
    const address = deps.normalizeEmail(email)
    if (!isPlausibleEmail(address)) throw new ValidationError('body/email must be an email address')
    const mailer = deps.mailer
    if (mailer === null) throw new OptionsError('gatehouse-orgs', 'mailer', 'gatehouse-orgs: invitations are mailed: register gatehouse-mailer before gatehouse-orgs')
    const org = await prisma.organization.findUnique({ where: { id: orgId }, select: { name: true } })
    if (org === null) throw gatehouseError('NOT_FOUND')
    const member = await prisma.membership.findFirst({ where: { orgId, user: { email: address, deletedAt: null } }, select: { id: true } })
    if (member !== null) throw gatehouseError('CONFLICT', 'This address belongs to a member of the organization already')
    const token = newMailToken()
    const now = new Date(clock())
    const invitation = await upsert(orgId, address, {
      role,
      tokenHash: hashMailToken(token),
      invitedBy: ctx.actorId ?? null,
      expiresAt: new Date(now.getTime() + deps.ttlSeconds * 1000),
      createdAt: now
    })
    mailer.send('orgInvitation', address, {
      link: `${deps.appUrl}/accept-invite?token=${encodeURIComponent(token)}`,
      expiresInMinutes: Math.round(deps.ttlSeconds / 60),
      orgName: org.name,
      role
    })
    deps.audit.record({ type: AUDIT_EVENTS.INVITATION_SENT, outcome: 'success', actorId: ctx.actorId ?? null, orgId, details: details(ctx, { invitationId: invitation.id, email: address, role }), request: ctx.request })
    return invitation
  }

  /**
   * The caller (`userId`, an account of this server) accepts the invitation of `token`.
   * INVALID_INVITATION: unknown, expired, revoked or used; FORBIDDEN: sent to another address;
   * EMAIL_NOT_VERIFIED: the caller's address is not confirmed yet; CONFLICT: already a member.
   * The token stays usable after the last three.
   */
  async function accept (token: unknown, userId: string, ctx: InvitationContext = {}): Promise<{ orgId: string, role: string }> {
    const fail = (reason: string, row: { id: string, orgId: string } | null, code: ErrorCode = 'INVALID_INVITATION', message?: string): never => {
      deps.audit.record({ type: AUDIT_EVENTS.INVITATION_ACCEPTED, outcome: 'failure', reason, actorId: userId, subjectId: userId, orgId: row?.orgId ?? null, details: row === null ? undefined : { invitationId: row.id }, request: ctx.request })
      throw gatehouseError(code, message)
    }
    if (!isMailTokenShape(token)) return fail('malformed', null)
    const row = await prisma.orgInvitation.findUnique({ where: { tokenHash: hashMailToken(token) } })
    if (row === null) return fail('unknown', null)
    if (row.acceptedAt !== null) return fail('used', row)
    if (row.revokedAt !== null) return fail('revoked', row)
    const now = new Date(clock())
    if (row.expiresAt.getTime() <= now.getTime()) return fail('expired', row)
    const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true, emailVerifiedAt: true, deletedAt: true } })
    if (user === null || user.deletedAt !== null) throw gatehouseError('USER_NOT_FOUND')
    if (user.email !== row.email) return fail('wrong_email', row, 'FORBIDDEN', 'This invitation was sent to another email address')
    if (user.emailVerifiedAt === null) return fail('email_not_verified', row, 'EMAIL_NOT_VERIFIED', 'Confirm the email address of this account before accepting the invitation')
    const role = deps.checkRole(row.role)
    let claimed: boolean
    try {
      claimed = await prisma.$transaction(async (tx) => {
        const won = await tx.orgInvitation.updateMany({
          where: { id: row.id, tokenHash: row.tokenHash, ...PENDING, expiresAt: { gt: now } },
          data: { acceptedAt: now, acceptedBy: userId }
        })
        if (won.count !== 1) return false
        if (await tx.membership.findUnique({ where: { orgId_userId: { orgId: row.orgId, userId } }, select: { id: true } }) !== null) {
          throw gatehouseError('CONFLICT', 'You are a member of this organization already')
        }
        await tx.membership.create({ data: { orgId: row.orgId, userId, role } })
        return true
      }, TX)
    } catch (err) {
      if (isUniqueViolation(err) || (isGatehouseError(err) && err.code === 'CONFLICT')) return fail('already_member', row, 'CONFLICT', 'You are a member of this organization already')
      throw err
    }
    if (!claimed) return fail('used', row)
    await deps.membershipChanged(userId, row.orgId)
    const done = { actorId: userId, subjectId: userId, orgId: row.orgId, request: ctx.request }
    deps.audit.record({ type: AUDIT_EVENTS.INVITATION_ACCEPTED, outcome: 'success', ...done, details: details(ctx, { invitationId: row.id, role }) })
    deps.audit.record({ type: AUDIT_EVENTS.MEMBERSHIP_ADDED, outcome: 'success', ...done, details: details(ctx, { role, invitationId: row.id }) })
    return { orgId: row.orgId, role }
  }

  /** The organization's pending invitations (not accepted, revoked or expired), oldest first. */
  async function list (orgId: string): Promise<Invitation[]> {
    return prisma.orgInvitation.findMany({ where: { orgId, ...PENDING, expiresAt: { gt: new Date(clock()) } }, orderBy: { createdAt: 'asc' }, select: SELECT })
  }

  /** Revokes a pending invitation of this organization; NOT_FOUND for any other id. */
  async function revoke (orgId: string, invitationId: string, ctx: InvitationContext = {}): Promise<void> {
    const now = new Date(clock())
    const revoked = await prisma.orgInvitation.updateMany({ where: { id: invitationId, orgId, ...PENDING, expiresAt: { gt: now } }, data: { revokedAt: now } })
    if (revoked.count !== 1) throw gatehouseError('NOT_FOUND', 'No such pending invitation')
    deps.audit.record({ type: AUDIT_EVENTS.INVITATION_REVOKED, outcome: 'success', actorId: ctx.actorId ?? null, orgId, details: details(ctx, { invitationId }), request: ctx.request })
  }

  return { invite, accept, list, revoke }
}

export type Invitations = ReturnType<typeof createInvitations>
