// What the CLI commands share: the app built quietly (so every invalidation reaches running
// instances through the same plugins and Redis), argument parsing and table output.
import Fastify, { type FastifyInstance } from 'fastify'
import { buildApp } from '../server/app.ts'
import type { GatehouseConfig } from '../server/config.ts'
import { store } from '../plugins/store/index.ts'
import { redis } from '../plugins/redis/index.ts'
import { audit } from '../plugins/audit/index.ts'
import { isStartupError } from '../lib/startup-error.ts'
import { UsageError } from './errors.ts'

/** Runs `fn` with the whole app (not listening), closed afterwards. Logs only warnings. */
export async function withApp<T> (config: GatehouseConfig, fn: (app: FastifyInstance) => Promise<T>): Promise<T> {
  const app = await buildApp(config, { logger: { level: 'warn' } })
  try {
    await app.ready()
    const result = await fn(app)
    await app.audit.flush()
    return result
  } finally {
    await app.close()
  }
}

/**
 * Runs `fn` with the store, the bus and the audit trail only (no key ring: `keys` commands must
 * work on an empty keys folder). When Redis is configured but down, the bus is in process and
 * `distributed` says so.
 */
export async function withCore<T> (config: GatehouseConfig, fn: (app: FastifyInstance) => Promise<T>): Promise<T> {
  const build = async (redisUrl: string | undefined): Promise<FastifyInstance> => {
    const app = Fastify({ logger: { level: 'warn' } })
    try {
      await app.register(store, { databaseUrl: config.databaseUrl })
      await app.register(redis, { url: redisUrl })
      await app.register(audit)
      await app.ready()
    } catch (err) {
      await app.close().catch(() => {})
      throw err
    }
    return app
  }
  let app: FastifyInstance
  try {
    app = await build(config.redisUrl)
  } catch (err) {
    if (!isStartupError(err, 'REDIS_UNREACHABLE')) throw err
    app = await build(undefined)
  }
  try {
    const result = await fn(app)
    await app.audit.flush()
    return result
  } finally {
    await app.close()
  }
}

export interface ParsedArgs {
  positional: string[]
  flags: Map<string, string | true>
}

/** `--name value`, `--name=value` and boolean `--flag`; `known` maps each flag to whether it takes a value. */
export function parseArgs (args: string[], known: Record<string, boolean>): ParsedArgs {
  const positional: string[] = []
  const flags = new Map<string, string | true>()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (!arg.startsWith('--')) { positional.push(arg); continue }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2)
    if (!(name in known)) throw new UsageError(`unknown option --${name}`)
    if (known[name]) {
      const value = inline ?? args[++i]
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`)
      flags.set(name, value)
    } else {
      flags.set(name, true)
    }
  }
  return { positional, flags }
}

export function table (rows: Array<Record<string, string>>, columns: string[]): string {
  if (rows.length === 0) return '(none)\n'
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => r[c] ?? '')))].join('\n') + '\n'
}

export function out (text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
}
