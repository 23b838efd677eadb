// gatehouse-redis: the optional shared state of a multi-instance deployment.
//  - `fastify.redis`: an ioredis client, or null when no Redis is configured.
//  - `fastify.bus`: cross-instance notices (revocations, cache invalidations). Through Redis
//    pub/sub when configured; in process otherwise. `bus.healthy` is false while the
//    subscription is down, so caches that rely on notices can stop trusting themselves.
import { EventEmitter } from 'node:events'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { StartupError } from '../../lib/startup-error.ts'

export interface RedisOptions {
  /** redis:// URL; when absent everything stays in process. */
  url?: string
  /** Key and channel prefix. @default 'gatehouse:' */
  prefix?: string
  /** Connection timeout (ms). @default 500 */
  connectTimeoutMs?: number
}

export type BusListener = (message: Record<string, unknown>) => void

export interface Bus {
  /** Delivers `message` to every instance's listeners of `channel` (this one included). */
  publish: (channel: string, message: Record<string, unknown>) => Promise<void>
  subscribe: (channel: string, listener: BusListener) => void
  /** Called after the subscription was lost and came back: notices may have been missed. */
  onResync: (listener: () => void) => void
  /** False while notices from other instances may be missed. Always true in process. */
  readonly healthy: boolean
  readonly distributed: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis | null
    bus: Bus
  }
}

export function redisClient (url: string, connectTimeoutMs = 500, name = 'gatehouse'): Redis {
  return new Redis(url, {
    connectionName: name,
    connectTimeout: connectTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(100 * times, 2000)
  })
}

/** The bus of a single instance: notices reach this process's listeners only. */
export function createLocalBus (): Bus {
  const local = new EventEmitter()
  local.setMaxListeners(0)
  return {
    async publish (channel: string, message: Record<string, unknown>) { local.emit(channel, message) },
    subscribe (channel: string, listener: BusListener) { local.on(channel, listener) },
    onResync () {},
    healthy: true,
    distributed: false
  }
}

async function redisPlugin (fastify: FastifyInstance, options: RedisOptions): Promise<void> {
  const prefix = options.prefix ?? 'gatehouse:'

  if (options.url === undefined) {
    fastify.decorate('redis', null)
    fastify.decorate('bus', createLocalBus())
    return
  }

  const local = new EventEmitter()
  local.setMaxListeners(0)
  const resync = new EventEmitter()

  const client = redisClient(options.url, options.connectTimeoutMs)
  const subscriber = redisClient(options.url, options.connectTimeoutMs, 'gatehouse-bus')
  for (const [name, c] of [['redis', client], ['redis bus', subscriber]] as const) {
    c.on('error', (err) => fastify.log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, `${name}: connection error`))
  }
  const channels = new Set<string>()
  let healthy = false
  let everReady = false
  subscriber.on('ready', () => {
    const wasDown = everReady && !healthy
    const resubscribe = channels.size > 0 ? subscriber.subscribe(...[...channels].map((c) => prefix + c)) : Promise.resolve()
    resubscribe.then(() => {
      healthy = true
      everReady = true
      if (wasDown) {
        fastify.log.info('redis bus: reconnected; caches resynchronised')
        resync.emit('resync')
      }
    }, (err: Error) => fastify.log.warn({ err: { message: err.message } }, 'redis bus: resubscribe failed'))
  })
  subscriber.on('close', () => {
    if (healthy) fastify.log.warn('redis bus: disconnected; cached user state is bypassed until it returns')
    healthy = false
  })
  subscriber.on('message', (channel: string, raw: string) => {
    let message: Record<string, unknown>
    try {
      message = JSON.parse(raw)
    } catch {
      return
    }
    local.emit(channel.slice(prefix.length), message)
  })

  try {
    await Promise.all([client.connect(), subscriber.connect()])
  } catch (err) {
    client.disconnect()
    subscriber.disconnect()
    throw new StartupError('REDIS_UNREACHABLE', `REDIS_URL: cannot connect to Redis (${(err as Error).message})`, { cause: err })
  }

  fastify.decorate('redis', client)
  fastify.decorate('bus', {
    async publish (channel: string, message: Record<string, unknown>) {
      await client.publish(prefix + channel, JSON.stringify(message))
    },
    subscribe (channel: string, listener: BusListener) {
      local.on(channel, listener)
      if (!channels.has(channel)) {
        channels.add(channel)
        subscriber.subscribe(prefix + channel).catch((err: Error) => fastify.log.warn({ err: { message: err.message } }, 'redis bus: subscribe failed'))
      }
    },
    onResync (listener: () => void) { resync.on('resync', listener) },
    get healthy () { return healthy },
    distributed: true
  } satisfies Bus)

  fastify.addHook('onClose', async () => {
    await Promise.allSettled([client.quit(), subscriber.quit()])
  })
}

export const redis = fp(redisPlugin, { name: 'gatehouse-redis', fastify: '5.x' })
export default redis
