// gatehouse-store: owns the Prisma client (or adopts the app's own), decorates the instance
// with it, translates Prisma errors at its boundary and disconnects on close.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createPrismaClient, type PrismaClient } from './client.ts'
import type { PostgresConnection, SqliteConnection } from '../../lib/sql-connection.ts'
import { isInfrastructureError, translatePrismaError } from '../../lib/database-errors.ts'
import { StartupError } from '../../lib/startup-error.ts'
import { optionChecks } from '../../lib/options.ts'
import { migrate, pendingMigrations, MigrationError } from './migrate.ts'
import { parseDatabaseUrl, redactDatabaseUrl, type Provider } from './database-url.ts'

export interface StoreOptions {
  /** `file:<path>` (SQLite) or `postgresql://...`. Ignored when `prisma` is given. @default 'file:./data/gatehouse.db' */
  databaseUrl?: string
  /** The app's own Prisma client (generated from Gatehouse's schema); it is not disconnected on close. */
  prisma?: PrismaClient
  /** With `prisma`, which database it talks to. @default 'postgresql' */
  provider?: Provider
  /**
   * What to do about pending migrations at start: 'apply' them, 'check' (refuse to start
   * when any is pending) or 'skip'. @default 'apply' for SQLite, 'check' for PostgreSQL
   */
  migrations?: 'apply' | 'check' | 'skip'
  /** PostgreSQL pool size. @default 10 */
  poolSize?: number
  /**
   * PostgreSQL: send the hot-path statements as named prepared statements, planned once per
   * connection (docs/store.md). Turn off behind a pooler that cannot keep them (PgBouncer in
   * transaction mode before 1.21, or with `max_prepared_statements = 0`). @default true
   */
  preparedStatements?: boolean
  /** How long close waits for the database connections before giving up on them (ms). @default 5000 */
  disconnectTimeoutMs?: number
}

export interface Store {
  /** The Prisma client; every query error is translated into a coded Gatehouse error. */
  prisma: PrismaClient
  provider: Provider
  /** Resolves true when the database answers a trivial query within `timeoutMs`. */
  ping: (timeoutMs?: number) => Promise<boolean>
  /** SQLite, when the store created the client: its connection, for statements that skip Prisma's client runtime. */
  sqlite?: SqliteConnection
  /** PostgreSQL, when the store created the client: its pool through the driver adapter, for the same statements. */
  postgres?: PostgresConnection
}

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

/** A Prisma client whose query errors are translated into coded errors. */
export function withErrorTranslation (prisma: PrismaClient): PrismaClient {
  return prisma.$extends({
    query: {
      async $allOperations ({ args, query }) {
        try {
          return await query(args)
        } catch (err) {
          throw translatePrismaError(err)
        }
      }
    }
  }) as unknown as PrismaClient
}

/** A database that cannot be reached at start-up: StartupError STORE_UNREACHABLE, with the driver's last line. */
function unreachable (err: unknown, databaseUrl: string): unknown {
  if (!isInfrastructureError(err)) return err
  const cause = (err as { cause?: Error }).cause ?? (err as Error)
  const detail = String(cause.message ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '').pop() ?? ''
  return new StartupError('STORE_UNREACHABLE', `cannot reach the database at ${redactDatabaseUrl(databaseUrl)}${detail === '' ? '' : ` (${detail})`}`, { cause: err })
}

async function storePlugin (fastify: FastifyInstance, options: StoreOptions): Promise<void> {
  const preparedStatements = optionChecks('gatehouse-store').boolean('preparedStatements', options.preparedStatements, true)
  let raw: PrismaClient
  let provider: Provider
  let sqlite: SqliteConnection | undefined
  let postgres: PostgresConnection | undefined
  const owned = options.prisma === undefined
  if (options.prisma !== undefined) {
    raw = options.prisma
    provider = options.provider ?? 'postgresql'
  } else {
    const databaseUrl = options.databaseUrl ?? 'file:./data/gatehouse.db'
    const target = parseDatabaseUrl(databaseUrl)
    const mode = options.migrations ?? (target.provider === 'sqlite' ? 'apply' : 'check')
    try {
      if (mode === 'apply') {
        const result = await migrate(databaseUrl, { log: (line) => fastify.log.info(line) })
        if (result.applied.length > 0) fastify.log.info({ applied: result.applied }, `database ${redactDatabaseUrl(databaseUrl)}: ${result.applied.length} migration(s) applied`)
      } else if (mode === 'check') {
        const pending = await pendingMigrations(databaseUrl)
        if (pending.length > 0) {
          throw new MigrationError(`the database has ${pending.length} pending migration(s) (${pending.join(', ')}): run \`npm run migrate\` (or \`gatehouse migrate\`) with the same DATABASE_URL first`)
        }
      }
      ;({ prisma: raw, provider, sqlite, postgres } = await createPrismaClient(databaseUrl, { poolSize: options.poolSize, preparedStatements }))
    } catch (err) {
      throw unreachable(err, databaseUrl)
    }
  }
  const prisma = withErrorTranslation(raw)

  async function ping (timeoutMs = 2000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, timeoutMs, false) })
    try {
      return await Promise.race([raw.$queryRawUnsafe('SELECT 1').then(() => true, () => false), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  fastify.decorate('store', { prisma, provider, ping, ...(sqlite === undefined ? {} : { sqlite }), ...(postgres === undefined ? {} : { postgres }) })
  if (owned) {
    fastify.addHook('onClose', async () => {
      // A pool connection that died in the middle of a transaction may never be released by the
      // driver adapter: do not let it hold the shutdown forever.
      let timer: NodeJS.Timeout | undefined
      const gaveUp = await Promise.race([
        raw.$disconnect().then(() => false, (err: unknown) => { fastify.log.warn({ err }, 'store: error while disconnecting'); return false }),
        new Promise<boolean>((resolve) => { timer = setTimeout(resolve, options.disconnectTimeoutMs ?? 5000, true) })
      ])
      clearTimeout(timer)
      if (gaveUp) fastify.log.warn('store: the database connections did not close in time; leaving them to the process exit')
    })
  }
}

export const store = fp(storePlugin, { name: 'gatehouse-store', fastify: '5.x' })
export default store
export { translatePrismaError, isInfrastructureError, isUniqueViolation } from '../../lib/database-errors.ts'
export { migrate, pendingMigrations, MigrationError } from './migrate.ts'
export { parseDatabaseUrl, redactDatabaseUrl, DatabaseUrlError } from './database-url.ts'
export type { PrismaClient, Prisma } from './client.ts'
export type { User } from '../../prisma/generated/sqlite/client.ts'
export type { Provider } from './database-url.ts'
export { createPrismaClient, type ClientOptions, type CreatedClient } from './client.ts'
export { pacedSqliteAdapter, createTurns, type Turns } from './sqlite-turns.ts'
export type { SqliteConnection, PostgresConnection, SqlConnection, SqlTransaction, SqlQuery, SqlResultSet } from '../../lib/sql-connection.ts'
export { MissingPeerError } from '../../lib/peer.ts'
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
