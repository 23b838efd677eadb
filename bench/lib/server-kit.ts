// What every benchmark server shares: listen on port 0 and announce the port and the
// credentials the runner checks with, as one JSON line on stdout; close on SIGTERM.
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'

/** How the load generator builds requests for one scenario. */
export interface LoadSpec {
  method?: 'GET' | 'POST'
  path: string
  /** Headers of every request (e.g. one repeated Authorization). */
  headers?: Record<string, string>
  /** A JSON body sent with every request. */
  body?: string
  /** A file of one header value per line, rotated round robin over requests (unique tokens). */
  poolFile?: string
  /** The header the pool values go in. */
  poolHeader?: string
  /** Refresh rotation: POST {refresh_token} from a queue fed by each response. */
  refresh?: { familiesPath: string }
}

export interface Announcement {
  /** A request that must answer 200. */
  good: { method?: string, path: string, headers?: Record<string, string>, body?: string }
  /** The same request with a tampered credential: must answer 401 (omitted for the bare route). */
  bad?: { method?: string, path: string, headers?: Record<string, string>, body?: string }
  load: LoadSpec
  /** Anything else worth recording (algorithm, pool size, parameters). */
  meta?: Record<string, unknown>
}

/** Flips one character in the middle of a JWT's signature (still base64url, no longer valid). */
export function tamperJwt (token: string): string {
  const dot = token.lastIndexOf('.')
  const i = dot + 1 + Math.floor((token.length - dot - 1) / 2)
  const c = token[i]
  return token.slice(0, i) + (c === 'A' ? 'B' : 'A') + token.slice(i + 1)
}

/** Writes one value per line to a temporary file and returns its path. */
export function writePool (values: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'))
  const file = join(dir, 'pool.txt')
  writeFileSync(file, values.join('\n') + '\n')
  return file
}

/** Listens on 127.0.0.1:0 and prints `{ready, port, pid, ...announcement}` on stdout. */
export async function announce (app: FastifyInstance, announcement: Announcement, onClose?: () => Promise<void>): Promise<void> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const stop = async (): Promise<void> => {
    await app.close().catch(() => {})
    if (onClose !== undefined) await onClose().catch(() => {})
    process.exit(0)
  }
  process.once('SIGTERM', () => { void stop() })
  process.once('SIGINT', () => { void stop() })
  process.stdout.write(JSON.stringify({ ready: true, port, pid: process.pid, ...announcement }) + '\n')
}

/** Tells the runner this scenario cannot run here, and why (e.g. PostgreSQL unreachable). */
export function skip (reason: string): never {
  process.stdout.write(JSON.stringify({ skip: reason }) + '\n')
  process.exit(0)
}

/** The reason a Redis at `url` cannot be used, or null when it answers PING. */
export async function redisUnreachable (url: string): Promise<string | null> {
  const { Redis } = await import('ioredis')
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.ping()
    return null
  } catch (err) {
    return `Redis at ${url} is not reachable (${(err as Error).message})`
  } finally {
    client.disconnect()
  }
}

/** Deletes every key under `prefix` (the keys one benchmark server wrote). */
export async function dropRedisKeys (url: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  try {
    await client.connect()
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}
