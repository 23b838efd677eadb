// Organizations and memberships, whichever door a change comes through. Every change of a
// membership that could leave an organization without an admin runs in a transaction that first
// locks the organization's row (an UPDATE: a row lock in PostgreSQL, the write lock in SQLite),
// so concurrent demotions or removals are serialised and the count of remaining admins they
// check is current. Roles must be roles of the organization hierarchy; every change drops the
// cached membership on every instance and is audited through gatehouse-audit.
import type { FastifyRequest } from 'fastify'
import type { PrismaClient } from '../store/index.ts'
import { isUniqueViolation } from '../store/index.ts'
import { gatehouseError } from '../../lib/errors.ts'
import { AUDIT_EVENTS, type Audit, type AuditEventType } from '../audit/index.ts'
import type { Mailer } from '../mailer/index.ts'
import { nextFreeSlug, slugify } from './slug.ts'
import { createInvitations } from './invitations.ts'

type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

export interface Member { id: string, email: string, name: string | null, role: string }

/** Who makes a change and through which door: recorded with the audit event. */
export interface OrgChangeContext {
  /** The acting principal, recorded as the actor. */
  actorId?: string | null
  /**
   * An own account acting as an org admin: its admin role is checked again under the lock (a
   * concurrent demotion of the actor wins). Unset for an external principal, the CLI or an app.
   */
  ownActorId?: string
  /** The HTTP request, for the audit event's IP and user agent. */
  request?: FastifyRequest
  /** A door other than HTTP, e.g. 'cli'. */
  via?: string
}

export interface OrgsDeps {
  prisma: PrismaClient
  /** The organization role that administers an organization. */
  adminRole: string
  /** True for a role of the organization hierarchy. */
  isOrgRole: (role: unknown) => role is string
  normalizeEmail: (email: string) => string
  /** Drops the cached membership of the user in the organization, on every instance. */
  membershipChanged: (userId: string, orgId: string) => Promise<void>
  audit: Pick<Audit, 'record'>
  /** Sends the invitation mails; without one, invite() fails with a message saying so. */
  mailer?: Pick<Mailer, 'send'> | null
  /** Where invitation links point (`<appUrl>/accept-invite?token=`). @default 'http://127.0.0.1' */
  appUrl?: string
  /** Seconds an invitation stays valid. @default 604800 (7 days) */
  invitationTtl?: number
  /** Milliseconds since the epoch. @default Date.now */
  clock?: () => number
}

export const DEFAULT_INVITATION_TTL = 7 * 86_400

const SLUG_ATTEMPTS = 5
const TX = { maxWait: 5_000, timeout: 10_000 }

