// The mail queue: sending happens after the request that asked for it has been answered, with
// retries and an exponential back-off. A mail that cannot be delivered is logged once, loudly,
// with its template and recipient but never its content (it may carry a single-use link).
import type { FastifyBaseLogger } from 'fastify'
import type { MailTransport, OutgoingMail } from './transport.ts'

export interface QueuedMail {
  template: string
  mail: OutgoingMail
}

export interface MailQueueOptions {
  /** Attempts per mail before it is given up. @default 4 */
  attempts: number
  /** Wait before the first retry; each further retry waits 4 times longer. @default 1000 */
  retryDelayMs: number
  /** Mails sent at the same time. @default 2 */
  concurrency: number
  /** Mails held at most (queued or waiting to retry); beyond that a new mail is refused and logged. @default 10000 */
  maxQueued: number
}

export interface MailQueueStats {
  sent: number
  failed: number
  retried: number
  queued: number
  inFlight: number
}

/** `a***@example.com`: enough to find the mail in the server's log, not the whole address. */
export function maskAddress (address: string): string {
  const at = address.lastIndexOf('@')
  if (at <= 0) return '***'
  return `${address[0]}***${address.slice(at)}`
}

export function createMailQueue (transport: MailTransport, log: FastifyBaseLogger, options: MailQueueOptions) {
  const ready: Array<{ item: QueuedMail, attempt: number }> = []
  const waiting = new Map<NodeJS.Timeout, { item: QueuedMail, attempt: number }>()
  const idleWaiters: Array<() => void> = []
  let inFlight = 0
  let closed = false
  const stats = { sent: 0, failed: 0, retried: 0 }

  function held (): number {
    return ready.length + waiting.size + inFlight
  }

  function settleIdle (): void {
    if (held() !== 0) return
    for (const resolve of idleWaiters.splice(0)) resolve()
  }

  function giveUp (item: QueuedMail, attempts: number, err: unknown, why: string): void {
    stats.failed++
    const { message, code, responseCode } = (err ?? {}) as { message?: string, code?: string, responseCode?: number }
    log.error({
      mail: { template: item.template, to: maskAddress(item.mail.to), attempts },
      err: { message, code, responseCode }
    }, `mailer: a ${item.template} mail could not be delivered (${why})`)
  }

  function pump (): void {
    while (!closed && inFlight < options.concurrency && ready.length > 0) {
      const job = ready.shift()!
      inFlight++
      transport.send(job.item.mail).then(() => {
        stats.sent++
        log.info({ mail: { template: job.item.template, to: maskAddress(job.item.mail.to), attempt: job.attempt } }, 'mailer: mail sent')
      }, (err: unknown) => {
        if (job.attempt >= options.attempts || closed) {
          giveUp(job.item, job.attempt, err, closed ? 'the server is closing' : `gave up after ${job.attempt} attempts`)
          return
        }
        stats.retried++
        const delay = options.retryDelayMs * 4 ** (job.attempt - 1)
        const { message, code } = err as { message?: string, code?: string }
        log.warn({ mail: { template: job.item.template, to: maskAddress(job.item.mail.to), attempt: job.attempt }, err: { message, code }, retryInMs: delay }, 'mailer: sending failed; will retry')
        const timer = setTimeout(() => {
          waiting.delete(timer)
          ready.push({ item: job.item, attempt: job.attempt + 1 })
          pump()
        }, delay)
        timer.unref()
        waiting.set(timer, job)
      }).finally(() => {
        inFlight--
        pump()
        settleIdle()
      })
    }
    settleIdle()
  }

  return {
    /** Queues a mail; returns at once. False (and a log line) when the queue is full or closed. */
    enqueue (item: QueuedMail): boolean {
      if (closed || held() >= options.maxQueued) {
        giveUp(item, 0, undefined, closed ? 'the server is closing' : 'the mail queue is full')
        return false
      }
      ready.push({ item, attempt: 1 })
      queueMicrotask(pump)
      return true
    },
    /** Resolves when every queued mail was sent or given up. */
    idle (): Promise<void> {
      if (held() === 0) return Promise.resolve()
      return new Promise((resolve) => idleWaiters.push(resolve))
    },
    /** Sends what is ready (up to `graceMs`), gives up the mails waiting for a retry, closes the transport. */
    async close (graceMs = 5000): Promise<void> {
      // Referenced timers: closing keeps the process alive until the mails are out or the grace ends.
      let poll: NodeJS.Timeout | undefined
      let grace: NodeJS.Timeout | undefined
      const drained = new Promise<void>((resolve) => {
        const check = (): void => { if (ready.length === 0 && inFlight === 0) resolve(); else poll = setTimeout(check, 20) }
        check()
      })
      await Promise.race([drained, new Promise((resolve) => { grace = setTimeout(resolve, graceMs) })])
      clearTimeout(poll)
      clearTimeout(grace)
      closed = true
      for (const [timer, job] of waiting) {
        clearTimeout(timer)
        giveUp(job.item, job.attempt, undefined, 'the server is closing')
      }
      waiting.clear()
      for (const job of ready.splice(0)) giveUp(job.item, job.attempt - 1, undefined, 'the server is closing')
      transport.close()
      settleIdle()
    },
    stats (): MailQueueStats {
      return { ...stats, queued: ready.length + waiting.size, inFlight }
    }
  }
}

export type MailQueue = ReturnType<typeof createMailQueue>
