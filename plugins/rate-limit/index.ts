// gatehouse-rate-limit: per-IP limits per route class on @fastify/rate-limit, and the
// per-account login throttle (`fastify.loginThrottle`) that @fastify/rate-limit does not have.
// Counters live in Redis when one is given (fastify.redis of gatehouse-redis, or the `redis`
// option), so every instance enforces one limit; in this process's memory otherwise. The global
// `default` budget is counted locally and reconciled with Redis in batches (global-budget.ts);
// every other class and the login throttle are one exact Redis script per check.
import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyRateLimit, { type RateLimitOptions as RouteRateLimit } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { gatehouseError, serviceUnavailable } from '../../lib/errors.ts'
import { AUTH_CLASSES, RATE_LIMIT_CLASSES, RateLimitOptionsError, resolveOptions, type RateLimitClass, type RateLimitOptions, type RateLimitPluginOptions } from './options.ts'
import { clientAddressKey, refreshFamilyId } from './client-key.ts'
import { MemoryCounters, RedisCounters, StoreHealth, createStoreClass } from './counters.ts'
import { GlobalBudget } from './global-budget.ts'
import { MemoryThrottle, RedisThrottle, createLoginThrottle, type LoginThrottle } from './login-throttle.ts'
import { createLimitByKey, type LimitByKey } from './keyed.ts'
import { SpentAddresses, isFailedCredential } from './failures.ts'

export { RATE_LIMIT_CLASSES, DEFAULT_CLASSES, resolveOptions, RateLimitOptionsError } from './options.ts'
export type { RateLimitClass, RateLimitOptions, RateLimitPluginOptions, ClassLimit, LoginThrottleOptions, GlobalSyncOptions } from './options.ts'
export { defaultGlobalSlack } from './options.ts'
export type { LoginThrottle, LoginAttempt } from './login-throttle.ts'
export { clientAddressKey, refreshFamilyId } from './client-key.ts'
export type { LimitByKey } from './keyed.ts'
export { isFailedCredential, FAILED_CREDENTIAL_CODES } from './failures.ts'

declare module 'fastify' {
  interface FastifyInstance {
    loginThrottle: LoginThrottle
    /** A budget keyed by a recipient or an account instead of the client address. */
    limitByKey: LimitByKey
  }
  interface FastifyContextConfig {
    /** The per-IP preset of gatehouse-rate-limit this route uses. */
    rateLimitClass?: RateLimitClass
  }
}

function isRateLimitClass (value: unknown): value is RateLimitClass {
  return typeof value === 'string' && (RATE_LIMIT_CLASSES as readonly string[]).includes(value)
}

/** `config.rateLimit` for each class: its limit, its key and (refresh) the hook it counts in. */
export function classPresets (options: Pick<RateLimitOptions, 'classes' | 'ipv6Subnet'>): Readonly<Record<RateLimitClass, RouteRateLimit>> {
  const ipKey = addressKeys(options.ipv6Subnet)
  // The body is parsed before preHandler. A refresh token is counted by a digest of the whole
  // token, so a stranger who knows a family id (it is the `sid` of every access token) and sends
  // `<familyId>.<anything>` fills a budget of their own, never the family's. A missing or
  // malformed token is counted by address.
  const refreshKey = (request: FastifyRequest): string => {
    const token = (request.body as { refresh_token?: unknown } | undefined)?.refresh_token
    if (refreshFamilyId(token) === null) return ipKey(request)
    return `rt:${createHash('sha256').update(token as string).digest('base64url').slice(0, 32)}`
  }
  const presets = {} as Record<RateLimitClass, RouteRateLimit>
  for (const name of RATE_LIMIT_CLASSES) {
    const { max, timeWindowMs } = options.classes[name]
    presets[name] = Object.freeze({
      max,
      timeWindow: timeWindowMs,
      keyGenerator: name === 'refresh' ? refreshKey : ipKey,
      hook: name === 'refresh' ? 'preHandler' : 'onRequest',
      rateLimitClass: name
    } as RouteRateLimit)
  }
  return Object.freeze(presets)
}

