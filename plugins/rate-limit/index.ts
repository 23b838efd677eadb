// gatehouse-rate-limit: per-IP limits per route class on @fastify/rate-limit, and the
// per-account login throttle (`fastify.loginThrottle`) that @fastify/rate-limit does not have.
// Counters live in Redis when one is given (fastify.redis of gatehouse-redis, or the `redis`
// option), so every instance enforces one limit; in this process's memory otherwise.
import { createHash } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyRateLimit, { type RateLimitOptions as RouteRateLimit } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { gatehouseError, serviceUnavailable } from '../../lib/errors.ts'
import { AUTH_CLASSES, RATE_LIMIT_CLASSES, RateLimitOptionsError, resolveOptions, type RateLimitClass, type RateLimitOptions, type RateLimitPluginOptions } from './options.ts'
import { clientAddressKey, refreshFamilyId } from './client-key.ts'
import { MemoryCounters, RedisCounters, StoreHealth, createStoreClass } from './counters.ts'
import { MemoryThrottle, RedisThrottle, createLoginThrottle, type LoginThrottle } from './login-throttle.ts'
import { createLimitByKey, type LimitByKey } from './keyed.ts'
import { SpentAddresses, isFailedCredential } from './failures.ts'

export { RATE_LIMIT_CLASSES, DEFAULT_CLASSES, resolveOptions, RateLimitOptionsError } from './options.ts'
export type { RateLimitClass, RateLimitOptions, RateLimitPluginOptions, ClassLimit, LoginThrottleOptions } from './options.ts'
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
  const ipKey = (request: FastifyRequest): string => `ip:${clientAddressKey(request.ip, options.ipv6Subnet)}`
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

type Limiter = ReturnType<FastifyInstance['createRateLimit']>
type LimitResult = Awaited<ReturnType<Limiter>>

/** What one route is counted against, decided once when the route is added. */
interface RoutePlan {
  /** The route's class, or null for a route that opted out or has none while `global` is off. */
  rateLimitClass: RateLimitClass | 'route' | null
  /** Counted in onRequest: the class budget (refresh routes: the address's default budget). */
  onRequest: (() => Limiter) | null
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

/** Sets the standard headers and throws RATE_LIMITED when the budget is spent (as @fastify/rate-limit's own hook does). */
function enforce (result: LimitResult, reply: FastifyReply): void {
  if (result.isAllowed) return
  reply.header('x-ratelimit-limit', result.max)
  reply.header('x-ratelimit-remaining', result.isExceeded ? 0 : result.remaining)
  reply.header('x-ratelimit-reset', result.ttlInSeconds)
  if (result.isExceeded) throw rateLimited(result.ttlInSeconds)
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

  const Store = createStoreClass({
    redis: redis === null ? null : new RedisCounters(redis, `${options.prefix}rl:`, options.commandTimeoutMs),
    memory: new MemoryCounters(options.clock, options.maxEntries),
    health,
    unavailable,
    failClosed: (rateLimitClass) => !options.failOpen && AUTH_CLASSES.has(rateLimitClass as RateLimitClass)
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
  const noPlan: RoutePlan = Object.freeze({ rateLimitClass: options.global ? 'default' : null, onRequest: options.global ? defaultBudget : null, preHandler: null, credentialRoute: false })

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
      plan = { rateLimitClass: null, onRequest: null, preHandler: null, credentialRoute }
    } else if (own == null && (name === undefined || name === 'default')) {
      plan = name === 'default' ? { ...noPlan, rateLimitClass: 'default', onRequest: defaultBudget } : noPlan
    } else {
      const rateLimitClass = name ?? 'route'
      const bucket = `${rateLimitClass}:${String(route.method)}:${route.url}`
      const params = { ...(name === undefined ? {} : presets[name]), ...own, rateLimitClass, bucket }
      const limiter = lazy(() => fastify.createRateLimit(params as never))
      plan = name === 'refresh'
        ? { rateLimitClass, onRequest: defaultBudget, preHandler: limiter, credentialRoute }
        : { rateLimitClass, onRequest: limiter, preHandler: null, credentialRoute }
    }
    route.config = { ...route.config, rateLimit: false, gatehouseRateLimit: plan } as typeof route.config
  })

  fastify.addHook('onRequest', async function gatehouseRateLimit (request, reply) {
    const plan = (request.routeOptions.config as { gatehouseRateLimit?: RoutePlan } | undefined)?.gatehouseRateLimit ?? noPlan
    if (plan.credentialRoute || request.headers.authorization !== undefined) {
      const wait = spent.retryAfter(addressKey(request))
      if (wait > 0) throw rateLimited(wait)
    }
    if (plan.onRequest !== null) enforce(await plan.onRequest()(request), reply)
  })

  fastify.addHook('preHandler', async function gatehouseRateLimitBody (request, reply) {
    const plan = (request.routeOptions.config as { gatehouseRateLimit?: RoutePlan } | undefined)?.gatehouseRateLimit
    if (plan?.preHandler != null) enforce(await plan.preHandler()(request), reply)
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
