// Options of gatehouse-rate-limit: the per-IP presets per route class and the per-account
// login throttle. resolveOptions() fills the defaults from the named constants below,
// validates every number once, and returns a frozen object.
import type { Redis } from 'ioredis'
import { OptionsError, optionChecks } from '../../lib/options.ts'

export const RATE_LIMIT_CLASSES = ['login', 'register', 'refresh', 'token', 'mail', 'mail_target', 'invite', 'default'] as const
export type RateLimitClass = typeof RATE_LIMIT_CLASSES[number]

/** Classes that guard credentials: a store fault answers 503 for them unless `failOpen`. */
export const AUTH_CLASSES: ReadonlySet<RateLimitClass> = new Set(['login', 'register', 'refresh', 'token', 'mail', 'mail_target', 'invite'])

export interface ClassLimit {
  /** Requests allowed per window and key. */
  max: number
  /** Window length in milliseconds (fixed window). */
  timeWindowMs: number
}

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/**
 * Per-IP (refresh: per token family) presets. `mail` guards the routes that send mail (password
 * forgot, verification resend, email change) per address; `mail_target` is the budget of one
 * recipient or account on those routes (`fastify.limitByKey`), whoever asks. `invite` guards the
 * organization invitations, per client address and (through limitByKey) per organization and per
 * inviter.
 */
export const DEFAULT_CLASSES: Readonly<Record<RateLimitClass, Readonly<ClassLimit>>> = Object.freeze({
  login: Object.freeze({ max: 10, timeWindowMs: MINUTE }),
  token: Object.freeze({ max: 10, timeWindowMs: MINUTE }),
  register: Object.freeze({ max: 5, timeWindowMs: HOUR }),
  refresh: Object.freeze({ max: 30, timeWindowMs: MINUTE }),
  mail: Object.freeze({ max: 10, timeWindowMs: HOUR }),
  mail_target: Object.freeze({ max: 3, timeWindowMs: 15 * MINUTE }),
  invite: Object.freeze({ max: 30, timeWindowMs: HOUR }),
  default: Object.freeze({ max: 1000, timeWindowMs: MINUTE })
})

export const DEFAULT_FREE_ATTEMPTS = 5
export const DEFAULT_BASE_DELAY_MS = 1000
export const DEFAULT_MAX_DELAY_MS = 15 * MINUTE
export const DEFAULT_RESERVATION_TIMEOUT_MS = 30_000
export const DEFAULT_FORGET_AFTER_MS = 12 * HOUR
export const DEFAULT_MAX_ENTRIES = 100_000
export const DEFAULT_COMMAND_TIMEOUT_MS = 500
export const DEFAULT_UNAVAILABLE_RETRY_AFTER_S = 5
export const DEFAULT_PREFIX = 'gatehouse:'
/** Failed credentials one address may present per window before its credentials are refused unchecked. */
export const DEFAULT_FAILED_CREDENTIALS: Readonly<ClassLimit> = Object.freeze({ max: 20, timeWindowMs: 5 * MINUTE })
export const DEFAULT_IPV6_SUBNET = 64
/** How often the global budget's local counts are reconciled with Redis. */
export const DEFAULT_GLOBAL_SYNC_INTERVAL_MS = 50
/** The global budget's slack defaults to this share of its `max` (rounded down), at most DEFAULT_GLOBAL_SLACK_CAP. */
export const DEFAULT_GLOBAL_SLACK_SHARE = 1 / 20
export const DEFAULT_GLOBAL_SLACK_CAP = 1000

/** The default slack of a global budget of `max` hits: 5% of it (0, exact, below 20), at most 1000. */
export function defaultGlobalSlack (max: number): number {
  return Math.min(DEFAULT_GLOBAL_SLACK_CAP, Math.floor(max * DEFAULT_GLOBAL_SLACK_SHARE))
}

