// A counting semaphore with a bounded wait queue: past `maxQueue` waiters, acquire() refuses at
// once instead of letting latency grow without limit (performance.md §3: argon2 caps a login
// endpoint near 180 verifications/s on two cores).

export class QueueFullError extends Error {
  override name = 'QueueFullError'
}

export interface Semaphore {
  /** Runs `fn` when a slot is free; rejects with QueueFullError when too many already wait. */
  run: <T>(fn: () => Promise<T>) => Promise<T>
  readonly active: number
  readonly waiting: number
}

export function createSemaphore (concurrency: number, maxQueue: number): Semaphore {
  let active = 0
  const queue: Array<() => void> = []

  function release (): void {
    const next = queue.shift()
    if (next !== undefined) next()
    else active--
  }

  async function run<T> (fn: () => Promise<T>): Promise<T> {
    if (active >= concurrency) {
      if (queue.length >= maxQueue) throw new QueueFullError('hashing queue is full')
      // The slot is handed over by release() without decrementing `active`.
      await new Promise<void>((resolve) => queue.push(resolve))
    } else {
      active++
    }
    try {
      return await fn()
    } finally {
      release()
    }
  }

  return {
    run,
    get active () { return active },
    get waiting () { return queue.length }
  }
}
