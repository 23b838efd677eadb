// A tiny Fastify app with gatehouse-rate-limit and one route per class, for tests that need
// no database. The login route does what the credentials plugin does: begin() before the
// password hash is checked, then fail()/succeed(); it counts the argon2 verifications that ran.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { hash, verify } from '@node-rs/argon2'
import type { Redis } from 'ioredis'
import { errorHandler } from '../../lib/error-handler.ts'
import { ERRORS, gatehouseError } from '../../lib/errors.ts'
import { redisClient } from '../../plugins/redis/index.ts'
import { rateLimit, type RateLimitPluginOptions } from '../../plugins/rate-limit/index.ts'
import { redisUrl, REDIS_SKIP_REASON, uniquePrefix } from '../helpers/redis.ts'

export const PASSWORD = 'correct horse battery staple'
/** OWASP's argon2id floor; 2 is Algorithm.Argon2id (a const enum, not importable under verbatimModuleSyntax). */
export const ARGON2 = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const
let passwordHash: Promise<string> | undefined
export function passwordHashOnce (): Promise<string> {
  passwordHash ??= hash(PASSWORD, ARGON2)
  return passwordHash
}

export interface TinyApp {
  app: FastifyInstance
  /** argon2 verifications that ran in this app's login route. */
  verifications: () => number
}

export interface TinyOptions {
  rateLimit?: RateLimitPluginOptions
  trustProxy?: FastifyServerOptions['trustProxy']
}

export async function tinyApp (t: { teardown: (fn: () => unknown) => void }, options: TinyOptions = {}): Promise<TinyApp> {
  const app = Fastify({ trustProxy: options.trustProxy ?? false })
  app.setErrorHandler(errorHandler)
  await app.register(rateLimit, options.rateLimit ?? {})
  const stored = await passwordHashOnce()
  let verifications = 0

  app.post<{ Body: { email: string, password: string } }>('/auth/login', { config: { rateLimitClass: 'login' } }, async (request) => {
    const attempt = await app.loginThrottle.begin(request.body.email.trim().toLowerCase())
    verifications++
    if (await verify(stored, request.body.password, ARGON2)) {
      await attempt.succeed()
      return { ok: true }
    }
    await attempt.fail()
    throw gatehouseError('INVALID_CREDENTIALS')
  })
  app.post('/auth/register', { config: { rateLimitClass: 'register' } }, async () => ({ ok: true }))
  app.post('/auth/refresh', { config: { rateLimitClass: 'refresh' } }, async () => ({ ok: true }))
  app.post('/oauth/token', { config: { rateLimitClass: 'token' } }, async () => ({ ok: true }))
  app.get('/auth/me', async () => ({ ok: true }))
  app.get('/explicit-default', { config: { rateLimitClass: 'default' } }, async () => ({ ok: true }))
  await app.ready()
  t.teardown(() => app.close())
  return { app, verifications: () => verifications }
}

export interface Variant {
  name: 'memory' | 'redis'
  skip: string | false
  /** Options that put the plugin on this variant's store (a fresh key prefix each call). */
  store: (t: { teardown: (fn: () => unknown) => void }) => Promise<Pick<RateLimitPluginOptions, 'redis' | 'prefix'>>
}

/** Connects an ioredis client the way gatehouse-redis does; quit at teardown. */
export async function connectRedis (t: { teardown: (fn: () => unknown) => void }, url: string): Promise<Redis> {
  const client = redisClient(url)
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.disconnect())
  return client
}

/** In memory always; against the real Redis when it is reachable (else skipped with the reason). */
export async function variants (): Promise<Variant[]> {
  const url = await redisUrl()
  return [
    { name: 'memory', skip: false, store: async () => ({ redis: null }) },
    {
      name: 'redis',
      skip: url === null ? REDIS_SKIP_REASON : false,
      store: async (t) => ({ redis: await connectRedis(t, url as string), prefix: uniquePrefix() })
    }
  ]
}

/** A settable clock for the plugin's `clock` option. */
export function manualClock (start = Date.UTC(2026, 0, 1)): { now: () => number, advance: (ms: number) => void, set: (ms: number) => void } {
  let current = start
  return { now: () => current, advance: (ms) => { current += ms }, set: (ms) => { current = ms } }
}

export function login (app: FastifyInstance, email: string, password: string, remoteAddress = '127.0.0.1') {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress })
}

export const RATE_LIMITED_BODY = {
  statusCode: 429,
  code: 'RATE_LIMITED',
  error: 'Too Many Requests',
  message: ERRORS.RATE_LIMITED.message
}
