// The global per-client budget (class `default`): the one budget every unclassed route shares.
// It is an abuse bound, not a brute-force defence, so it need not be exact across instances, and
// it runs on every request, so it must cost next to nothing:
//  - in memory, a fixed-window counter per key in one Map (an entry is reused from window to
//    window; a hit allocates nothing);
//  - with Redis and `slack` > 0, hits are counted locally and reconciled in batches: every
//    `intervalMs`, or as soon as a key has `slack / 2` unsent hits, one pipeline adds each dirty
//    key's unsent hits to its Redis counter (INCRBY) and reads back the total of every instance.
//    A key is refused once the last known total plus this instance's unconfirmed hits reaches the
//    budget, and an instance never holds more than `slack` unconfirmed hits of one key: a hit
//    beyond that waits for the answer. Overshoot per key and window: at most N x slack - 1 over
//    `max` with N instances (docs/rate-limit.md derives it);
//  - with Redis and `slack` 0, every hit is one exact round trip, as the other classes are.
// A Redis fault never refuses a request of this class: the key is counted in this instance's
// memory (its unsent hits are kept and sent once Redis answers again).
import type { Redis } from 'ioredis'
import { StoreTimeoutError, withTimeout, type MemoryCounters, type RedisCounters, type StoreHealth } from './counters.ts'

/** One key's window. The object is reused when a window ends, so steady traffic allocates nothing. */
interface Entry {
  key: string
  /** When the window ends (this instance's clock). */
  resetAt: number
  /** The total of every instance, as the last answer from Redis gave it (memory: 0). */
  known: number
  /** Hits accepted here and not yet sent (memory: every hit of the window). */
  unsent: number
  /** Hits sent in the reconcile that is in flight. */
  inflight: number
  /** Bumped when the window ends, so a late answer for the old window is ignored. */
  epoch: number
  /** Whether a reconcile of this key is in flight. */
  flushing: boolean
  /** Whether the key is on the dirty list. */
  dirty: boolean
  /** Hits waiting for the reconcile in flight (slack spent). */
  waiters: Array<() => void> | null
}

// Adds a batch to a counter and reads back the total and the rest of the window. A counter
// that somehow lost its expiry gets it back, so no counter can live forever.
const ADD_SCRIPT = `
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {total, ttl}
`
const ADD_COMMAND = 'gatehouseRateLimitAdd'

export interface GlobalBudgetSync {
  redis: Redis
  /** Prefix of the Redis keys, bucket included (`gatehouse:rl:default:`). */
  prefix: string
  /** Hits of one key this instance may accept before Redis has confirmed them; 0 = exact. */
  slack: number
  /** How often dirty keys are reconciled. */
  intervalMs: number
  timeoutMs: number
  /** The exact counters (slack 0). */
  exact: RedisCounters
}

export interface GlobalBudgetOptions {
  clock: () => number
  maxEntries: number
  health: StoreHealth
  /** The memory counters an exact (slack 0) hit falls back to on a Redis fault. */
  fallback: MemoryCounters
  sync: GlobalBudgetSync | null
}

type Pipeline = ReturnType<Redis['pipeline']> & Record<string, (...args: Array<string | number>) => unknown>

/** A hit's place in its window (more than `max`: refused) and the milliseconds left in the window. */
export interface BudgetState {
  current: number
  ttl: number
}

/**
 * `hit(key, max, windowMs)` counts one request. Usually synchronous: it returns the hit's place
 * in the window (more than `max`: refused) and leaves the rest of the window in `ttl`, so a hit
 * allocates nothing. When it has to wait for Redis it returns a promise of both instead.
 */
export class GlobalBudget {
  /** Milliseconds left in the window of the last hit. */
  ttl = 0
  readonly #entries = new Map<string, Entry>()
  readonly #dirty: Entry[] = []
  readonly #clock: () => number
  readonly #maxEntries: number
  readonly #health: StoreHealth
  readonly #fallback: MemoryCounters
  readonly #sync: GlobalBudgetSync | null
  readonly #threshold: number
  #timer: NodeJS.Timeout | null = null
  /** Reconciles in flight. */
  readonly #pending = new Set<Promise<void>>()
  #faulty = false
  #closed = false
  /** Reconcile round trips sent (for tests and diagnostics). */
  reconciles = 0

