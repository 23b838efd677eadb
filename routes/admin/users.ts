// Account administration over Prisma. Changes that could leave the server without an active
// global admin (disable, delete, dropping the admin role) are serialised and checked in one
// transaction: PostgreSQL takes a transaction-scoped advisory lock, SQLite has one writer.
import type { PrismaClient, Provider } from '../../plugins/store/index.ts'
import { gatehouseError } from '../../lib/errors.ts'
import { roleList } from '../../plugins/rbac/hierarchy.ts'
import { after, encodeCursor, type Cursor } from './paging.ts'

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

const SELECT = { id: true, email: true, name: true, status: true, roles: true, createdAt: true, lastLoginAt: true, deletedAt: true, emailVerifiedAt: true } as const
const TX = { maxWait: 5_000, timeout: 10_000 }
/** Arbitrary constant key of the advisory lock that serialises global-admin changes (PostgreSQL). */
const ADMIN_LOCK_KEY = 727_001

function parseRoles (raw: string): string[] {
  try {
    return roleList(JSON.parse(raw))
  } catch {
    return []
  }
}

function toAdminUser (row: { id: string, email: string, name: string | null, status: string, roles: string, createdAt: Date, lastLoginAt: Date | null, deletedAt: Date | null, emailVerifiedAt: Date | null }): AdminUser {
  return { ...row, roles: parseRoles(row.roles), email_verified: row.emailVerifiedAt !== null }
}

export interface UserChange {
  user: AdminUser
  before: AdminUser
}

export function createUserAdmin (prisma: PrismaClient, provider: Provider, adminRole: string) {
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

  async function list (filter: { email?: string, status?: StatusFilter, limit: number, cursor: Cursor | null }) {
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

  /** Sets disabled and/or roles; CONFLICT when no active admin would be left. */
  async function update (id: string, change: { disabled?: boolean, roles?: string[] }): Promise<UserChange> {
    return prisma.$transaction(async (tx) => {
      await lockAdmins(tx)
      const before = await load(tx, id)
      const roles = change.roles ?? before.roles
      const status = change.disabled === undefined ? before.status : change.disabled ? 'disabled' : 'active'
      if (!keepsAnAdmin(before, status === 'active', roles) && await otherActiveAdmins(tx, id) === 0) {
        throw gatehouseError('CONFLICT', 'At least one active admin must remain')
      }
      const row = await tx.user.update({ where: { id }, data: { status, roles: JSON.stringify(roles) }, select: SELECT })
      return { before, user: toAdminUser(row) }
    }, TX)
  }

  /** Soft delete: deleted_at is set and every row is kept. CONFLICT for the last active admin. */
  async function softDelete (id: string): Promise<UserChange> {
    return prisma.$transaction(async (tx) => {
      await lockAdmins(tx)
      const before = await load(tx, id)
      if (!keepsAnAdmin(before, false, []) && await otherActiveAdmins(tx, id) === 0) {
        throw gatehouseError('CONFLICT', 'At least one active admin must remain')
      }
      const row = await tx.user.update({ where: { id }, data: { deletedAt: new Date() }, select: SELECT })
      return { before, user: toAdminUser(row) }
    }, TX)
  }

  return { list, update, softDelete }
}
