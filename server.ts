// The standalone server: reads the environment (CONTRACT §2), builds the app, listens, logs
// where it is and what it runs on, and closes gracefully on SIGINT/SIGTERM.
import { loadConfig, ConfigError, type GatehouseConfig } from './server/config.ts'
import { buildApp } from './server/app.ts'
import { redactDatabaseUrl, isInfrastructureError } from './plugins/store/index.ts'
import { isStartupError } from './lib/startup-error.ts'
import { isOptionsError } from './lib/options.ts'

export async function start (config: GatehouseConfig): Promise<void> {
  const app = await buildApp(config)
  let closing = false
  const close = (signal: string): void => {
    if (closing) return
    closing = true
    app.log.info(`${signal} received: finishing in-flight requests, then closing`)
    const force = setTimeout(() => {
      app.log.error('graceful shutdown took longer than 10 s; exiting')
      process.exit(1)
    }, 10_000)
    force.unref()
    app.close().then(() => process.exit(0), (err) => {
      app.log.error({ err }, 'error while closing')
      process.exit(1)
    })
  }
  process.once('SIGINT', () => close('SIGINT'))
  process.once('SIGTERM', () => close('SIGTERM'))

  const address = await app.listen({ port: config.port, host: config.host })
  app.log.info({
    address,
    issuer: config.issuer,
    database: redactDatabaseUrl(config.databaseUrl),
    redis: config.redisUrl === undefined ? 'off (in-process counters and notices)' : redactDatabaseUrl(config.redisUrl),
    docs: `${address}/docs`
  }, `Gatehouse listening on ${address}`)
}

function fail (message: string): never {
  process.stderr.write(`gatehouse: ${message}\n`)
  process.exit(1)
}

/** The one line a start-up failure is told in, chosen by its code; undefined for a programming error. */
export function startupFailure (err: unknown, config: GatehouseConfig): string | undefined {
  if (isStartupError(err)) {
    switch (err.code) {
      case 'STORE_UNREACHABLE':
      case 'REDIS_UNREACHABLE':
      case 'KEYS_MISSING':
      case 'MIGRATION_FAILED':
        return err.message
    }
  }
  if (isOptionsError(err)) return err.message
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'EADDRINUSE') return `PORT ${config.port} is already in use on ${config.host}: set PORT to another port (0 picks a free one)`
  // A plugin that queried the database after the store started (tokens, bootstrap admin).
  if (code === 'SERVICE_UNAVAILABLE' || isInfrastructureError(err)) return `cannot reach the database at ${redactDatabaseUrl(config.databaseUrl)}`
  return undefined
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('server.ts') || process.argv[1]?.endsWith('server.js')) {
  let config: GatehouseConfig
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) fail(`bad configuration: ${err.message}`)
    throw err
  }
  start(config).catch((err: Error) => {
    const line = startupFailure(err, config)
    if (line !== undefined) fail(line)
    process.stderr.write(`gatehouse: failed to start: ${err.stack ?? err.message}\n`)
    process.exit(1)
  })
}
