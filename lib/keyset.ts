// Keyset pagination: an opaque cursor carries the (createdAt, id) of the last item of a page,
// so pages stay stable while rows are added and no OFFSET scan is needed.

export interface Cursor { at: Date, id: string }

export function encodeCursor (at: Date, id: string): string {
  return Buffer.from(JSON.stringify([at.toISOString(), id])).toString('base64url')
}

/** Prisma `where` for rows after the cursor in (createdAt, id) order. */
export function after (cursor: Cursor | null, direction: 'asc' | 'desc'): Record<string, unknown> {
  if (cursor === null) return {}
  const op = direction === 'asc' ? 'gt' : 'lt'
  return { OR: [{ createdAt: { [op]: cursor.at } }, { createdAt: cursor.at, id: { [op]: cursor.id } }] }
}
