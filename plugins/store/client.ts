// Creates the Prisma client for the database a URL names, through Prisma 6.19's driver
// adapters: better-sqlite3 for `file:`, node-postgres for `postgresql://`. Both clients are
// generated from the one schema (scripts/prisma-generate.js) and have the same shape; the
// SQLite client's type stands for both.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { PrismaClient as SqliteClient } from '../../prisma/generated/sqlite/client.ts'
import { createRequire } from 'node:module'
import type * as Pg from 'pg'
import { importPeer, MissingPeerError } from '../../lib/peer.ts'
import { parseDatabaseUrl, type Provider } from './database-url.ts'
import { createTurns, pacedSqliteAdapter } from './sqlite-turns.ts'
import { preparedName, type PostgresConnection, type SqlConnection, type SqliteConnection } from '../../lib/sql-connection.ts'

export type PrismaClient = SqliteClient
export type { Prisma } from '../../prisma/generated/sqlite/client.ts'

const NEEDED_BY = 'gatehouse-store'

export interface ClientOptions {
  /** PostgreSQL pool size. @default 10 */
  poolSize?: number
  /** How long to wait for a PostgreSQL connection before failing (ms). @default 3000 */
  connectTimeoutMs?: number
  /** PostgreSQL: the statements marked with prepared() as named statements. @default true */
  preparedStatements?: boolean
}

export interface CreatedClient {
  prisma: PrismaClient
  provider: Provider
  /** SQLite: the client's own connection, for statements that skip Prisma's client runtime. */
  sqlite?: SqliteConnection
  /** PostgreSQL: the client's own pool through its driver adapter, for the same statements. */
  postgres?: PostgresConnection
}

/** The driver adapter factory, telling `onConnect` each adapter (connection or pool) it makes. */
function observed<F extends object> (factory: F, onConnect: (adapter: SqlConnection) => void): F {
  return new Proxy(factory, {
    get (target, prop) {
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      if (prop === 'connect') {
        return async () => {
          const adapter = await (value as () => Promise<SqlConnection>).call(target)
          onConnect(adapter)
          return adapter
        }
      }
      return (value as (...a: unknown[]) => unknown).bind(target)
    }
  })
}

type QueryConfig = { text?: unknown, name?: unknown } | null

/**
 * node-postgres as @prisma/adapter-pg loads it (the pool it is given must be of its own class),
 * with a Client that sends the statements marked with prepared() as named statements: parsed
 * and planned once per connection, then only bound and executed.
 */
function preparingPool (config: Pg.PoolConfig, prepare: boolean): Pg.Pool {
  let pg: typeof Pg
  try {
    pg = createRequire(createRequire(import.meta.url).resolve('@prisma/adapter-pg'))('pg') as typeof Pg
  } catch (err) {
    throw new MissingPeerError('pg', NEEDED_BY, { cause: err })
  }
  class PreparingClient extends pg.Client {
    override query (...args: unknown[]): any { // eslint-disable-line @typescript-eslint/no-explicit-any
      const config = args[0] as QueryConfig
      if (typeof config === 'object' && config !== null && typeof config.text === 'string' && config.name === undefined) {
        const name = preparedName(config.text)
        if (name !== undefined) args[0] = { ...config, name }
      }
      return (super.query as (...a: unknown[]) => unknown)(...args)
    }
  }
  return new pg.Pool(prepare ? { ...config, Client: PreparingClient } : config)
}

/** The adapter `prisma` connected with (it connects on first use). */
function ownConnection (prisma: PrismaClient, current: () => SqlConnection | undefined, what: string): SqliteConnection | PostgresConnection {
  return {
    connection: async () => {
      if (current() === undefined) await prisma.$connect()
      const connection = current()
      if (connection === undefined) throw new Error(`gatehouse-store: the ${what} driver adapter did not connect`)
      return connection
    }
  }
}

export async function createPrismaClient (databaseUrl: string, options: ClientOptions = {}): Promise<CreatedClient> {
  const target = parseDatabaseUrl(databaseUrl)
  if (target.provider === 'sqlite') {
    const [{ PrismaClient }, { PrismaBetterSQLite3 }] = await Promise.all([
      importPeer('@prisma/client', NEEDED_BY, () => import('../../prisma/generated/sqlite/client.ts')),
      importPeer('@prisma/adapter-better-sqlite3', NEEDED_BY, () => import('@prisma/adapter-better-sqlite3'))
    ])
    if (target.file !== ':memory:') mkdirSync(dirname(target.file!), { recursive: true })
    // Each statement and transaction on its own turn of the event loop (sqlite-turns.ts).
    let connected: SqlConnection | undefined
    const adapter = pacedSqliteAdapter(new PrismaBetterSQLite3({ url: `file:${target.file}`, timeout: 10_000 }), createTurns(), async (a) => {
      // WAL (set by the migrations, kept by the file) with synchronous=NORMAL: a commit appends to
      // the WAL without an fsync; checkpoints fsync. A crash of the process loses nothing; a power
      // loss can lose the last commits, never consistency (docs/store.md). better-sqlite3's bundled
      // SQLite defaults to this in WAL mode; it is set here so that another build does not differ.
      await a.executeScript('PRAGMA synchronous = NORMAL')
      connected = a as unknown as SqlConnection
    })
    const prisma = new PrismaClient({ adapter })
    return { prisma, provider: 'sqlite', sqlite: ownConnection(prisma, () => connected, 'SQLite') }
  }
  const [{ PrismaClient }, { PrismaPg }] = await Promise.all([
    importPeer('@prisma/client', NEEDED_BY, () => import('../../prisma/generated/postgresql/client.ts')),
    importPeer('@prisma/adapter-pg', NEEDED_BY, () => import('@prisma/adapter-pg'))
  ])
  let connected: SqlConnection | undefined
  const pool = preparingPool({
    connectionString: target.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 3000
  }, options.preparedStatements ?? true)
  // The adapter owns the pool: it ends it on $disconnect, as it ends one it made itself.
  const adapter = observed(new PrismaPg(pool, { disposeExternalPool: true }), (a) => { connected = a })
  const prisma = new PrismaClient({ adapter }) as unknown as PrismaClient
  return { prisma, provider: 'postgresql', postgres: ownConnection(prisma, () => connected, 'PostgreSQL') }
}
