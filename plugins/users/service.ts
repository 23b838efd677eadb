// Account administration: the one place where accounts are created by an operator, disabled,
// enabled, deleted or given global roles, whichever door the change comes through (the /admin
// routes, the CLI, an app). Every change keeps the rules: roles must be roles of the global
// hierarchy; no change may leave the server without an active global admin (serialised in one
// transaction: PostgreSQL takes a transaction-scoped advisory lock, SQLite has one writer); the
// change takes effect on the user's next request on every instance (cached state dropped,
// sessions revoked when the account is shut); and it is audited through gatehouse-audit.
import type { FastifyRequest } from 'fastify'
import type { PrismaClient, Provider } from '../store/index.ts'
import { gatehouseError } from '../../lib/errors.ts'
import { after, encodeCursor, type Cursor } from '../../lib/keyset.ts'
import { parseRoles } from '../../lib/roles.ts'
import { AUDIT_EVENTS, type Audit, type AuditEventType } from '../audit/index.ts'

type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

export type StatusFilter = 'active' | 'disabled' | 'deleted'

export interface AdminUser {
  id: string
  email: string
  name: string | null
  status: string
  roles: string[]
  createdAt: Date
  lastLoginAt: Date | null
  deletedAt: Date | null
  email_verified: boolean
  emailVerifiedAt: Date | null
}

export interface UserChange {
  user: AdminUser
  before: AdminUser
}

/** Who makes a change and through which door: recorded with the audit event. */
export interface ChangeContext {
  /** The acting user (null for the CLI and the bootstrap). */
  actorId?: string | null
  /** The HTTP request, for the audit event's IP and user agent. */
  request?: FastifyRequest
  /** A door other than HTTP, e.g. 'cli'. */
  via?: string
}

export interface UsersDeps {
  prisma: PrismaClient
  provider: Provider
  /** The global role that administers the server. */
  adminRole: string
  /** True for a role of the global hierarchy. */
  isRole: (role: unknown) => role is string
  tokens: { userChanged: (userId: string) => Promise<void> }
  credentials: {
    forgetUser: (userId: string) => Promise<void>
    normalizeEmail: (email: string) => string
    register: (input: { email: string, password: string, name?: string | null }, request?: FastifyRequest) => Promise<{ id: string, email: string }>
  }
  sessions: { revokeAllFamilies: (userId: string, reason?: string) => Promise<number> }
  audit: Pick<Audit, 'record'>
}

const SELECT = { id: true, email: true, name: true, status: true, roles: true, createdAt: true, lastLoginAt: true, deletedAt: true, emailVerifiedAt: true } as const
const TX = { maxWait: 5_000, timeout: 10_000 }
/** Arbitrary constant key of the advisory lock that serialises global-admin changes (PostgreSQL). */
const ADMIN_LOCK_KEY = 727_001
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function toAdminUser (row: { id: string, email: string, name: string | null, status: string, roles: string, createdAt: Date, lastLoginAt: Date | null, deletedAt: Date | null, emailVerifiedAt: Date | null }): AdminUser {
  return { ...row, roles: parseRoles(row.roles), email_verified: row.emailVerifiedAt !== null }
}

function sameRoles (a: readonly string[], b: readonly string[]): boolean {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort())
}

