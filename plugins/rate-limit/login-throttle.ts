// The per-account defence against password guessing from many addresses (credential stuffing
// rotates IPs, so per-IP limits alone do not stop it).
//
// Rules, per account (the caller passes the normalised email; only its SHA-256 is stored):
//  - the first `freeAttempts` consecutive failures cost nothing;
//  - each further failure starts a back-off of baseDelay * 2^(failures - freeAttempts), capped at
//    maxDelay (1 s, 2 s, 4 s ... 15 min): never a permanent lock, so an attacker cannot lock the
//    real user out for good (NIST SP 800-63B §5.2.2 prefers delays over lockout);
//  - during a back-off every attempt is refused before the password is checked, so a correct
//    password is refused too, with the same 429 as any limited attempt (no oracle);
//  - a success resets the account; failures are forgotten `forgetAfter` after the last one.
//
// Atomicity: begin() reserves an in-flight slot in the same step that checks the state
// (a Lua script in Redis; synchronous code in memory). Reservations count like failures, so a
// burst of parallel guesses cannot get more than `freeAttempts` (after a back-off: one)
// password checks started at once. fail()/succeed()/release() free the slot; a reservation
// that is never settled expires after `reservationTimeout`.
import { createHash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { gatehouseError, serviceUnavailable } from '../../lib/errors.ts'
import type { LoginThrottleOptions } from './options.ts'
import { defineScript, withTimeout, type ScriptRunner, type StoreHealth } from './counters.ts'

export interface LoginAttempt {
  /** The password was wrong: counts a failure (and may start a back-off), frees the slot. */
  fail: () => Promise<void>
  /** The password was right: resets the account's failures, frees the slot. */
  succeed: () => Promise<void>
  /**
   * No verdict (e.g. the database was down): frees the slot without counting anything. Always
   * present on attempts of this plugin; optional in the type so simpler throttles can stand in.
   */
  release?: () => Promise<void>
}

export interface LoginThrottle {
  /**
   * Reserves an attempt for `accountKey` (the normalised email). Throws RATE_LIMITED (429, with
   * Retry-After) during a back-off or while the account's attempts are all in flight, and
   * SERVICE_UNAVAILABLE (503) when the shared store is unreachable (unless failOpen).
   */
  begin: (accountKey: string) => Promise<LoginAttempt>
}

/** The outcome of a reservation: granted, or refused for `retryAfterMs`. */
export type Decision = { granted: true } | { granted: false, retryAfterMs: number }

/** One account's state as the two back ends store it. */
interface Backend {
  begin: (account: string, id: string, now: number) => Promise<Decision>
  fail: (account: string, id: string, now: number) => Promise<void>
  succeed: (account: string, id: string) => Promise<void>
  release: (account: string, id: string) => Promise<void>
}

/** Delay after the `failures`-th consecutive failure (0 while within the free attempts). */
export function backoffDelay (failures: number, options: Pick<LoginThrottleOptions, 'freeAttempts' | 'baseDelayMs' | 'maxDelayMs'>): number {
  if (failures < options.freeAttempts) return 0
  return Math.min(options.baseDelayMs * 2 ** (failures - options.freeAttempts), options.maxDelayMs)
}

/** A refusal because every slot is in flight: ask the client to come back in a second. */
const BUSY_RETRY_MS = 1000

export function accountHash (accountKey: string): string {
  return createHash('sha256').update(accountKey, 'utf8').digest('hex')
}

interface MemoryRecord {
  failures: number
  blockedUntil: number
  forgetAt: number
  reservations: Map<string, number>
}

/** One process's accounts. Every method runs to completion synchronously: that is its atomicity. */
export class MemoryThrottle implements Backend {
  readonly #records = new Map<string, MemoryRecord>()
  readonly #options: LoginThrottleOptions
  readonly #maxEntries: number

  constructor (options: LoginThrottleOptions, maxEntries: number) {
    this.#options = options
    this.#maxEntries = maxEntries
  }

  get size (): number {
    return this.#records.size
  }

  decide (account: string, id: string, now: number): Decision {
    let record = this.#records.get(account)
    if (record !== undefined) {
      for (const [rid, expiresAt] of record.reservations) if (expiresAt <= now) record.reservations.delete(rid)
      if (record.forgetAt <= now && record.reservations.size === 0) {
        this.#records.delete(account)
        record = undefined
      }
    }
    if (record === undefined) {
      record = { failures: 0, blockedUntil: 0, forgetAt: now, reservations: new Map() }
      this.#records.set(account, record)
      this.#bound(now)
    }
    if (record.blockedUntil > now) return { granted: false, retryAfterMs: record.blockedUntil - now }
    const slots = Math.max(1, this.#options.freeAttempts - record.failures)
    if (record.reservations.size >= slots) return { granted: false, retryAfterMs: BUSY_RETRY_MS }
    record.reservations.set(id, now + this.#options.reservationTimeoutMs)
    record.forgetAt = Math.max(record.forgetAt, now + this.#options.reservationTimeoutMs)
    return { granted: true }
  }

  async begin (account: string, id: string, now: number): Promise<Decision> {
    return this.decide(account, id, now)
  }

  async fail (account: string, id: string, now: number): Promise<void> {
    let record = this.#records.get(account)
    if (record === undefined) {
      record = { failures: 0, blockedUntil: 0, forgetAt: now, reservations: new Map() }
      this.#records.set(account, record)
      this.#bound(now)
    }
    record.reservations.delete(id)
    record.failures++
    const delay = backoffDelay(record.failures, this.#options)
    if (delay > 0) record.blockedUntil = Math.max(record.blockedUntil, now + delay)
    record.forgetAt = Math.max(now, record.blockedUntil) + this.#options.forgetAfterMs
  }

  async succeed (account: string, id: string): Promise<void> {
    const record = this.#records.get(account)
    if (record === undefined) return
    record.reservations.delete(id)
    record.failures = 0
    record.blockedUntil = 0
    if (record.reservations.size === 0) this.#records.delete(account)
  }

  async release (account: string, id: string): Promise<void> {
    this.#records.get(account)?.reservations.delete(id)
  }

  #bound (now: number): void {
    if (this.#records.size <= this.#maxEntries) return
    for (const [account, record] of this.#records) {
      if (record.forgetAt <= now && record.blockedUntil <= now) this.#records.delete(account)
    }
    for (const account of this.#records.keys()) {
      if (this.#records.size <= this.#maxEntries) break
      this.#records.delete(account)
    }
  }
}

// KEYS[1] = the account's hash {f = failures, b = blocked until, e = forget at (ms)}; KEYS[2] = its sorted set
// of reservations (member = attempt id, score = expiry). Both carry the same hash tag, so they
// live in one cluster slot. Times come from the caller's clock (ARGV); the key expiries only
// collect garbage.
const BEGIN_SCRIPT = `
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local forget = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
if forget > 0 and forget <= now then redis.call('DEL', KEYS[1]) end
local failures = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local blocked = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
if blocked > now then return {0, blocked - now} end
local slots = math.max(1, tonumber(ARGV[4]) - failures)
if redis.call('ZCARD', KEYS[2]) >= slots then return {0, -1} end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return {1, 0}
`

const FAIL_SCRIPT = `
local now = tonumber(ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
local failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
local free = tonumber(ARGV[3])
local until_ = now
if failures >= free then
  local delay = math.min(tonumber(ARGV[4]) * 2 ^ (failures - free), tonumber(ARGV[5]))
  local blocked = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
  until_ = math.max(blocked, now + delay)
  redis.call('HSET', KEYS[1], 'b', string.format('%d', until_))
end
redis.call('HSET', KEYS[1], 'e', string.format('%d', until_ + tonumber(ARGV[6])))
redis.call('PEXPIRE', KEYS[1], string.format('%d', until_ - now + tonumber(ARGV[6])))
return failures
`

const SUCCEED_SCRIPT = `
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
`

export class RedisThrottle implements Backend {
  readonly #begin: ScriptRunner
  readonly #fail: ScriptRunner
  readonly #succeed: ScriptRunner
  readonly #redis: Redis
  readonly #prefix: string
  readonly #options: LoginThrottleOptions
  readonly #timeoutMs: number

  constructor (redis: Redis, prefix: string, options: LoginThrottleOptions, timeoutMs: number) {
    this.#redis = redis
    this.#begin = defineScript(redis, 'gatehouseLoginBegin', 2, BEGIN_SCRIPT)
    this.#fail = defineScript(redis, 'gatehouseLoginFail', 2, FAIL_SCRIPT)
    this.#succeed = defineScript(redis, 'gatehouseLoginSucceed', 2, SUCCEED_SCRIPT)
    this.#prefix = prefix
    this.#options = options
    this.#timeoutMs = timeoutMs
  }

  #keys (account: string): string[] {
    const base = `${this.#prefix}{${account}}`
    return [base, `${base}:inflight`]
  }

  async begin (account: string, id: string, now: number): Promise<Decision> {
    const o = this.#options
    const [granted, wait] = await withTimeout(this.#begin(this.#keys(account), [now, id, o.reservationTimeoutMs, o.freeAttempts]), this.#timeoutMs) as [number, number]
    if (Number(granted) === 1) return { granted: true }
    return { granted: false, retryAfterMs: Number(wait) < 0 ? BUSY_RETRY_MS : Number(wait) }
  }

  async fail (account: string, id: string, now: number): Promise<void> {
    const o = this.#options
    await withTimeout(this.#fail(this.#keys(account), [now, id, o.freeAttempts, o.baseDelayMs, o.maxDelayMs, o.forgetAfterMs]), this.#timeoutMs)
  }

  async succeed (account: string, id: string): Promise<void> {
    await withTimeout(this.#succeed(this.#keys(account), [id]), this.#timeoutMs)
  }

  async release (account: string, id: string): Promise<void> {
    await withTimeout(this.#redis.zrem(this.#keys(account)[1], id), this.#timeoutMs)
  }
}

export interface ThrottleContext {
  options: LoginThrottleOptions
  clock: () => number
  /** The shared back end, or null when counts stay in this process. */
  redis: RedisThrottle | null
  memory: MemoryThrottle
  /** On a Redis fault: count in memory (true) or answer 503 (false). */
  failOpen: boolean
  unavailableRetryAfterSeconds: number
  health: StoreHealth
}

function rateLimited (retryAfterMs: number): Error {
  return gatehouseError('RATE_LIMITED', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } })
}

export function createLoginThrottle (ctx: ThrottleContext): LoginThrottle {
  const unavailable = (err: unknown): Error => serviceUnavailable(err, ctx.unavailableRetryAfterSeconds)

  async function reserve (account: string, id: string): Promise<{ backend: Backend, decision: Decision }> {
    const now = ctx.clock()
    if (ctx.redis === null) return { backend: ctx.memory, decision: ctx.memory.decide(account, id, now) }
    try {
      const decision = await ctx.redis.begin(account, id, now)
      ctx.health.ok()
      return { backend: ctx.redis, decision }
    } catch (err) {
      ctx.health.fault(err, 'login throttle')
      if (!ctx.failOpen) throw unavailable(err)
      return { backend: ctx.memory, decision: ctx.memory.decide(account, id, now) }
    }
  }

  return {
    async begin (accountKey: string): Promise<LoginAttempt> {
      if (typeof accountKey !== 'string' || accountKey === '') throw new TypeError('loginThrottle.begin: accountKey must be a non-empty string')
      const account = accountHash(accountKey)
      const id = randomUUID()
      const { backend, decision } = await reserve(account, id)
      if (!decision.granted) throw rateLimited(decision.retryAfterMs)

      let settled = false
      const settle = async (action: () => Promise<void>, what: string): Promise<void> => {
        if (settled) return
        settled = true
        try {
          await action()
        } catch (err) {
          ctx.health.fault(err, `login throttle ${what}`)
          if (what === 'fail') {
            // An uncounted failure would be a free guess: answer 503 rather than 401.
            if (!ctx.failOpen) throw unavailable(err)
            await ctx.memory.fail(account, id, ctx.clock())
          }
        }
      }
      return {
        fail: async () => await settle(async () => await backend.fail(account, id, ctx.clock()), 'fail'),
        succeed: async () => await settle(async () => await backend.succeed(account, id), 'succeed'),
        release: async () => await settle(async () => await backend.release(account, id), 'release')
      }
    }
  }
}
