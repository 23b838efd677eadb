// The whole Gatehouse server on a fresh database (like test/helpers/build.ts), mounted with
// fastify-plugin so its decorators are on the instance the test holds, with test routes added
// before it is ready: `/protected` (any scheme) and `/bearer-only`, both returning request.user.
import { rmSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { gatehouseServer, type AppOptions } from '../../server/app.ts'
import type { GatehouseConfig } from '../../server/config.ts'
import { captureLogs, testConfig, type TestContext } from '../helpers/build.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import type { Provider } from '../../plugins/store/database-url.ts'

export interface ProtectedAppOptions {
  provider?: Provider
  env?: Record<string, string>
  app?: AppOptions
  /** Keep the keys folder (another app shares it); it is then the caller's to remove. */
  keysDir?: string
  /** Reuse a database (a second instance); it is then the caller's to drop. */
  databaseUrl?: string
}

export interface ProtectedApp {
  app: FastifyInstance
  config: GatehouseConfig
  logs: string[]
  databaseUrl: string
}

export async function buildProtected (t: TestContext, options: ProtectedAppOptions = {}): Promise<ProtectedApp> {
  const db = options.databaseUrl === undefined ? await createTestDatabase(options.provider ?? 'sqlite') : null
  const databaseUrl = options.databaseUrl ?? (db as { url: string }).url
  const env: Record<string, string> = { DATABASE_URL: databaseUrl, ...options.env }
  if (options.keysDir !== undefined) env.AUTH_KEYS_DIR = options.keysDir
  const config = testConfig(env)
  const { logger, logs } = captureLogs()
  const app = Fastify({ logger })
  const { logger: _logger, onRoute: _onRoute, ...serverOptions } = options.app ?? {}
  await app.register(fp(gatehouseServer, { name: 'gatehouse-server', fastify: '5.x' }), { config, ...serverOptions })
  app.get('/protected', { onRequest: app.authenticate }, async (request) => request.user)
  app.get('/bearer-only', { onRequest: app.createAuthenticate({ schemes: ['bearer'] }) }, async (request) => request.user)
  t.teardown(async () => {
    await app.close()
    if (db !== null) await db.drop()
    if (options.keysDir === undefined) rmSync(config.keysDir, { recursive: true, force: true })
  })
  await app.ready()
  return { app, config, logs, databaseUrl }
}

/** A user row with the given state, created directly through Prisma. */
export async function createUser (app: FastifyInstance, data: { email?: string, roles?: string[], status?: string } = {}): Promise<{ id: string, email: string }> {
  const email = data.email ?? `user-${Math.random().toString(36).slice(2)}@example.com`
  const row = await app.store.prisma.user.create({ data: { email, roles: JSON.stringify(data.roles ?? ['user']), status: data.status ?? 'active' } })
  return { id: row.id, email: row.email }
}

/** An access token for `user` in a new session id. */
export async function tokenFor (app: FastifyInstance, user: { id: string }, options: { roles?: string[], tokenVersion?: number, sid?: string } = {}): Promise<{ token: string, sid: string }> {
  const sid = options.sid ?? `sid-${Math.random().toString(36).slice(2)}`
  const { access_token: token } = await app.tokens.sign({ id: user.id, roles: options.roles ?? ['user'], tokenVersion: options.tokenVersion ?? 0 }, { sid })
  return { token, sid }
}

export function bearer (token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` }
}
