// The paging querystring of the admin lists: page size and the opaque keyset cursor
// (lib/keyset.ts), parsed into Fastify's validation errors.
import type { Cursor } from '../../lib/keyset.ts'

export { after, encodeCursor, type Cursor } from '../../lib/keyset.ts'

export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 200

/** A 400 in Fastify's validation shape (the cursor is part of the querystring). */
export function badQuery (message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400, code: 'FST_ERR_VALIDATION', validation: [] })
}

/** The page size from the querystring (strings: query values are not coerced). */
export function pageSize (raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_LIMIT) throw badQuery(`querystring/limit must be between 1 and ${MAX_LIMIT}`)
  return n
}

export function decodeCursor (raw: string | undefined): Cursor | null {
  if (raw === undefined) return null
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      const at = new Date(parsed[0])
      if (!Number.isNaN(at.getTime()) && parsed[1].length <= 64) return { at, id: parsed[1] }
    }
  } catch {}
  throw badQuery('querystring/cursor is not a cursor returned by this endpoint')
}

export const pagingQuery = {
  limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: `Page size, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT})` },
  cursor: { type: 'string', maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'The `next` value of the previous page' }
} as const
