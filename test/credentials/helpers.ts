// A minimal app for the credentials plugin alone: store, redis (bus), audit, credentials, on a
// fresh migrated database, with every log line captured for secret scans.
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { store } from '../../plugins/store/index.ts'
import { redis, type Bus } from '../../plugins/redis/index.ts'
import { audit } from '../../plugins/audit/index.ts'
import { credentials, type CredentialsOptions, type LoginThrottle } from '../../plugins/credentials/index.ts'
import type { Provider } from '../../plugins/store/database-url.ts'
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts'
import { captureLogs, type TestContext } from '../helpers/build.ts'

export interface CredentialsApp {
  app: FastifyInstance
  logs: string[]
  db: TestDatabase
}

export interface CredentialsAppOptions {
  credentials?: CredentialsOptions
  redisUrl?: string
  /** A per-account throttle to decorate as `loginThrottle`. */
  loginThrottle?: LoginThrottle
  /** Share one database between several instances. */
  db?: TestDatabase
  /** A bus to use instead of gatehouse-redis's (e.g. one whose `healthy` can be switched off). */
  bus?: Bus
}

export async function buildCredentials (t: TestContext, provider: Provider, options: CredentialsAppOptions = {}): Promise<CredentialsApp> {
  const db = options.db ?? await createTestDatabase(provider)
  const { logger, logs } = captureLogs()
  const app = Fastify({ logger })
  await app.register(store, { databaseUrl: db.url, migrations: 'skip' })
  if (options.bus !== undefined) {
    const bus = options.bus
    await app.register(fp(async (f) => { f.decorate('redis', null); f.decorate('bus', bus) }, { name: 'gatehouse-redis' }))
  } else {
    await app.register(redis, { url: options.redisUrl })
  }
  await app.register(audit)
  if (options.loginThrottle !== undefined) {
    const throttle = options.loginThrottle
    await app.register(fp(async (f) => { f.decorate('loginThrottle', throttle) }, { name: 'test-login-throttle' }))
  }
  await app.register(credentials, options.credentials ?? {})
  t.teardown(async () => {
    await app.close()
    if (options.db === undefined) await db.drop()
  })
  await app.ready()
  return { app, logs, db }
}

/** An in-process bus whose health a test can switch, standing in for a Redis subscription that drops. */
export function switchableBus (): Bus & { setHealthy: (value: boolean) => void, resync: () => void } {
  const listeners = new Map<string, Array<(message: Record<string, unknown>) => void>>()
  const resyncListeners: Array<() => void> = []
  let healthy = true
  return {
    async publish (channel, message) { for (const fn of listeners.get(channel) ?? []) fn(message) },
    subscribe (channel, fn) { listeners.set(channel, [...(listeners.get(channel) ?? []), fn]) },
    onResync (fn) { resyncListeners.push(fn) },
    get healthy () { return healthy },
    distributed: true,
    setHealthy (value) { healthy = value },
    resync () { for (const fn of resyncListeners) fn() }
  }
}

/** Rejects with the coded error `fn` throws, or fails when it resolves. */
export async function codeOf (fn: () => Promise<unknown>): Promise<{ code: string, statusCode: number, message: string, headers?: Record<string, string> }> {
  try {
    await fn()
  } catch (err) {
    const e = err as { code: string, statusCode: number, message: string, headers?: Record<string, string> }
    return { code: e.code, statusCode: e.statusCode, message: e.message, headers: e.headers }
  }
  throw new Error('expected a rejection')
}

/** Every text value of every row of the tables credentials write, joined (for secret scans). */
export async function dumpRows (app: FastifyInstance): Promise<string> {
  const p = app.store.prisma
  await app.audit.flush()
  const rows = [
    ...await p.user.findMany(),
    ...await p.apiKey.findMany(),
    ...await p.auditEvent.findMany()
  ]
  return JSON.stringify(rows)
}
