// gatehouse-audit: records security events without slowing the request that caused them.
// Events are queued and written in batches (multi-row INSERTs) shortly after. A failed write is
// retried with a short back-off and then logged loudly with the events' types and ids; a
// full queue is logged the same way: an event is never dropped silently. The queue is
// flushed when the server closes (before the store disconnects: hooks close in reverse).
// Details go through a sanitiser that strips anything shaped like a secret.
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sanitizeDetails, sanitizeText } from './sanitize.ts'
import { optionChecks } from '../../lib/options.ts'
import { inTransaction, sql, type PostgresConnection, type SqliteConnection, type SqlQuery } from '../../lib/sql-connection.ts'
import type { Provider } from '../store/index.ts'

export { sanitizeDetails, sanitizeText, isSecretKey, looksLikeSecret, REDACTED } from './sanitize.ts'

export { AUDIT_EVENTS, type AuditEventType } from './events.ts'

export interface AuditEventInput {
  /** e.g. 'register', 'login', 'refresh', 'refresh_reuse', 'logout', 'logout_all', ... (see AUDIT_EVENTS) */
  type: string
  outcome: 'success' | 'failure'
  reason?: string
  actorId?: string | null
  subjectId?: string | null
  orgId?: string | null
  /** Non-secret details only: never a password, token, hash or key (secret-looking keys and values are stripped). */
  details?: Record<string, unknown>
  /** Where ip and user agent are taken from. */
  request?: FastifyRequest
  ip?: string
  userAgent?: string
}

export interface AuditOptions {
  /** Flush when this many events are queued. @default 100 */
  batchSize?: number
  /** Flush at least this often (ms). @default 50 */
  flushIntervalMs?: number
  /** Attempts per batch before it is reported as lost. @default 3 */
  attempts?: number
  /** Events held while the database is failing; beyond that new events are reported as lost. @default 10000 */
  maxQueue?: number
}

export interface AuditStats {
  written: number
  /** Events that could not be stored (each logged at error level). */
  lost: number
  queued: number
}

export interface Audit {
  /** Queues an event; returns at once. */
  record: (event: AuditEventInput) => void
  /** Writes every queued event now (resolves when they are stored or reported lost). */
  flush: () => Promise<void>
  stats: () => AuditStats
}

declare module 'fastify' {
  interface FastifyInstance {
    audit: Audit
  }
}

interface Row {
  type: string
  outcome: string
  reason: string | null
  actorId: string | null
  subjectId: string | null
  orgId: string | null
  ip: string | null
  userAgent: string | null
  details: string | null
  createdAt: Date
}

export const DEFAULT_BATCH_SIZE = 100
export const DEFAULT_FLUSH_INTERVAL_MS = 50
export const DEFAULT_ATTEMPTS = 3
export const DEFAULT_MAX_QUEUE = 10_000
const RETRY_DELAY_MS = 100

const check = optionChecks('gatehouse-audit')

function positive (name: string, value: number | undefined, fallback: number): number {
  return check.integer(name, value, fallback, { min: 1 })
}

export function resolveOptions (input: AuditOptions = {}): Readonly<Required<AuditOptions>> {
  return Object.freeze({
    batchSize: positive('batchSize', input.batchSize, DEFAULT_BATCH_SIZE),
    flushIntervalMs: positive('flushIntervalMs', input.flushIntervalMs, DEFAULT_FLUSH_INTERVAL_MS),
    attempts: positive('attempts', input.attempts, DEFAULT_ATTEMPTS),
    maxQueue: positive('maxQueue', input.maxQueue, DEFAULT_MAX_QUEUE)
  })
}

function id (value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value.slice(0, 200) : null
}

/** The row stored for an event (sanitised; no request object kept). */
export function toRow (event: AuditEventInput, now = new Date()): Row {
  const request = event.request
  const details = sanitizeDetails(event.details)
  const userAgent = event.userAgent ?? request?.headers['user-agent']
  return {
    type: String(event.type).slice(0, 64),
    outcome: event.outcome === 'success' ? 'success' : 'failure',
    reason: sanitizeText(event.reason, 200),
    actorId: id(event.actorId),
    subjectId: id(event.subjectId),
    orgId: id(event.orgId),
    ip: id(event.ip ?? request?.ip),
    userAgent: sanitizeText(userAgent, 512),
    details: details === null ? null : JSON.stringify(details),
    createdAt: now
  }
}

const COLUMNS = ['id', 'type', 'outcome', 'reason', 'actor_id', 'subject_id', 'org_id', 'ip', 'user_agent', 'details', 'created_at']
/** Rows per INSERT statement: 11 values each, far below SQLite's and PostgreSQL's limits on bound values. */
const ROWS_PER_STATEMENT = 500

