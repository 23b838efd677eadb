// A listening Gatehouse for the MFA tests: a movable clock shared by the TOTP checks and the
// login throttle (codes are computed for that clock, never waited for), generous per-IP limits
// (the limiter has its own tests), and helpers to log in and to read tokens.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../server/app.ts'
import type { GatehouseConfig } from '../../server/config.ts'
import type { Provider } from '../../plugins/store/database-url.ts'
import { totpCode, TOTP_PERIOD } from '../../plugins/mfa/totp.ts'
import { captureLogs, testConfig, type TestContext } from '../helpers/build.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import { call } from '../helpers/server-process.ts'

export const PASSWORD = 'correct horse battery staple'
const HIGH = { max: 100_000, timeWindowMs: 60_000 }

/** A clock that moves only when told to; it starts 10 s into a TOTP step. */
export class TestClock {
  ms: number
  constructor () {
    this.ms = Math.floor(Date.now() / (TOTP_PERIOD * 1000)) * TOTP_PERIOD * 1000 + 10_000
  }

  now = (): number => this.ms
  advance (seconds: number): void { this.ms += seconds * 1000 }
  /** The TOTP code of `secret` at the clock's time plus `offsetSeconds`. */
  code (secret: string, offsetSeconds = 0): string { return totpCode(secret, this.ms + offsetSeconds * 1000) }
}

export interface MfaServer {
  app: FastifyInstance
  base: string
  config: GatehouseConfig
  logs: string[]
  clock: TestClock
  call: (method: string, path: string, options?: Parameters<typeof call>[3]) => ReturnType<typeof call>
}

export interface MfaServerOptions {
  provider?: Provider
  /** An existing database (the caller drops it). */
  databaseUrl?: string
  /** A shared keys folder (the caller removes it). */
  keysDir?: string
  env?: Record<string, string>
  clock?: TestClock
  app?: AppOptions
  /** Adds the test's own routes before the server listens. */
  routes?: (app: FastifyInstance) => void
  /** Where to listen. @default a free port on 127.0.0.1 */
  listen?: { port: number, host: string }
}

export async function mfaServer (t: TestContext, options: MfaServerOptions = {}): Promise<MfaServer> {
  const db = options.databaseUrl === undefined ? await createTestDatabase(options.provider ?? 'sqlite') : null
  const databaseUrl = options.databaseUrl ?? db!.url
  const ownKeys = options.keysDir === undefined
  const keysDir = options.keysDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-mfa-keys-'))
  const config = testConfig({ DATABASE_URL: databaseUrl, AUTH_KEYS_DIR: keysDir, ...options.env })
  const clock = options.clock ?? new TestClock()
  const { logger, logs } = captureLogs()
  const app = await buildApp(config, {
    logger,
    ...options.app,
    rateLimit: { classes: { login: HIGH, register: HIGH, refresh: HIGH, token: HIGH, default: HIGH }, failedCredentials: HIGH, clock: clock.now, ...options.app?.rateLimit },
    mfa: { clock: clock.now, ...options.app?.mfa }
  })
  t.teardown(async () => {
    await app.close()
    await db?.drop()
    rmSync(config.keysDir, { recursive: true, force: true })
    if (ownKeys) rmSync(keysDir, { recursive: true, force: true })
  })
  options.routes?.(app)
  const base = await app.listen(options.listen ?? { port: 0, host: '127.0.0.1' })
  return { app, base, config, logs, clock, call: (method, path, opts) => call(base, method, path, opts) }
}

let counter = 0

export function newEmail (): string {
  return `mfa${++counter}-${process.pid}-${Math.random().toString(36).slice(2, 8)}@example.com`
}

/** Registers an account over HTTP; returns its email, id and first access token. */
export async function registerUser (server: MfaServer, email = newEmail()): Promise<{ email: string, id: string, token: string }> {
  const res = await server.call('POST', '/auth/register', { body: { email, password: PASSWORD } })
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${JSON.stringify(res.body)}`)
  return { email, id: res.body.user.id, token: res.body.access_token }
}

/** setup + confirm over HTTP; returns the base32 secret and the recovery codes. */
export async function enrolTotp (server: MfaServer, token: string): Promise<{ secret: string, recoveryCodes: string[] }> {
  const setup = await server.call('POST', '/auth/mfa/totp/setup', { token })
  if (setup.status !== 200) throw new Error(`setup answered ${setup.status}: ${JSON.stringify(setup.body)}`)
  const confirm = await server.call('POST', '/auth/mfa/totp/confirm', { token, body: { code: server.clock.code(setup.body.secret) } })
  if (confirm.status !== 200) throw new Error(`confirm answered ${confirm.status}: ${JSON.stringify(confirm.body)}`)
  // The confirming code's step is used: later codes come from later steps.
  server.clock.advance(TOTP_PERIOD)
  return { secret: setup.body.secret, recoveryCodes: confirm.body.recovery_codes }
}

/** The payload of a JWT (not verified: the server verified it). */
export function claims (token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
}