const ADDRESS_KEY_CACHE = 4096

/**
 * `request` -> `ip:<client address key>`, remembered for the last few thousand addresses (most
 * requests come from an address seen a moment ago; the cache is emptied when it is full).
 */
function addressKeys (ipv6Subnet: number): (request: FastifyRequest) => string {
  const cache = new Map<string, string>()
  return (request) => {
    const ip = request.ip
    let key = cache.get(ip)
    if (key === undefined) {
      key = `ip:${clientAddressKey(ip, ipv6Subnet)}`
      if (cache.size >= ADDRESS_KEY_CACHE) cache.clear()
      cache.set(ip, key)
    }
    return key
  }
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>
type LimitResult = Awaited<ReturnType<Limiter>>

/** What one route is counted against, decided once when the route is added. */
interface RoutePlan {
  /** The route's class, or null for a route that opted out or has none while `global` is off. */
  rateLimitClass: RateLimitClass | 'route' | null
  /** Counted in onRequest: the class budget (refresh routes: the address's default budget). */
  onRequest: (() => Limiter) | null
  /** Whether `onRequest` is the global budget (counted directly, without @fastify/rate-limit's wrapper). */
  global: boolean
  /** Counted in preHandler, once the body is parsed: the refresh budget of the presented token. */
  preHandler: (() => Limiter) | null
  /** Whether the route takes a credential in its body (login, register, refresh, token). */
  credentialRoute: boolean
}

const kFailedCredential = Symbol('gatehouse.failedCredential')

function lazy (make: () => Limiter): () => Limiter {
  let limiter: Limiter | undefined
  return () => (limiter ??= make())
}

function rateLimited (retryAfterSeconds: number): Error {
  return gatehouseError('RATE_LIMITED', undefined, { headers: { 'retry-after': String(Math.max(1, retryAfterSeconds)) } })
}

/** Sets the standard headers; RATE_LIMITED when the budget is spent (as @fastify/rate-limit's own hook does). */
function enforce (result: LimitResult, reply: FastifyReply): Error | undefined {
  if (result.isAllowed) return undefined
  reply.header('x-ratelimit-limit', result.max)
  reply.header('x-ratelimit-remaining', result.isExceeded ? 0 : result.remaining)
  reply.header('x-ratelimit-reset', result.ttlInSeconds)
  return result.isExceeded ? rateLimited(result.ttlInSeconds) : undefined
}

/** The same for the global budget: `current` is the hit's place in the window, `ttl` the rest of it (ms). */
function enforceGlobal (reply: FastifyReply, max: number, maxText: string, current: number, ttl: number): Error | undefined {
  const reset = Math.ceil(ttl / 1000)
  reply.header('x-ratelimit-limit', maxText)
  reply.header('x-ratelimit-remaining', current >= max ? 0 : max - current)
  reply.header('x-ratelimit-reset', reset)
  return current > max ? rateLimited(reset) : undefined
}

async function rateLimitPlugin (fastify: FastifyInstance, input: RateLimitPluginOptions): Promise<void> {
  const resolved = resolveOptions(input)
  const redis = resolved.redis !== undefined ? resolved.redis : (fastify.hasDecorator('redis') ? fastify.redis : null)
  const options: RateLimitOptions = Object.freeze({ ...resolved, redis })
  // A Redis client decorated after this plugin would be silently ignored: every instance would
  // count on its own. Fail at ready instead.
  if (resolved.redis === undefined && redis === null) {
    fastify.addHook('onReady', async () => {
      if (fastify.hasDecorator('redis') && fastify.redis !== null) {
        throw new RateLimitOptionsError('gatehouse-rate-limit', 'redis', 'gatehouse-rate-limit: redis: gatehouse-redis was registered after it: register it first, so every instance shares the counters')
      }
    })
  }

  const health = new StoreHealth(fastify.log)
  const unavailable = (cause: unknown): Error => serviceUnavailable(cause, options.unavailableRetryAfterSeconds)

  fastify.decorate('loginThrottle', createLoginThrottle({
    options: options.loginThrottle,
    clock: options.clock,
    redis: redis === null ? null : new RedisThrottle(redis, `${options.prefix}lt:`, options.loginThrottle, options.commandTimeoutMs),
    memory: new MemoryThrottle(options.loginThrottle, options.maxEntries),
    failOpen: options.failOpen,
    unavailableRetryAfterSeconds: options.unavailableRetryAfterSeconds,
    health
  }))

  const counters = redis === null ? null : new RedisCounters(redis, `${options.prefix}rl:`, options.commandTimeoutMs)
  const memory = new MemoryCounters(options.clock, options.maxEntries)
  const global = new GlobalBudget({
    clock: options.clock,
    maxEntries: options.maxEntries,
    health,
    fallback: memory,
    sync: redis === null || counters === null
      ? null
      : {
          redis,
          prefix: `${options.prefix}rl:default:`,
          exact: new RedisCounters(redis, `${options.prefix}rl:default:`, options.commandTimeoutMs),
          slack: options.globalSync.slack,
          intervalMs: options.globalSync.intervalMs,
          timeoutMs: options.commandTimeoutMs
        }
  })
  // The last local counts reach the other instances before the client is closed (gatehouse-redis
  // closes it in its own onClose, which runs after this one: hooks run in reverse order).
  fastify.addHook('onClose', async () => {
    global.close()
    await global.flushAll()
  })
  const Store = createStoreClass({
    redis: counters,
    memory,
    health,
    unavailable,
    failClosed: (rateLimitClass) => !options.failOpen && AUTH_CLASSES.has(rateLimitClass as RateLimitClass),
    global
  })
  const presets = classPresets(options)
  const addressKey = presets.default.keyGenerator as (request: FastifyRequest) => string

  // @fastify/rate-limit does the counting (createRateLimit over Gatehouse's store). Its own
  // per-route hooks would run after a route's or a scope's `onRequest: authenticate`, so a
  // failed credential would be answered before anything was counted: instead every budget is
  // checked here, in hooks of the instance this plugin is registered on, which run before the
  // hooks of any route or child scope.
  const defaultBudget = lazy(() => fastify.createRateLimit())
  const failureBudget = lazy(() => fastify.createRateLimit({
    max: options.failedCredentials.max,
    timeWindow: options.failedCredentials.timeWindowMs,
    keyGenerator: addressKey,
    bucket: 'failed-credentials',
    rateLimitClass: 'failed-credentials'
  } as never))
  const spent = new SpentAddresses(options.clock, options.maxEntries)
  const noPlan: RoutePlan = Object.freeze({ rateLimitClass: options.global ? 'default' : null, onRequest: options.global ? defaultBudget : null, global: options.global, preHandler: null, credentialRoute: false })
  const globalMax = options.classes.default.max
  const globalMaxText = String(globalMax)
  const globalWindowMs = options.classes.default.timeWindowMs
  let bodyBudgets = 0

  // Runs before @fastify/rate-limit's own onRoute hook (added below, after this one): the route's
  // `config.rateLimit` (whose fields override the class preset) becomes the plan, and
  // `config.rateLimit` is set to false so that @fastify/rate-limit adds no hook of its own.
  fastify.addHook('onRoute', (route) => {
    const name = route.config?.rateLimitClass
    if (name !== undefined && !isRateLimitClass(name)) {
      throw new Error(`${route.method} ${route.url}: unknown config.rateLimitClass ${JSON.stringify(name)} (use one of ${RATE_LIMIT_CLASSES.join(', ')})`)
    }
    const own = route.config?.rateLimit
    const credentialRoute = name !== undefined && AUTH_CLASSES.has(name)
    let plan: RoutePlan
    if (own === false) {
      plan = { rateLimitClass: null, onRequest: null, global: false, preHandler: null, credentialRoute }
    } else if (own == null && (name === undefined || name === 'default')) {
      plan = name === 'default' ? { ...noPlan, rateLimitClass: 'default', onRequest: defaultBudget, global: true } : noPlan
    } else {
      const rateLimitClass = name ?? 'route'
      const bucket = `${rateLimitClass}:${String(route.method)}:${route.url}`
      const params = { ...(name === undefined ? {} : presets[name]), ...own, rateLimitClass, bucket }
      const limiter = lazy(() => fastify.createRateLimit(params as never))
      if (name === 'refresh') bodyBudgets++
      plan = name === 'refresh'
        ? { rateLimitClass, onRequest: defaultBudget, global: true, preHandler: limiter, credentialRoute }
        : { rateLimitClass, onRequest: limiter, global: false, preHandler: null, credentialRoute }
    }
    route.config = { ...route.config, rateLimit: false, gatehouseRateLimit: plan } as typeof route.config
  })

  // Callback-style hooks: the common case (the global budget, counted synchronously) costs no
  // promise and no microtask.
  fastify.addHook('onRequest', function gatehouseRateLimit (request, reply, done) {
    const plan = (request.routeOptions.config as { gatehouseRateLimit?: RoutePlan } | undefined)?.gatehouseRateLimit ?? noPlan
    let key: string | undefined
    if (plan.credentialRoute || request.headers.authorization !== undefined) {
      key = addressKey(request)
      const wait = spent.retryAfter(key)
      if (wait > 0) {
        done(rateLimited(wait))
        return
      }
    }
    if (plan.onRequest === null) {
      done()
      return
    }
    if (plan.global) {
      const current = global.hit(key ?? addressKey(request), globalMax, globalWindowMs)
      if (typeof current === 'number') {
        done(enforceGlobal(reply, globalMax, globalMaxText, current, global.ttl))
      } else {
        current.then((state) => done(enforceGlobal(reply, globalMax, globalMaxText, state.current, state.ttl)), done)
      }
      return
    }
    plan.onRequest()(request).then((result) => done(enforce(result, reply)), done)
  })

  fastify.addHook('preHandler', function gatehouseRateLimitBody (request, reply, done) {
    if (bodyBudgets === 0) {
      done()
      return
    }
    const plan = (request.routeOptions.config as { gatehouseRateLimit?: RoutePlan } | undefined)?.gatehouseRateLimit
    if (plan?.preHandler == null) {
      done()
      return
    }
    plan.preHandler()(request).then((result) => done(enforce(result, reply)), done)
  })

  // A failed credential of any scheme, whichever hook or handler refused it, is counted against
  // its address. Counting happens off the answer's path; a store fault leaves the count in memory.
  fastify.addHook('onError', function countFailedCredential (request, _reply, error, done) {
    const seen = request as unknown as Record<symbol, boolean>
    if (seen[kFailedCredential] !== true && isFailedCredential(error)) {
      seen[kFailedCredential] = true
      const key = addressKey(request)
      failureBudget()(request).then((result) => {
        if (!result.isAllowed && result.remaining === 0) spent.spend(key, result.ttl)
      }, (err: unknown) => {
        fastify.log.warn({ err: { message: (err as Error).message } }, 'rate-limit: could not count a failed credential')
      })
    }
    done()
  })

  await fastify.register(fastifyRateLimit, {
    global: false,
    max: options.classes.default.max,
    timeWindow: options.classes.default.timeWindowMs,
    keyGenerator: presets.default.keyGenerator,
    hook: 'onRequest',
    store: Store as never,
    skipOnError: false
  })
  fastify.decorate('limitByKey', createLimitByKey(fastify, options.classes))
}

export const rateLimit = fp(rateLimitPlugin, { name: 'gatehouse-rate-limit', fastify: '5.x' })
export default rateLimit
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