export interface GlobalSyncOptions {
  /**
   * Hits of one key one instance may accept before Redis has confirmed them. N instances can
   * accept at most `N x slack - 1` hits beyond `classes.default.max` per key and window; 0 makes
   * every hit one exact round trip. @default 5% of classes.default.max (rounded down), at most 1000
   */
  slack: number
  /** Dirty keys are sent to Redis at least this often (ms). @default 50 */
  intervalMs: number
}

export interface LoginThrottleOptions {
  /** Consecutive failures allowed before the back-off starts. @default 5 */
  freeAttempts: number
  /** Back-off after the first failure beyond `freeAttempts`; doubles with each further failure. @default 1000 */
  baseDelayMs: number
  /** Ceiling of the back-off (never a permanent lock). @default 900000 (15 min) */
  maxDelayMs: number
  /** An attempt that never reports fail()/succeed() frees its slot after this long. @default 30000 */
  reservationTimeoutMs: number
  /** The failure count of an account is forgotten this long after its last failure (and back-off). @default 43200000 (12 h) */
  forgetAfterMs: number
}

export interface RateLimitOptions {
  /** Per-class limits; each field overrides the preset of that class. */
  classes: Readonly<Record<RateLimitClass, Readonly<ClassLimit>>>
  /** Apply the `default` class to every route that declares no class. @default true */
  global: boolean
  /** The shared counter store. @default fastify.redis when gatehouse-redis is registered, else null (in memory) */
  redis: Redis | null
  /** Prefix of every Redis key. @default 'gatehouse:' */
  prefix: string
  /**
   * On a Redis fault, auth classes (login, register, refresh, token) and loginThrottle count in this
   * instance's memory instead of answering 503. The `default` class always does. @default false
   */
  failOpen: boolean
  /** A Redis call slower than this counts as a fault (a hanging Redis must not hang logins). @default 500 */
  commandTimeoutMs: number
  /** Retry-After (seconds) of the 503 on a store fault. @default 5 */
  unavailableRetryAfterSeconds: number
  /** IPv6 clients are counted per network of this prefix length. @default 64 */
  ipv6Subnet: number
  /** Bound of every in-memory map (counters, login records). @default 100000 */
  maxEntries: number
  loginThrottle: Readonly<LoginThrottleOptions>
  /**
   * Per-address budget of failed credentials of any scheme (a wrong password, a forged or malformed
   * token, an unknown API key or refresh token). Once it is spent, every request from that address
   * that carries a credential is answered 429 before the credential is checked.
   * @default { max: 20, timeWindowMs: 300000 }
   */
  failedCredentials: Readonly<ClassLimit>
  /**
   * How the global budget (class `default`) is shared through Redis: counted locally and
   * reconciled in batches. No effect without Redis.
   */
  globalSync: Readonly<GlobalSyncOptions>
  /** Milliseconds since the epoch; injectable so tests need not sleep. @default Date.now */
  clock: () => number
}

/** What callers pass: every field optional, class limits and throttle settings field by field. */
export interface RateLimitPluginOptions {
  classes?: Partial<Record<RateLimitClass, Partial<ClassLimit>>>
  global?: boolean
  redis?: Redis | null
  prefix?: string
  failOpen?: boolean
  commandTimeoutMs?: number
  unavailableRetryAfterSeconds?: number
  ipv6Subnet?: number
  maxEntries?: number
  loginThrottle?: Partial<LoginThrottleOptions>
  failedCredentials?: Partial<ClassLimit>
  globalSync?: Partial<GlobalSyncOptions>
  clock?: () => number
}

/** A bad option of gatehouse-rate-limit (an OptionsError: `code`, `plugin`, `option`). */
export class RateLimitOptionsError extends OptionsError {
  override name = 'RateLimitOptionsError'
}

const check = optionChecks('gatehouse-rate-limit', RateLimitOptionsError)

function positiveInteger (name: string, value: unknown, min = 1): number {
  return check.integer(name, value, Number.NaN, { min })
}

