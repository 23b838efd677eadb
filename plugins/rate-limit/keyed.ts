// Limits keyed by something other than the client address: the recipient of a mail, the account
// that asks for one. The same counters (memory or Redis) and the same fault policy as the route
// presets; the class gives the budget.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { gatehouseError } from '../../lib/errors.ts'
import type { ClassLimit, RateLimitClass } from './options.ts'

/** Counts one hit for `key` in the class's budget; throws RATE_LIMITED (with Retry-After) beyond it. */
export type LimitByKey = (rateLimitClass: RateLimitClass, key: string, request: FastifyRequest) => Promise<void>

export function createLimitByKey (fastify: FastifyInstance, classes: Readonly<Record<RateLimitClass, Readonly<ClassLimit>>>): LimitByKey {
  const keys = new WeakMap<FastifyRequest, string>()
  const limiters = new Map<RateLimitClass, ReturnType<FastifyInstance['createRateLimit']>>()
  return async function limitByKey (rateLimitClass, key, request) {
    let limiter = limiters.get(rateLimitClass)
    if (limiter === undefined) {
      const { max, timeWindowMs } = classes[rateLimitClass]
      limiter = fastify.createRateLimit({
        max,
        timeWindow: timeWindowMs,
        keyGenerator: (req: FastifyRequest) => `key:${keys.get(req) ?? ''}`,
        rateLimitClass
      } as never)
      limiters.set(rateLimitClass, limiter)
    }
    keys.set(request, key)
    const result = await limiter(request)
    if (!result.isAllowed && result.isExceeded) {
      throw gatehouseError('RATE_LIMITED', undefined, { headers: { 'retry-after': String(Math.max(1, result.ttlInSeconds)) } })
    }
  }
}