export function createUsers (deps: UsersDeps) {
  const { prisma, provider, adminRole } = deps

  function statusWhere (status: StatusFilter | undefined): Record<string, unknown> {
    if (status === 'deleted') return { deletedAt: { not: null } }
    if (status === undefined) return { deletedAt: null }
    return { deletedAt: null, status }
  }

  /**
   * The email filter as a literal substring: Prisma's `contains` is a LIKE whose `%` and `_` would
   * otherwise be wildcards (`?email=%` matched every account). PostgreSQL's LIKE escapes with a
   * backslash; SQLite's has no escape character, so there a filter with one of them is matched
   * with instr().
   */
  async function emailWhere (text: string): Promise<Record<string, unknown>> {
    if (!/[%_\\]/.test(text)) return { email: { contains: text } }
    if (provider === 'postgresql') return { email: { contains: text.replace(/[%_\\]/g, (c) => `\\${c}`) } }
    const rows = await prisma.$queryRawUnsafe<Array<{ id: string }>>('SELECT id FROM users WHERE instr(email, ?) > 0', text)
    return { id: { in: rows.map((row) => row.id) } }
  }

  /** INVALID_ROLE unless `roles` is a non-empty list of distinct roles of the global hierarchy. */
  function checkRoles (roles: unknown): string[] {
    if (!Array.isArray(roles) || roles.length === 0) throw gatehouseError('INVALID_ROLE', 'At least one role is required')
    for (const role of roles) {
      if (!deps.isRole(role)) throw gatehouseError('INVALID_ROLE', `${JSON.stringify(role)} is not a global role`)
    }
    if (new Set(roles).size !== roles.length) throw gatehouseError('INVALID_ROLE', 'A role is listed twice')
    return [...roles] as string[]
  }

  function record (type: AuditEventType, subjectId: string, ctx: ChangeContext, details?: Record<string, unknown>): void {
    const withVia = ctx.via === undefined ? details : { ...details, via: ctx.via }
    deps.audit.record({ type, outcome: 'success', actorId: ctx.actorId ?? null, subjectId, details: withVia, request: ctx.request })
  }

  async function lockAdmins (tx: Tx): Promise<void> {
    if (provider === 'postgresql') await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${ADMIN_LOCK_KEY})`)
  }

  /** Active, not deleted users holding the admin role, other than `userId`. */
  async function otherActiveAdmins (tx: Tx, userId: string): Promise<number> {
    const rows = await tx.user.findMany({ where: { id: { not: userId }, deletedAt: null, status: 'active', roles: { contains: `"${adminRole}"` } }, select: { roles: true } })
    return rows.filter((r) => parseRoles(r.roles).includes(adminRole)).length
  }

  async function load (tx: Tx, id: string) {
    const row = await tx.user.findUnique({ where: { id }, select: SELECT })
    if (row === null || row.deletedAt !== null) throw gatehouseError('NOT_FOUND', 'No such user')
    return toAdminUser(row)
  }

  function keepsAnAdmin (before: AdminUser, active: boolean, roles: string[]): boolean {
    const wasAdmin = before.status === 'active' && before.roles.includes(adminRole)
    return !wasAdmin || (active && roles.includes(adminRole))
  }

  /** Makes a change effective at once: cached state dropped everywhere, sessions killed when the account is shut. */
  async function enforce (change: UserChange, reason: string): Promise<void> {
    const id = change.user.id
    const shut = change.user.deletedAt !== null || change.user.status !== 'active'
    // The cached state first: it alone already makes every live token of a shut account fail.
    await deps.tokens.userChanged(id)
    await deps.credentials.forgetUser(id)
    if (shut) await deps.sessions.revokeAllFamilies(id, reason)
  }

  return {
    adminRole,

    async list (filter: { email?: string, status?: StatusFilter, limit: number, cursor: Cursor | null }) {
      const where = {
        ...statusWhere(filter.status),
        ...(filter.email !== undefined ? await emailWhere(filter.email.trim().toLowerCase()) : {})
      }
      const [rows, total] = await Promise.all([
        prisma.user.findMany({ where: { AND: [where, after(filter.cursor, 'asc')] }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: filter.limit + 1, select: SELECT }),
        prisma.user.count({ where })
      ])
      const page = rows.slice(0, filter.limit)
      const last = page[page.length - 1]
      return { items: page.map(toAdminUser), total, next: rows.length > filter.limit && last !== undefined ? encodeCursor(last.createdAt, last.id) : null }
    },

    /** The (not deleted) account with this id or email; NOT_FOUND otherwise. */
    async find (idOrEmail: string): Promise<AdminUser> {
      const where = UUID.test(idOrEmail) ? { id: idOrEmail.toLowerCase() } : { email: deps.credentials.normalizeEmail(idOrEmail) }
      const row = await prisma.user.findUnique({ where, select: SELECT })
      if (row === null || row.deletedAt !== null) throw gatehouseError('NOT_FOUND', 'No such user')
      return toAdminUser(row)
    },

    /**
     * Creates an account with a password (the password policy applies; EMAIL_TAKEN, WEAK_PASSWORD)
     * and the given global roles (INVALID_ROLE).
     */
    async create (input: { email: string, password: string, name?: string | null, roles?: string[] }, ctx: ChangeContext = {}): Promise<AdminUser> {
      const roles = input.roles === undefined ? undefined : checkRoles(input.roles)
      const created = await deps.credentials.register({ email: input.email, password: input.password, name: input.name ?? null }, ctx.request)
      let user = toAdminUser(await prisma.user.findUniqueOrThrow({ where: { id: created.id }, select: SELECT }))
      if (roles !== undefined && !sameRoles(roles, user.roles)) {
        const row = await prisma.user.update({ where: { id: user.id }, data: { roles: JSON.stringify(roles) }, select: SELECT })
        record(AUDIT_EVENTS.ROLES_CHANGED, user.id, ctx, { from: user.roles, to: roles })
        user = toAdminUser(row)
      }
      return user
    },

    /**
     * Disables or enables an account and/or sets its global roles. INVALID_ROLE for a role outside
     * the hierarchy; CONFLICT when no active admin would be left; NOT_FOUND for no such account.
     */
    async update (id: string, change: { disabled?: boolean, roles?: string[] }, ctx: ChangeContext = {}): Promise<UserChange> {
      const roles = change.roles === undefined ? undefined : checkRoles(change.roles)
      const result = await prisma.$transaction(async (tx) => {
        await lockAdmins(tx)
        const before = await load(tx, id)
        const nextRoles = roles ?? before.roles
        const status = change.disabled === undefined ? before.status : change.disabled ? 'disabled' : 'active'
        if (!keepsAnAdmin(before, status === 'active', nextRoles) && await otherActiveAdmins(tx, id) === 0) {
          throw gatehouseError('CONFLICT', 'At least one active admin must remain')
        }
        const row = await tx.user.update({ where: { id }, data: { status, roles: JSON.stringify(nextRoles) }, select: SELECT })
        return { before, user: toAdminUser(row) }
      }, TX)
      const { before, user } = result
      await enforce(result, user.status === 'active' ? 'admin' : 'admin_disabled')
      if (before.status !== user.status) record(user.status === 'active' ? AUDIT_EVENTS.USER_ENABLED : AUDIT_EVENTS.USER_DISABLED, user.id, ctx)
      if (!sameRoles(before.roles, user.roles)) record(AUDIT_EVENTS.ROLES_CHANGED, user.id, ctx, { from: before.roles, to: user.roles })
      return result
    },

    /** Soft delete: deleted_at is set and every row is kept. CONFLICT for the last active admin. */
    async softDelete (id: string, ctx: ChangeContext = {}): Promise<UserChange> {
      const result = await prisma.$transaction(async (tx) => {
        await lockAdmins(tx)
        const before = await load(tx, id)
        if (!keepsAnAdmin(before, false, []) && await otherActiveAdmins(tx, id) === 0) {
          throw gatehouseError('CONFLICT', 'At least one active admin must remain')
        }
        const row = await tx.user.update({ where: { id }, data: { deletedAt: new Date() }, select: SELECT })
        return { before, user: toAdminUser(row) }
      }, TX)
      await enforce(result, 'admin_deleted')
      record(AUDIT_EVENTS.USER_DELETED, result.user.id, ctx)
      return result
    }
  }
}

export type Users = ReturnType<typeof createUsers>
