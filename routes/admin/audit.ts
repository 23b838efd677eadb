// Reading the audit log: newest first, keyset-paged, filtered by type, user (actor or
// subject) and time range.
import type { PrismaClient } from '../../plugins/store/index.ts'
import { after, encodeCursor, type Cursor } from './paging.ts'

export interface AuditFilter {
  type?: string
  userId?: string
  orgId?: string
  outcome?: 'success' | 'failure'
  from?: Date
  to?: Date
  limit: number
  cursor: Cursor | null
}

function parseDetails (raw: string | null): Record<string, unknown> | null {
  if (raw === null) return null
  try {
    const value: unknown = JSON.parse(raw)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : null
  } catch {
    return null
  }
}

export async function listAuditEvents (prisma: PrismaClient, filter: AuditFilter) {
  const where = {
    ...(filter.type !== undefined ? { type: filter.type } : {}),
    ...(filter.orgId !== undefined ? { orgId: filter.orgId } : {}),
    ...(filter.outcome !== undefined ? { outcome: filter.outcome } : {}),
    ...(filter.userId !== undefined ? { OR: [{ actorId: filter.userId }, { subjectId: filter.userId }] } : {}),
    ...(filter.from !== undefined || filter.to !== undefined
      ? { createdAt: { ...(filter.from !== undefined ? { gte: filter.from } : {}), ...(filter.to !== undefined ? { lte: filter.to } : {}) } }
      : {})
  }
  const rows = await prisma.auditEvent.findMany({
    where: { AND: [where, after(filter.cursor, 'desc')] },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: filter.limit + 1
  })
  const page = rows.slice(0, filter.limit)
  const last = page[page.length - 1]
  return {
    items: page.map((r) => ({ ...r, details: parseDetails(r.details) })),
    next: rows.length > filter.limit && last !== undefined ? encodeCursor(last.createdAt, last.id) : null
  }
}