/** Fills defaults, validates, freezes. `redis` stays undefined when not given (the plugin decides). */
export function resolveOptions (input: RateLimitPluginOptions = {}): Omit<RateLimitOptions, 'redis'> & { redis: Redis | null | undefined } {
  const classes = {} as Record<RateLimitClass, Readonly<ClassLimit>>
  for (const name of Object.keys(input.classes ?? {})) {
    if (!(RATE_LIMIT_CLASSES as readonly string[]).includes(name)) {
      check.fail(`classes.${name}`, `is not a class (use one of ${RATE_LIMIT_CLASSES.join(', ')})`)
    }
  }
  for (const name of RATE_LIMIT_CLASSES) {
    const given = input.classes?.[name] ?? {}
    classes[name] = Object.freeze({
      max: positiveInteger(`classes.${name}.max`, given.max ?? DEFAULT_CLASSES[name].max),
      timeWindowMs: positiveInteger(`classes.${name}.timeWindowMs`, given.timeWindowMs ?? DEFAULT_CLASSES[name].timeWindowMs)
    })
  }

  const lt = input.loginThrottle ?? {}
  const loginThrottle = Object.freeze({
    freeAttempts: positiveInteger('loginThrottle.freeAttempts', lt.freeAttempts ?? DEFAULT_FREE_ATTEMPTS),
    baseDelayMs: positiveInteger('loginThrottle.baseDelayMs', lt.baseDelayMs ?? DEFAULT_BASE_DELAY_MS),
    maxDelayMs: positiveInteger('loginThrottle.maxDelayMs', lt.maxDelayMs ?? DEFAULT_MAX_DELAY_MS),
    reservationTimeoutMs: positiveInteger('loginThrottle.reservationTimeoutMs', lt.reservationTimeoutMs ?? DEFAULT_RESERVATION_TIMEOUT_MS),
    forgetAfterMs: positiveInteger('loginThrottle.forgetAfterMs', lt.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS)
  })
  if (loginThrottle.maxDelayMs < loginThrottle.baseDelayMs) {
    check.fail('loginThrottle.maxDelayMs', 'must be >= loginThrottle.baseDelayMs')
  }

  const ipv6Subnet = check.integer('ipv6Subnet', input.ipv6Subnet, DEFAULT_IPV6_SUBNET, { min: 0, max: 128 })
  const prefix = input.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') check.fail('prefix', 'must be a string')
  const clock = input.clock ?? Date.now
  if (typeof clock !== 'function') check.fail('clock', 'must be a function')

  return Object.freeze({
    classes: Object.freeze(classes),
    global: input.global ?? true,
    redis: input.redis,
    prefix,
    failOpen: input.failOpen ?? false,
    commandTimeoutMs: positiveInteger('commandTimeoutMs', input.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS),
    unavailableRetryAfterSeconds: positiveInteger('unavailableRetryAfterSeconds', input.unavailableRetryAfterSeconds ?? DEFAULT_UNAVAILABLE_RETRY_AFTER_S),
    ipv6Subnet,
    maxEntries: positiveInteger('maxEntries', input.maxEntries ?? DEFAULT_MAX_ENTRIES),
    loginThrottle,
    failedCredentials: Object.freeze({
      max: positiveInteger('failedCredentials.max', input.failedCredentials?.max ?? DEFAULT_FAILED_CREDENTIALS.max),
      timeWindowMs: positiveInteger('failedCredentials.timeWindowMs', input.failedCredentials?.timeWindowMs ?? DEFAULT_FAILED_CREDENTIALS.timeWindowMs)
    }),
    globalSync: Object.freeze({
      slack: check.integer('globalSync.slack', input.globalSync?.slack, defaultGlobalSlack(classes.default.max), { min: 0 }),
      intervalMs: positiveInteger('globalSync.intervalMs', input.globalSync?.intervalMs ?? DEFAULT_GLOBAL_SYNC_INTERVAL_MS)
    }),
    clock
  })
}