export function createOrgs (deps: OrgsDeps) {
  const { prisma, adminRole } = deps

  function checkRole (role: unknown): string {
    if (!deps.isOrgRole(role)) throw gatehouseError('INVALID_ROLE', `${JSON.stringify(role)} is not an organization role`)
    return role
  }

  async function changed (type: AuditEventType, orgId: string, subjectId: string, ctx: OrgChangeContext, details: Record<string, unknown>): Promise<void> {
    await deps.membershipChanged(subjectId, orgId)
    deps.audit.record({ type, outcome: 'success', actorId: ctx.actorId ?? null, subjectId, orgId, details: ctx.via === undefined ? details : { ...details, via: ctx.via }, request: ctx.request })
  }

  async function freeSlug (base: string): Promise<string> {
    const rows = await prisma.organization.findMany({ where: { slug: { startsWith: base } }, select: { slug: true } })
    return nextFreeSlug(base, new Set(rows.map((r) => r.slug)))
  }

  /** Creates the organization with `userId` as its admin; the slug is made unique (suffix -2, -3, ...). */
  async function create (userId: string, name: string, ctx: OrgChangeContext = {}): Promise<{ id: string, name: string, slug: string }> {
    const org = await insert(userId, name)
    await deps.membershipChanged(userId, org.id)
    deps.audit.record({ type: AUDIT_EVENTS.ORG_CREATED, outcome: 'success', actorId: ctx.actorId ?? userId, subjectId: userId, orgId: org.id, details: { slug: org.slug, role: adminRole, ...(ctx.via === undefined ? {} : { via: ctx.via }) }, request: ctx.request })
    return org
  }

  async function insert (userId: string, name: string): Promise<{ id: string, name: string, slug: string }> {
    const base = slugify(name)
    for (let attempt = 1; ; attempt++) {
      const slug = attempt <= SLUG_ATTEMPTS ? await freeSlug(base) : `${base}-${Math.random().toString(36).slice(2, 8)}`
      try {
        return await prisma.organization.create({
          data: { name, slug, memberships: { create: { userId, role: adminRole } } },
          select: { id: true, name: true, slug: true }
        })
      } catch (err) {
        // Another organization took the slug between the read and the insert: try the next one.
        if (!isUniqueViolation(err) || attempt > SLUG_ATTEMPTS + 3) throw err
      }
    }
  }

  async function get (orgId: string) {
    const org = await prisma.organization.findUnique({
      where: { id: orgId },
      select: {
        id: true,
        name: true,
        slug: true,
        createdAt: true,
        memberships: {
          where: { user: { deletedAt: null } },
          orderBy: { createdAt: 'asc' },
          select: { role: true, user: { select: { id: true, email: true, name: true } } }
        }
      }
    })
    if (org === null) throw gatehouseError('NOT_FOUND')
    const { memberships, ...rest } = org
    return { ...rest, members: memberships.map((m) => ({ ...m.user, role: m.role })) }
  }

  /**
   * Adds the (not deleted) account with this email at once, without asking it: for an app's own
   * trusted code (provisioning). NOT_FOUND: no such account; CONFLICT: already a member. Never
   * expose it to org admins: they invite (invite()), and only the invitee's acceptance adds.
   */
  async function addMember (orgId: string, email: string, role: string, ctx: OrgChangeContext = {}): Promise<Member> {
    checkRole(role)
    const user = await prisma.user.findFirst({ where: { email: deps.normalizeEmail(email), deletedAt: null }, select: { id: true, email: true, name: true } })
    if (user === null) throw gatehouseError('NOT_FOUND', 'No account with this email')
    try {
      await prisma.membership.create({ data: { orgId, userId: user.id, role } })
    } catch (err) {
      if (isUniqueViolation(err)) throw gatehouseError('CONFLICT', 'This account is already a member of the organization')
      throw err
    }
    await changed(AUDIT_EVENTS.MEMBERSHIP_ADDED, orgId, user.id, ctx, { role })
    return { ...user, role }
  }

  async function lockOrg (tx: Tx, orgId: string): Promise<void> {
    const locked = await tx.organization.updateMany({ where: { id: orgId }, data: { updatedAt: new Date() } })
    if (locked.count === 0) throw gatehouseError('NOT_FOUND')
  }

  /** The actor's admin role, checked again under the lock: a concurrent demotion of the actor wins. */
  async function stillAdmin (tx: Tx, orgId: string, actorId: string | undefined): Promise<void> {
    if (actorId === undefined) return
    const actor = await tx.membership.findUnique({ where: { orgId_userId: { orgId, userId: actorId } }, select: { role: true } })
    if (actor?.role !== adminRole) throw gatehouseError('FORBIDDEN')
  }

  async function otherAdmins (tx: Tx, orgId: string, userId: string): Promise<number> {
    // Only an admin who can still sign in counts: a disabled or deleted co-admin cannot run the org.
    return tx.membership.count({ where: { orgId, role: adminRole, userId: { not: userId }, user: { deletedAt: null, status: 'active' } } })
  }

  async function membership (tx: Tx, orgId: string, userId: string) {
    const found = await tx.membership.findUnique({
      where: { orgId_userId: { orgId, userId } },
      select: { id: true, role: true, user: { select: { id: true, email: true, name: true, deletedAt: true } } }
    })
    if (found === null || found.user.deletedAt !== null) throw gatehouseError('NOT_FOUND', 'No such member')
    return found
  }

  /**
   * Changes a member's role; CONFLICT when it would demote the last admin. With `ctx.ownActorId`,
   * the actor must still be an admin once the organization is locked.
   */
  async function changeRole (orgId: string, userId: string, role: string, ctx: OrgChangeContext = {}): Promise<Member & { previous: string }> {
    checkRole(role)
    const result = await prisma.$transaction(async (tx) => {
      await lockOrg(tx, orgId)
      await stillAdmin(tx, orgId, ctx.ownActorId)
      const current = await membership(tx, orgId, userId)
      if (current.role === adminRole && role !== adminRole && await otherAdmins(tx, orgId, userId) === 0) {
        throw gatehouseError('CONFLICT', 'An organization must keep at least one admin')
      }
      if (current.role !== role) await tx.membership.update({ where: { id: current.id }, data: { role } })
      const { id, email, name } = current.user
      return { id, email, name, role, previous: current.role }
    }, TX)
    if (result.previous !== result.role) await changed(AUDIT_EVENTS.MEMBERSHIP_CHANGED, orgId, userId, ctx, { from: result.previous, to: result.role })
    return result
  }

  /** Removes a member; CONFLICT when it is the last admin. Returns the role the member had. */
  async function removeMember (orgId: string, userId: string, ctx: OrgChangeContext = {}): Promise<string> {
    const role = await prisma.$transaction(async (tx) => {
      await lockOrg(tx, orgId)
      await stillAdmin(tx, orgId, ctx.ownActorId)
      const current = await membership(tx, orgId, userId)
      if (current.role === adminRole && await otherAdmins(tx, orgId, userId) === 0) {
        throw gatehouseError('CONFLICT', 'An organization must keep at least one admin')
      }
      await tx.membership.delete({ where: { id: current.id } })
      return current.role
    }, TX)
    await changed(AUDIT_EVENTS.MEMBERSHIP_REMOVED, orgId, userId, ctx, { role })
    return role
  }

  const invitations = createInvitations({
    prisma,
    mailer: deps.mailer ?? null,
    appUrl: (deps.appUrl ?? 'http://127.0.0.1').replace(/\/+$/, ''),
    ttlSeconds: deps.invitationTtl ?? DEFAULT_INVITATION_TTL,
    clock: deps.clock ?? Date.now,
    normalizeEmail: deps.normalizeEmail,
    checkRole,
    membershipChanged: deps.membershipChanged,
    audit: deps.audit
  })

  return {
    adminRole,
    create,
    get,
    addMember,
    changeRole,
    removeMember,
    /** Mails an invitation; see plugins/orgs/invitations.ts. */
    invite: invitations.invite,
    acceptInvitation: invitations.accept,
    listInvitations: invitations.list,
    revokeInvitation: invitations.revoke
  }
}

export type Orgs = ReturnType<typeof createOrgs>
