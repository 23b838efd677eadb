// Fixed-window counters: in memory (one instance) or in Redis (every instance shares them),
// and the store class @fastify/rate-limit drives. Keys are `<bucket>:<client key>`.
import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { GlobalBudget } from './global-budget.ts'

export interface CounterState {
  /** Hits in the current window, this one included. */
  current: number
  /** Milliseconds until the window ends. */
  ttl: number
}

/** Bounded in-memory counters. Expired windows are swept when the map is full; then the oldest go. */
export class MemoryCounters {
  readonly #entries = new Map<string, { count: number, resetAt: number }>()
  readonly #clock: () => number
  readonly #maxEntries: number

  constructor (clock: () => number, maxEntries: number) {
    this.#clock = clock
    this.#maxEntries = maxEntries
  }

  incr (key: string, windowMs: number): CounterState {
    const now = this.#clock()
    let entry = this.#entries.get(key)
    if (entry === undefined || entry.resetAt <= now) {
      this.#entries.delete(key)
      entry = { count: 0, resetAt: now + windowMs }
      this.#entries.set(key, entry)
      this.#bound(now)
    }
    entry.count++
    return { current: entry.count, ttl: entry.resetAt - now }
  }

  get size (): number {
    return this.#entries.size
  }

  #bound (now: number): void {
    if (this.#entries.size <= this.#maxEntries) return
    for (const [key, entry] of this.#entries) {
      if (entry.resetAt <= now) this.#entries.delete(key)
    }
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break
      this.#entries.delete(key)
    }
  }
}

// One round trip: count, and start the window on the first hit. A key that somehow lost its
// expiry gets it back, so no counter can live forever.
const INCR_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}
`

export type ScriptRunner = (keys: string[], args: Array<string | number>) => Promise<unknown>

/** Registers a Lua script on the client once (EVALSHA with EVAL fallback) and returns a runner. */
export function defineScript (redis: Redis, name: string, numberOfKeys: number, lua: string): ScriptRunner {
  const client = redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>
  if (typeof client[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua })
  return async (keys, args) => await client[name](...keys, ...args)
}

export class StoreTimeoutError extends Error {
  override name = 'StoreTimeoutError'
}

/** Rejects when `promise` takes longer than `ms`: a hanging Redis must not hang the request. */
export async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(`Redis did not answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export class RedisCounters {
  readonly #run: ScriptRunner
  readonly #prefix: string
  readonly #timeoutMs: number

  constructor (redis: Redis, prefix: string, timeoutMs: number) {
    this.#run = defineScript(redis, 'gatehouseRateLimitIncr', 1, INCR_SCRIPT)
    this.#prefix = prefix
    this.#timeoutMs = timeoutMs
  }

  async incr (key: string, windowMs: number): Promise<CounterState> {
    const [current, ttl] = await withTimeout(this.#run([this.#prefix + key], [windowMs]), this.#timeoutMs) as [number, number]
    return { current: Number(current), ttl: Number(ttl) }
  }
}

/**
 * Logs a store fault once when it starts and once when it ends, not on every request.
 */
export class StoreHealth {
  #faulty = false
  readonly #log: FastifyBaseLogger

  constructor (log: FastifyBaseLogger) {
    this.#log = log
  }

  get faulty (): boolean {
    return this.#faulty
  }

  fault (err: unknown, what: string): void {
    if (this.#faulty) return
    this.#faulty = true
    const { message, code } = err as { message?: string, code?: string }
    this.#log.error({ err: { message, code } }, `rate-limit: Redis unavailable (${what}); auth routes fail closed unless failOpen`)
  }

  ok (): void {
    if (!this.#faulty) return
    this.#faulty = false
    this.#log.info('rate-limit: Redis is back; counters are shared again')
  }
}

export interface StoreContext {
  redis: RedisCounters | null
  memory: MemoryCounters
  health: StoreHealth
  /** The error a fail-closed bucket answers with on a store fault. */
  unavailable: (cause: unknown) => Error
  /** Whether a class answers 503 (true) or counts in memory (false) on a store fault. */
  failClosed: (rateLimitClass: string) => boolean
  /** Counts the `default` bucket (the global budget; see global-budget.ts). */
  global: GlobalBudget
}

type IncrCallback = (err: Error | null, res: CounterState | null) => void

interface StoreParams {
  rateLimitClass?: string
  /** The counters' bucket; by default one per route of a class. */
  bucket?: string
  routeInfo?: { method?: string | string[], url?: string }
}

/** The `store` class for @fastify/rate-limit: it builds the root store, then one child per route. */
export function createStoreClass (ctx: StoreContext): new (params: StoreParams) => unknown {
  return class GatehouseRateLimitStore {
    readonly bucket: string
    readonly failClosed: boolean

    constructor (_params: StoreParams, bucket = 'default', rateLimitClass = 'default') {
      this.bucket = bucket
      this.failClosed = ctx.failClosed(rateLimitClass)
    }

    incr (key: string, callback: IncrCallback, timeWindow: number, max: number): void {
      if (this.bucket === 'default') {
        const current = ctx.global.hit(key, max, timeWindow)
        if (typeof current === 'number') callback(null, { current, ttl: ctx.global.ttl })
        else current.then((state) => callback(null, state), (err: unknown) => callback(err as Error, null))
        return
      }
      const full = `${this.bucket}:${key}`
      if (ctx.redis === null) {
        callback(null, ctx.memory.incr(full, timeWindow))
        return
      }
      ctx.redis.incr(full, timeWindow).then((state) => {
        ctx.health.ok()
        callback(null, state)
      }, (err: unknown) => {
        ctx.health.fault(err, `counting ${this.bucket}`)
        if (this.failClosed) callback(ctx.unavailable(err), null)
        else callback(null, ctx.memory.incr(full, timeWindow))
      })
    }

    // Class `default` is the global budget every unclassed route shares; any other class gets
    // one budget per route (its limit comes from the class), as @fastify/rate-limit does.
    child (params: StoreParams): GatehouseRateLimitStore {
      const route = params.routeInfo
      const rateLimitClass = params.rateLimitClass ?? 'route'
      if (rateLimitClass === 'default') return new GatehouseRateLimitStore(params)
      const bucket = params.bucket ?? `${rateLimitClass}:${String(route?.method ?? '')}:${route?.url ?? ''}`
      return new GatehouseRateLimitStore(params, bucket, rateLimitClass)
    }
  }
}