  constructor (options: GlobalBudgetOptions) {
    this.#clock = options.clock
    this.#maxEntries = options.maxEntries
    this.#health = options.health
    this.#fallback = options.fallback
    this.#sync = options.sync
    this.#threshold = Math.max(1, Math.ceil((options.sync?.slack ?? 0) / 2))
    if (this.#sync !== null && this.#sync.slack > 0) {
      const client = this.#sync.redis
      if (typeof (client as unknown as Record<string, unknown>)[ADD_COMMAND] !== 'function') client.defineCommand(ADD_COMMAND, { numberOfKeys: 1, lua: ADD_SCRIPT })
    }
  }

  get size (): number {
    return this.#entries.size
  }

  hit (key: string, max: number, windowMs: number): number | Promise<BudgetState> {
    const sync = this.#sync
    if (sync !== null && sync.slack === 0) return this.#exact(key, windowMs)
    const now = this.#clock()
    const entry = this.#entry(key, now, windowMs)
    this.ttl = entry.resetAt - now
    const before = entry.known + entry.unsent + entry.inflight
    if (before >= max) return before + 1
    if (sync === null) {
      entry.unsent++
      return before + 1
    }
    if (!this.#faulty && entry.unsent + entry.inflight >= sync.slack) return this.#wait(entry, key, max, windowMs)
    entry.unsent++
    if (!entry.dirty) {
      entry.dirty = true
      this.#dirty.push(entry)
      if (this.#timer === null && !this.#closed) this.#timer = setTimeout(this.#tick, sync.intervalMs).unref()
    }
    if (!this.#faulty && !entry.flushing && entry.unsent >= this.#threshold) void this.#flush([entry])
    return before + 1
  }

  /** Sends every dirty key now and waits for the answers (at close, so the last hits reach the other instances). */
  async flushAll (): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#sync === null || this.#sync.slack === 0) return
    const timeoutMs = this.#sync.timeoutMs
    for (let round = 0; round < 3; round++) {
      await withTimeout(Promise.all(this.#pending), timeoutMs).catch(() => {})
      if (!this.#dirty.some((entry) => entry.unsent > 0 && !entry.flushing)) return
      await withTimeout(this.#flushDirty(), timeoutMs).catch(() => {})
    }
  }

  close (): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #entry (key: string, now: number, windowMs: number): Entry {
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      entry = { key, resetAt: now + windowMs, known: 0, unsent: 0, inflight: 0, epoch: 0, flushing: false, dirty: false, waiters: null }
      this.#entries.set(key, entry)
      if (this.#entries.size > this.#maxEntries) this.#bound(now)
    } else if (entry.resetAt <= now) {
      entry.resetAt = now + windowMs
      entry.known = 0
      entry.unsent = 0
      entry.epoch++
      // An answer still in flight belongs to the old window; its hits no longer count.
      entry.inflight = 0
    }
    return entry
  }

  async #exact (key: string, windowMs: number): Promise<BudgetState> {
    const sync = this.#sync as GlobalBudgetSync
    try {
      const state = await sync.exact.incr(key, windowMs)
      this.#health.ok()
      return state
    } catch (err) {
      this.#health.fault(err, 'counting default')
      return this.#fallback.incr(`default:${key}`, windowMs)
    }
  }

  async #wait (entry: Entry, key: string, max: number, windowMs: number): Promise<BudgetState> {
    if (!entry.flushing) void this.#flush([entry])
    await new Promise<void>((resolve) => { (entry.waiters ??= []).push(resolve) })
    const current = this.hit(key, max, windowMs)
    return typeof current === 'number' ? { current, ttl: this.ttl } : await current
  }

  readonly #tick = (): void => {
    this.#timer = null
    void this.#flushDirty()
  }

  async #flushDirty (): Promise<void> {
    const batch: Entry[] = []
    const keep: Entry[] = []
    for (const entry of this.#dirty) {
      if (entry.unsent === 0) entry.dirty = false
      else if (entry.flushing) keep.push(entry)
      else batch.push(entry)
    }
    this.#dirty.length = 0
    for (const entry of keep) this.#dirty.push(entry)
    if (batch.length > 0) await this.#flush(batch)
    if (this.#dirty.length > 0 && this.#timer === null && !this.#closed && this.#sync !== null) {
      this.#timer = setTimeout(this.#tick, this.#sync.intervalMs).unref()
    }
  }

  /**
   * One round trip: each entry's unsent hits go to Redis; the totals come back. An answer later
   * than `timeoutMs` counts as a fault (the waiting hits are decided in memory), but is still
   * applied when it comes: the hits it carried are in Redis, and are neither lost nor sent twice.
   */
  #flush (entries: Entry[]): Promise<void> {
    const sync = this.#sync as GlobalBudgetSync
    const pipeline = sync.redis.pipeline() as Pipeline
    const epochs: number[] = []
    const now = this.#clock()
    for (const entry of entries) {
      entry.flushing = true
      entry.inflight += entry.unsent
      pipeline[ADD_COMMAND](sync.prefix + entry.key, entry.unsent, Math.max(1, entry.resetAt - now))
      entry.unsent = 0
      entry.dirty = false
      epochs.push(entry.epoch)
    }
    this.reconciles++
    const stalled = setTimeout(() => {
      this.#fault(new StoreTimeoutError(`Redis did not answer within ${sync.timeoutMs} ms`))
      for (const entry of entries) if (entry.flushing) this.#wake(entry)
    }, sync.timeoutMs).unref()
    const done = pipeline.exec().then(
      (results) => this.#settle(entries, epochs, results as Array<[Error | null, unknown]> | null, null),
      (err: unknown) => this.#settle(entries, epochs, null, err)
    ).finally(() => {
      clearTimeout(stalled)
      this.#pending.delete(done)
    })
    this.#pending.add(done)
    return done
  }

