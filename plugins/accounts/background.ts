// Work done after the request was answered (mail lookups and token writes), so that a request's
// answer and timing do not depend on what the work finds. Each task starts after a short random
// delay, so that its cost cannot be read off the answer it follows (nor off the next request's).
// Bounded; a failure is logged, never thrown.
import { randomInt } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'

export interface BackgroundOptions {
  concurrency: number
  maxQueued: number
  /** A task starts between these many milliseconds after it was queued. */
  delayMs: readonly [number, number]
}

export function createBackground (log: FastifyBaseLogger, options: BackgroundOptions) {
  const queue: Array<{ name: string, fn: () => Promise<void> }> = []
  const idleWaiters: Array<() => void> = []
  let running = 0

  function settle (): void {
    if (running === 0 && queue.length === 0) for (const resolve of idleWaiters.splice(0)) resolve()
  }

  function pump (): void {
    while (running < options.concurrency && queue.length > 0) {
      const task = queue.shift()!
      running++
      task.fn().catch((err: unknown) => {
        const { message, code } = (err ?? {}) as { message?: string, code?: string }
        log.error({ task: task.name, err: { message, code } }, `accounts: the ${task.name} task failed`)
      }).finally(() => {
        running--
        pump()
        settle()
      })
    }
  }

  return {
    /** Runs `fn` soon, after the current request; never throws. */
    run (name: string, fn: () => Promise<void>): void {
      if (queue.length >= options.maxQueued) {
        log.error({ task: name }, `accounts: the ${name} task was dropped: the task queue is full`)
        return
      }
      queue.push({ name, fn })
      const [min, max] = options.delayMs
      setTimeout(pump, max > min ? randomInt(min, max + 1) : min)
    },
    idle (): Promise<void> {
      if (running === 0 && queue.length === 0) return Promise.resolve()
      return new Promise((resolve) => idleWaiters.push(resolve))
    }
  }
}
