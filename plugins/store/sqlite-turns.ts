// One event-loop turn per SQLite statement or transaction.
//
// better-sqlite3 runs every statement on the JavaScript thread and the driver adapter answers with
// an already-resolved promise. Without a pause, the queries of every request read in one poll
// phase run back to back, with their continuations (signing, responses), as one long turn of the
// event loop; and libuv accepts one new connection per turn (libuv 1.45, "don't accept()
// connections in a loop"), so under load a client that opens a connection waits a turn of tens or
// hundreds of milliseconds per connection ahead of it (docs/sessions.md, "the SQLite tail").
//
// Here each top-level query and each transaction waits for its own turn: a FIFO that lets one
// waiter through per check phase (setImmediate), so sockets are polled and connections accepted
// between any two of them, as they are between the answers of an asynchronous driver. Statements
// inside a transaction do not wait (the transaction holds the adapter's lock; waiting would only
// hold it longer). A turn is not a lock: nothing is held while waiting for one.

/** A FIFO of callers each let through on a later check phase of the event loop, one per phase. */
export interface Turns {
  /** Resolves on a later turn of the event loop, after every caller that asked before. */
  next: () => Promise<void>
  /** Callers waiting (for tests and diagnostics). */
  waiting: () => number
}

export function createTurns (): Turns {
  let queue: Array<() => void> = []
  let head = 0
  let scheduled = false

  function grant (): void {
    const resolve = queue[head]
    queue[head++] = noop
    if (head === queue.length) {
      queue = []
      head = 0
    } else if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head)
      head = 0
    }
    // Scheduled from the check phase, the next grant runs on the next turn, after a poll phase.
    if (queue.length > head) setImmediate(grant)
    else scheduled = false
    resolve()
  }

  return {
    next: () => new Promise<void>((resolve) => {
      queue.push(resolve)
      if (!scheduled) {
        scheduled = true
        setImmediate(grant)
      }
    }),
    waiting: () => queue.length - head
  }
}

function noop (): void {}

type Connect<A> = () => Promise<A>
interface AdapterLike {
  queryRaw: (...args: never[]) => Promise<unknown>
  executeRaw: (...args: never[]) => Promise<unknown>
  executeScript: (script: string) => Promise<unknown>
  startTransaction: (...args: never[]) => Promise<unknown>
}

const PACED = new Set(['queryRaw', 'executeRaw', 'executeScript', 'startTransaction'])

/** The adapter with each top-level query, script and transaction start waiting for a turn. */
export function pacedAdapter<A extends AdapterLike> (adapter: A, turns: Turns): A {
  return new Proxy(adapter, {
    get (target, prop) {
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      if (typeof prop === 'string' && PACED.has(prop)) {
        return async (...args: unknown[]) => {
          await turns.next()
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
        }
      }
      return (value as (...a: unknown[]) => unknown).bind(target)
    }
  })
}

/**
 * A driver adapter factory (`new PrismaBetterSQLite3(...)`) whose connections are paced: every
 * statement or transaction they start waits for its own turn of the event loop. The store does this
 * for the client it creates; an app that hands the store its own SQLite client can do the same.
 */
export function pacedSqliteAdapter<F extends { connect: Connect<AdapterLike> }> (factory: F, turns: Turns = createTurns(), onConnect?: (adapter: AdapterLike) => void | Promise<void>): F {
  return new Proxy(factory, {
    get (target, prop) {
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      if (prop === 'connect' || prop === 'connectToShadowDb') {
        return async () => {
          const paced = pacedAdapter(await (value as Connect<AdapterLike>).call(target), turns)
          if (prop === 'connect') await onConnect?.(paced)
          return paced
        }
      }
      return (value as (...a: unknown[]) => unknown).bind(target)
    }
  })
}
