// Database errors (Prisma's and the drivers') classified into Gatehouse's coded errors: the one
// translation the store, the services and the error handler share.
import { gatehouseError, isGatehouseError, serviceUnavailable, type GatehouseError } from './errors.ts'
import { ValidationError } from './input.ts'

const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', // PostgreSQL: admin shutdown, crash shutdown, cannot connect now
  '53300', // too many connections
  '08000', '08001', '08003', '08004', '08006', // connection exceptions
  '3D000', '28000', '28P01', // PostgreSQL: no such database, authorization refused, bad password
  'SQLITE_BUSY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR', 'SQLITE_FULL'
])

const CONNECTION_KINDS = new Set(['DatabaseNotReachable', 'DatabaseDoesNotExist', 'DatabaseAccessDenied', 'SocketTimeout', 'ConnectionClosed', 'TooManyConnections'])

function* causes (err: unknown): Generator<Record<string, unknown>> {
  let current: unknown = err
  for (let depth = 0; depth < 6 && current !== null && typeof current === 'object'; depth++) {
    yield current as Record<string, unknown>
    // A raw query's failure (P2010) carries the driver adapter's error in `meta`, not as a cause.
    const adapterError = (current as { meta?: { driverAdapterError?: unknown } }).meta?.driverAdapterError
    current = (current as { cause?: unknown }).cause ?? adapterError
  }
}

// PostgreSQL: invalid byte sequence (a NUL in text) and untranslatable character.
const UNSTORABLE_CODES = new Set(['22021', '22P05'])

/** True when the database refused a value because of a character text cannot hold (input that reached it unchecked). */
function isUnstorableText (err: unknown): boolean {
  for (const e of causes(err)) {
    if (typeof e.code === 'string' && UNSTORABLE_CODES.has(e.code)) return true
    if (typeof e.originalCode === 'string' && UNSTORABLE_CODES.has(e.originalCode)) return true
    if (typeof e.message === 'string' && /invalid byte sequence for encoding "UTF8": 0x00|unpaired surrogate/i.test(e.message)) return true
  }
  return false
}

/** True when `err` says the database cannot be reached or used right now. */
export function isInfrastructureError (err: unknown): boolean {
  for (const e of causes(err)) {
    const name = e.name
    if (name === 'PrismaClientInitializationError' || name === 'PrismaClientRustPanicError') return true
    const code = e.code
    if (typeof code === 'string' && (/^P1\d{3}$/.test(code) || CONNECTION_CODES.has(code))) return true
    if (typeof e.kind === 'string' && CONNECTION_KINDS.has(e.kind)) return true
    if (typeof e.originalCode === 'string' && CONNECTION_CODES.has(e.originalCode)) return true
    if (typeof e.message === 'string' && /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Can't reach database server|database system is (shutting down|starting up)|The database is closed|Connection ended unexpectedly|is not currently accepting connections|the database system is in recovery mode/i.test(e.message)) return true
  }
  return false
}

/**
 * Unique violation (P2002) becomes CONFLICT, record not found (P2025) NOT_FOUND, an
 * unreachable database SERVICE_UNAVAILABLE; coded errors pass through; anything else is
 * returned unchanged (a programming error: the error handler logs it and answers 500).
 */
export function translatePrismaError (err: unknown): unknown {
  if (isGatehouseError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'P2002') return gatehouseError('CONFLICT', undefined, { cause: err })
  if (code === 'P2025') return gatehouseError('NOT_FOUND', undefined, { cause: err })
  if (isUnstorableText(err)) return new ValidationError('The request contains a character that cannot be stored (a NUL character or an unpaired surrogate)')
  if (isInfrastructureError(err)) return serviceUnavailable(err)
  return err
}

export function isUniqueViolation (err: unknown): err is GatehouseError {
  return isGatehouseError(err) && err.code === 'CONFLICT'
}
