// gatehouse-rate-limit: per-IP limits per route class on @fastify/rate-limit, and the
// per-account login throttle (`fastify.loginThrottle`) that @fastify/rate-limit does not have.
// Counters live in Redis when one is given (fastify.redis of gatehouse-redis, or the `redis`
// option), so every instance enforces one limit; in this process's memory otherwise.
import fp from 'fastify-plugin'
import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest, RouteOptions, onRequestAsyncHookHandler } from 'fastify'
import { gatehouseError, serviceUnavailable } from '../../lib/errors.ts'
import { AUTH_CLASSES, RATE_LIMIT_CLASSES, resolveOptions, type RateLimitClass, type RateLimitOptions, type RateLimitPluginOptions } from './options.ts'
import { clientAddressKey, refreshFamilyId } from './client-key.ts'
import { MemoryCounters, RedisCounters, StoreHealth, createStoreClass } from './counters.ts'
import { MemoryThrottle, RedisThrottle, createLoginThrottle, type LoginThrottle } from './login-throttle.ts'
import { createLimitByKey, type LimitByKey } from './keyed.ts'

export { RATE_LIMIT_CLASSES, DEFAULT_CLASSES, resolveOptions, RateLimitOptionsError } from './options.ts'
export type { RateLimitClass, RateLimitOptions, RateLimitPluginOptions, ClassLimit, LoginThrottleOptions } from './options.ts'
export type { LoginThrottle, LoginAttempt } from './login-throttle.ts'
export { clientAddressKey, refreshFamilyId } from './client-key.ts'
export type { LimitByKey } from './keyed.ts'

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

type RouteRateLimit = NonNullable<Exclude<NonNullable<RouteOptions['config']>['rateLimit'], false>>

function isRateLimitClass (value: unknown): value is RateLimitClass {
  return typeof value === 'string' && (RATE_LIMIT_CLASSES as readonly string[]).includes(value)
}

/** `config.rateLimit` for each class: its limit, its key and (refresh) the hook it counts in. */
export function classPresets (options: Pick<RateLimitOptions, 'classes' | 'ipv6Subnet'>): Readonly<Record<RateLimitClass, RouteRateLimit>> {
  const ipKey = (request: FastifyRequest): string => `ip:${clientAddressKey(request.ip, options.ipv6Subnet)}`
  // The body is parsed before preHandler; a missing or malformed token is counted by address.
  const refreshKey = (request: FastifyRequest): string => {
    const family = refreshFamilyId((request.body as { refresh_token?: unknown } | undefined)?.refresh_token)
    return family === null ? ipKey(request) : `family:${family}`
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

async function rateLimitPlugin (fastify: FastifyInstance, input: RateLimitPluginOptions): Promise<void> {
  const resolved = resolveOptions(input)
  const redis = resolved.redis !== undefined ? resolved.redis : (fastify.hasDecorator('redis') ? fastify.redis : null)
  const options: RateLimitOptions = Object.freeze({ ...resolved, redis })

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

  const Store = createStoreClass({
    redis: redis === null ? null : new RedisCounters(redis, `${options.prefix}rl:`, options.commandTimeoutMs),
    memory: new MemoryCounters(options.clock, options.maxEntries),
    health,
    unavailable,
    failClosed: (rateLimitClass) => !options.failOpen && AUTH_CLASSES.has(rateLimitClass as RateLimitClass)
  })
  const presets = classPresets(options)

  // Refresh routes are counted per token family; the address still pays into the default
  // budget, so a client cannot dodge every limit by inventing family ids.
  let addressLimit: ReturnType<FastifyInstance['createRateLimit']> | undefined
  const defaultBudget: onRequestAsyncHookHandler = async function (request) {
    addressLimit ??= fastify.createRateLimit()
    const result = await addressLimit(request)
    if (!result.isAllowed && result.isExceeded) {
      throw gatehouseError('RATE_LIMITED', undefined, { headers: { 'retry-after': String(Math.max(1, result.ttlInSeconds)) } })
    }
  }

  // Runs before @fastify/rate-limit's own onRoute hook (added below, after this one), which
  // then finds the preset in `config.rateLimit`. A route's own `config.rateLimit` fields win.
  fastify.addHook('onRoute', (route) => {
    const name = route.config?.rateLimitClass
    if (name === undefined) return
    if (!isRateLimitClass(name)) {
      throw new Error(`${route.method} ${route.url}: unknown config.rateLimitClass ${JSON.stringify(name)} (use one of ${RATE_LIMIT_CLASSES.join(', ')})`)
    }
    const own = route.config?.rateLimit
    if (own === false) return
    route.config = { ...route.config, rateLimit: { ...presets[name], ...own, rateLimitClass: name } as RouteRateLimit }
    if (name === 'refresh') {
      const existing = route.onRequest
      route.onRequest = [...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]), defaultBudget] as RouteOptions['onRequest']
    }
  })

  await fastify.register(fastifyRateLimit, {
    global: options.global,
    max: options.classes.default.max,
    timeWindow: options.classes.default.timeWindowMs,
    keyGenerator: presets.default.keyGenerator,
    hook: 'onRequest',
    store: Store as never,
    skipOnError: false,
    errorResponseBuilder: (_request, context) => gatehouseError('RATE_LIMITED', undefined, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) }
    })
  })
  fastify.decorate('limitByKey', createLimitByKey(fastify, options.classes))
}

export const rateLimit = fp(rateLimitPlugin, { name: 'gatehouse-rate-limit', fastify: '5.x' })
export default rateLimit
