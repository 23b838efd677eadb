// gatehouse-audit: records security events without slowing the request that caused them.
// Events are queued and written in batches (createMany) shortly after; a failed write is
// retried once and then logged loudly with the events' types and ids (never dropped silently).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'

export interface AuditEventInput {
  /** e.g. 'register', 'login', 'refresh', 'refresh_reuse', 'logout', 'logout_all', ... */
  type: string
  outcome: 'success' | 'failure'
  reason?: string
  actorId?: string | null
  subjectId?: string | null
  orgId?: string | null
  /** Non-secret details only: never a password, token, hash or key. */
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
}

export interface Audit {
  /** Queues an event; returns at once. */
  record: (event: AuditEventInput) => void
  /** Writes every queued event now. */
  flush: () => Promise<void>
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

async function auditPlugin (fastify: FastifyInstance, options: AuditOptions): Promise<void> {
  const batchSize = options.batchSize ?? 100
  const interval = options.flushIntervalMs ?? 50
  let queue: Row[] = []
  let timer: NodeJS.Timeout | null = null
  let inFlight: Promise<void> = Promise.resolve()

  async function write (rows: Row[]): Promise<void> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        await fastify.store.prisma.auditEvent.createMany({ data: rows })
        return
      } catch (err) {
        if (attempt === 2) {
          fastify.log.error({ err, lost: rows.map((r) => ({ type: r.type, outcome: r.outcome, actorId: r.actorId, subjectId: r.subjectId, at: r.createdAt })) },
            `AUDIT WRITE FAILED: ${rows.length} audit event(s) could not be stored`)
        }
      }
    }
  }

  function flush (): Promise<void> {
    if (timer !== null) { clearTimeout(timer); timer = null }
    if (queue.length === 0) return inFlight
    const rows = queue
    queue = []
    inFlight = inFlight.then(() => write(rows))
    return inFlight
  }

  function record (event: AuditEventInput): void {
    const request = event.request
    queue.push({
      type: event.type,
      outcome: event.outcome,
      reason: event.reason ?? null,
      actorId: event.actorId ?? null,
      subjectId: event.subjectId ?? null,
      orgId: event.orgId ?? null,
      ip: event.ip ?? request?.ip ?? null,
      userAgent: (event.userAgent ?? request?.headers['user-agent'] ?? null)?.slice(0, 512) ?? null,
      details: event.details === undefined ? null : JSON.stringify(event.details),
      createdAt: new Date()
    })
    if (queue.length >= batchSize) void flush()
    else if (timer === null) timer = setTimeout(() => { void flush() }, interval)
  }

  fastify.decorate('audit', { record, flush })
  fastify.addHook('onClose', async () => { await flush() })
}

export const audit = fp(auditPlugin, { name: 'gatehouse-audit', fastify: '5.x', dependencies: ['gatehouse-store'] })
export default audit
