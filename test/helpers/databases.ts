// Test databases: a fresh SQLite file, and a fresh PostgreSQL database when one is reachable.
//
// PostgreSQL is found through GATEHOUSE_TEST_DATABASE_URL (CI sets it), or else tried at the
// default local address. When it cannot be reached the PostgreSQL variants are skipped with a
// message saying why; under CI=true with the variable set, an unreachable server is a failure.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { migrate } from '../../plugins/store/migrate.ts'
import type { Provider } from '../../plugins/store/database-url.ts'

const DEFAULT_PG = 'postgresql://postgres@127.0.0.1:5432/postgres'

let pgProbe: Promise<string | null> | undefined

/** The admin URL of the test PostgreSQL server, or null (with the reason logged once). */
export function postgresAdminUrl (): Promise<string | null> {
  pgProbe ??= (async () => {
    const configured = process.env.GATEHOUSE_TEST_DATABASE_URL
    const url = configured ?? DEFAULT_PG
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 })
    try {
      await client.connect()
      await client.query('SELECT 1')
      return url
    } catch (err) {
      if (configured !== undefined && process.env.CI === 'true') {
        throw new Error(`GATEHOUSE_TEST_DATABASE_URL=${configured} is set but unreachable: ${(err as Error).message}`)
      }
      return null
    } finally {
      await client.end().catch(() => {})
    }
  })()
  return pgProbe
}

export const PG_SKIP_REASON = 'PostgreSQL is not reachable (set GATEHOUSE_TEST_DATABASE_URL=postgresql://user@host:5432/postgres to run these tests)'

export interface TestDatabase {
  provider: Provider
  url: string
  drop: () => Promise<void>
}

/** A new, migrated database of `provider`. */
export async function createTestDatabase (provider: Provider, options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  let db: TestDatabase
  if (provider === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'))
    db = { provider, url: `file:${join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) }
  } else {
    const admin = await postgresAdminUrl()
    if (admin === null) throw new Error(PG_SKIP_REASON)
    const name = `gatehouse_test_${process.pid}_${randomBytes(4).toString('hex')}`
    const client = new pg.Client({ connectionString: admin })
    await client.connect()
    await client.query(`CREATE DATABASE ${name}`)
    await client.end()
    const url = new URL(admin)
    url.pathname = `/${name}`
    db = {
      provider,
      url: url.toString(),
      drop: async () => {
        const c = new pg.Client({ connectionString: admin })
        await c.connect()
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
        await c.end()
      }
    }
  }
  if (options.migrate !== false) await migrate(db.url)
  return db
}

/** The providers to run a store test on, each with a skip reason when unavailable. */
export async function providers (): Promise<Array<{ provider: Provider, skip: string | false }>> {
  const admin = await postgresAdminUrl()
  return [
    { provider: 'sqlite', skip: false },
    { provider: 'postgresql', skip: admin === null ? PG_SKIP_REASON : false }
  ]
}