/**
 * A batch through the store's own connection (SQLite or PostgreSQL): multi-row INSERTs, all or
 * nothing like createMany (one statement, or a transaction when the batch needs more). Prisma's
 * createMany compiles and interprets a plan with a value object per parameter; under refresh load
 * that was most of the memory the process allocated on SQLite (docs/sessions.md, "Cost of a
 * rotation") and, on PostgreSQL, about a fifth of a refresh's CPU.
 */
async function insertDirect (direct: SqliteConnection | PostgresConnection, provider: Provider, rows: Row[]): Promise<void> {
  const statements: SqlQuery[] = []
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + ROWS_PER_STATEMENT)
    const args: unknown[] = []
    const values: string[] = []
    for (const r of chunk) {
      const n = args.length
      args.push(randomUUID(), r.type, r.outcome, r.reason, r.actorId, r.subjectId, r.orgId, r.ip, r.userAgent, r.details, r.createdAt)
      values.push(`(${COLUMNS.map((_c, j) => provider === 'postgresql' ? `$${n + j + 1}` : '?').join(', ')})`)
    }
    statements.push(sql(`INSERT INTO audit_events (${COLUMNS.join(', ')}) VALUES ${values.join(', ')}`, args))
  }
  const connection = await direct.connection()
  if (statements.length === 1) {
    await connection.executeRaw(statements[0])
    return
  }
  await inTransaction(connection, async (tx) => {
    for (const statement of statements) await tx.executeRaw(statement)
  })
}

function summary (rows: Row[]): Array<Record<string, unknown>> {
  return rows.slice(0, 100).map((r) => ({ type: r.type, outcome: r.outcome, reason: r.reason, actorId: r.actorId, subjectId: r.subjectId, orgId: r.orgId, at: r.createdAt.toISOString() }))
}

async function auditPlugin (fastify: FastifyInstance, input: AuditOptions): Promise<void> {
  const options = resolveOptions(input)
  let queue: Row[] = []
  let timer: NodeJS.Timeout | null = null
  let inFlight: Promise<void> = Promise.resolve()
  const counters = { written: 0, lost: 0 }

  function lose (rows: Row[], why: string, err?: unknown): void {
    counters.lost += rows.length
    fastify.log.error({ err: err === undefined ? undefined : { message: (err as Error).message, code: (err as { code?: unknown }).code }, lost: summary(rows), lostCount: rows.length },
      `AUDIT EVENTS LOST: ${rows.length} audit event(s) could not be stored (${why})`)
  }

  async function write (rows: Row[]): Promise<void> {
    let last: unknown
    for (let attempt = 1; attempt <= options.attempts; attempt++) {
      try {
        const direct = fastify.store.sqlite ?? fastify.store.postgres
        if (direct !== undefined) await insertDirect(direct, fastify.store.provider, rows)
        else await fastify.store.prisma.auditEvent.createMany({ data: rows })
        counters.written += rows.length
        return
      } catch (err) {
        last = err
        fastify.log.warn({ err: { message: (err as Error).message }, attempt, events: rows.length }, 'audit: write failed; retrying')
        if (attempt < options.attempts) await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * attempt))
      }
    }
    lose(rows, `database write failed ${options.attempts} times`, last)
  }

  function flush (): Promise<void> {
    if (timer !== null) { clearTimeout(timer); timer = null }
    if (queue.length === 0) return inFlight
    const rows = queue
    queue = []
    for (let i = 0; i < rows.length; i += options.batchSize) {
      const batch = rows.slice(i, i + options.batchSize)
      inFlight = inFlight.then(() => write(batch))
    }
    return inFlight
  }

  function record (event: AuditEventInput): void {
    let row: Row
    try {
      row = toRow(event)
    } catch (err) {
      fastify.log.error({ err: { message: (err as Error).message }, type: String(event?.type) }, 'AUDIT EVENT LOST: the event could not be prepared')
      counters.lost++
      return
    }
    if (queue.length >= options.maxQueue) {
      lose([row], `the audit queue is full (${options.maxQueue} events waiting)`)
      return
    }
    queue.push(row)
    if (queue.length >= options.batchSize) void flush()
    else if (timer === null) {
      timer = setTimeout(() => { void flush() }, options.flushIntervalMs)
      timer.unref?.()
    }
  }

  fastify.decorate('audit', Object.freeze({
    record,
    flush,
    stats: () => ({ ...counters, queued: queue.length })
  }))
  fastify.addHook('onClose', async () => { await flush() })
}

export const audit = fp(auditPlugin, { name: 'gatehouse-audit', fastify: '5.x', dependencies: ['gatehouse-store'] })
export default audit
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
