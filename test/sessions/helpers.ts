// The whole app on a fresh database for the session and OAuth tests, with generous rate limits
// (these tests are about sessions; the limiter has its own tests) and a movable clock.
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../server/app.ts'
import type { GatehouseConfig } from '../../server/config.ts'
import type { Provider } from '../../plugins/store/database-url.ts'
import { captureLogs, testConfig, type TestContext } from '../helpers/build.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import { rmSync } from 'node:fs'

export const PASSWORD = 'correct horse battery staple'

const HIGH = { max: 100_000, timeWindowMs: 60_000 }

export interface SessionTestApp {
  app: FastifyInstance
  config: GatehouseConfig
  databaseUrl: string
  logs: string[]
  /** Moves the sessions clock forward. */
  advance: (seconds: number) => void
}

export interface SessionAppOptions {
  provider?: Provider
  env?: Record<string, string>
  app?: AppOptions
  /** An existing database (the caller drops it); a fresh one of `provider` otherwise. */
  databaseUrl?: string
  /** Stop waiting for app.close() after this many ms (fault tests that leave the pool broken). */
  closeTimeoutMs?: number
}

export async function sessionApp (t: TestContext, options: SessionAppOptions = {}): Promise<SessionTestApp> {
  let offsetMs = 0
  const db = options.databaseUrl === undefined ? await createTestDatabase(options.provider ?? 'sqlite') : null
  const databaseUrl = options.databaseUrl ?? db!.url
  const config = testConfig({ DATABASE_URL: databaseUrl, ...options.env })
  const { logger, logs } = captureLogs()
  // The services live in the encapsulated server plugin; a route's instance inside it sees them.
  let inner: FastifyInstance | undefined
  const root = await buildApp(config, {
    logger,
    onRoute (this: FastifyInstance, route) {
      if (route.url === '/oauth/token') inner = this
    },
    rateLimit: { failedCredentials: HIGH, classes: { login: HIGH, register: HIGH, refresh: HIGH, token: HIGH, default: HIGH } },
    ...options.app,
    sessions: { clock: () => Date.now() + offsetMs, ...options.app?.sessions }
  })
  const app = withServices(root, inner)
  t.teardown(async () => {
    if (options.closeTimeoutMs === undefined) await app.close()
    else {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([app.close(), new Promise((resolve) => { timer = setTimeout(resolve, options.closeTimeoutMs) })])
      clearTimeout(timer)
    }
    await db?.drop()
    rmSync(config.keysDir, { recursive: true, force: true })
  })
  await app.ready()
  return { app, config, databaseUrl, logs, advance: (seconds) => { offsetMs += seconds * 1000 } }
}

const SERVICES = new Set(['store', 'tokens', 'sessions', 'audit', 'credentials', 'bus', 'redis'])

/** The root app (HTTP, listen, close) with the services of the server plugin. */
function withServices (root: FastifyInstance, inner: FastifyInstance | undefined): FastifyInstance {
  if (inner === undefined || root.hasDecorator('sessions')) return root
  return new Proxy(root, {
    get (target, prop, receiver) {
      if (typeof prop === 'string' && SERVICES.has(prop)) return (inner as unknown as Record<string, unknown>)[prop]
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

let counter = 0

export async function createUser (app: FastifyInstance, options: { email?: string, roles?: string[] } = {}): Promise<{ id: string, email: string, tokenVersion: number, roles: string[] }> {
  const email = options.email ?? `user${++counter}-${process.pid}@example.com`
  const roles = options.roles ?? ['user']
  const user = await app.store.prisma.user.create({
    data: { email, passwordHash: await app.credentials.hashPassword(PASSWORD), roles: JSON.stringify(roles) }
  })
  return { id: user.id, email, tokenVersion: user.tokenVersion, roles }
}

/** A fresh session of a new user through fastify.sessions.start (what login does). */
export async function login (app: FastifyInstance, options: { clientId?: string, email?: string, roles?: string[] } = {}) {
  const user = await createUser(app, options)
  const tokens = await app.sessions.start(user, { clientId: options.clientId })
  return { user, tokens }
}

export async function refresh (app: FastifyInstance, refreshToken: unknown) {
  return app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
}

/** The verdict on an access token: 'ok' or its error code (what every protected route answers). */
export async function accessVerdict (app: FastifyInstance, accessToken: string): Promise<string> {
  try {
    await app.tokens.verify(accessToken)
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? 'error'
  }
}