  #settle (entries: Entry[], epochs: number[], results: Array<[Error | null, unknown]> | null, failure: unknown): void {
    const now = this.#clock()
    let ok = results !== null
    failure ??= results === null ? new Error('the pipeline was discarded') : null
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]
      entry.flushing = false
      const [err, reply] = results?.[i] ?? [failure, null]
      if (entry.epoch === epochs[i]) {
        if (err === null && Array.isArray(reply)) {
          entry.known = Number(reply[0])
          entry.inflight = 0
          const ttl = Number(reply[1])
          if (ttl > 0) entry.resetAt = now + ttl
        } else {
          ok = false
          failure ??= err
          // Not counted in Redis: keep the hits here and send them with a later batch.
          entry.unsent += entry.inflight
          entry.inflight = 0
        }
      }
      if (entry.unsent > 0 && !entry.dirty) {
        entry.dirty = true
        this.#dirty.push(entry)
      }
      this.#wake(entry)
    }
    if (ok) {
      this.#faulty = false
      this.#health.ok()
    } else {
      this.#fault(failure)
    }
    if (this.#dirty.length > 0 && this.#timer === null && !this.#closed) {
      this.#timer = setTimeout(this.#tick, (this.#sync as GlobalBudgetSync).intervalMs).unref()
    }
  }

  #fault (err: unknown): void {
    this.#faulty = true
    this.#health.fault(err, 'counting default')
  }

  #wake (entry: Entry): void {
    const waiters = entry.waiters
    entry.waiters = null
    if (waiters !== null) for (const wake of waiters) wake()
  }

  #bound (now: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.resetAt <= now && !entry.dirty && !entry.flushing) this.#entries.delete(key)
    }
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries) break
      if (entry.dirty || entry.flushing) continue
      this.#entries.delete(key)
    }
  }
}
