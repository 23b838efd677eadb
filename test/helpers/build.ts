// build(t): the whole app on a fresh database, closed (and the database dropped) at teardown.
// Every log line is captured at debug level in `logs`, so tests can scan them for secrets.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../server/app.ts'
import { loadConfig, type GatehouseConfig } from '../../server/config.ts'
import { loggerOptions } from '../../server/logger.ts'
import type { Provider } from '../../plugins/store/database-url.ts'
import { createTestDatabase } from './databases.ts'

export interface TestContext {
  teardown: (fn: () => unknown) => void
}

export interface BuildOptions {
  provider?: Provider
  /** Environment variables of CONTRACT §2, applied over the test defaults. */
  env?: Record<string, string>
  app?: AppOptions
}

export interface TestApp {
  app: FastifyInstance
  config: GatehouseConfig
  databaseUrl: string
  /** Every log line written so far (JSON strings). */
  logs: string[]
}

/** The configuration tests start from: port 0, temporary keys, quiet but captured logs. */
export function testConfig (env: Record<string, string> = {}): GatehouseConfig {
  const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'))
  return loadConfig({ PORT: '0', HOST: '127.0.0.1', AUTH_ISSUER: 'http://127.0.0.1:3000', AUTH_KEYS_DIR: keysDir, MAIL_OUTBOX_DIR: join(keysDir, 'outbox'), LOG_LEVEL: 'debug', ...env })
}

export function captureLogs (level = 'debug'): { logger: AppOptions['logger'], logs: string[] } {
  const logs: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, callback) {
      logs.push(chunk.toString())
      callback()
    }
  })
  return { logs, logger: loggerOptions(level, stream) }
}

export async function build (t: TestContext, options: BuildOptions = {}): Promise<TestApp> {
  const db = await createTestDatabase(options.provider ?? 'sqlite')
  const config = testConfig({ DATABASE_URL: db.url, ...options.env })
  const { logger, logs } = captureLogs()
  const app = await buildApp(config, { logger, ...options.app })
  t.teardown(async () => {
    await app.close()
    await db.drop()
    rmSync(config.keysDir, { recursive: true, force: true })
  })
  await app.ready()
  return { app, config, databaseUrl: db.url, logs }
}
