// The test Redis: GATEHOUSE_TEST_REDIS_URL (CI sets it) or the default local address.
// Unreachable: the Redis variants are skipped with the reason; under CI=true with the
// variable set, an unreachable Redis is a failure.
import { Redis } from 'ioredis'

const DEFAULT_REDIS = 'redis://127.0.0.1:6379'
let probe: Promise<string | null> | undefined

export const REDIS_SKIP_REASON = 'Redis is not reachable (set GATEHOUSE_TEST_REDIS_URL=redis://host:6379 to run these tests)'

export function redisUrl (): Promise<string | null> {
  probe ??= (async () => {
    const configured = process.env.GATEHOUSE_TEST_REDIS_URL
    const url = configured ?? DEFAULT_REDIS
    const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      return url
    } catch (err) {
      if (configured !== undefined && process.env.CI === 'true') {
        throw new Error(`GATEHOUSE_TEST_REDIS_URL=${configured} is set but unreachable: ${(err as Error).message}`)
      }
      return null
    } finally {
      client.disconnect()
    }
  })()
  return probe
}

/** A unique key prefix so parallel test files never share counters. */
export function uniquePrefix (): string {
  return `gatehouse-test:${process.pid}:${Math.random().toString(36).slice(2)}:`
}
