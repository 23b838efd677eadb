// A SQL connection as Prisma's driver adapters offer it (queryRaw, executeRaw, startTransaction),
// for the few statements on a hot path that are worth more than Prisma's client runtime costs
// them: its raw queries still run its request pipeline (serialization, the query-plan
// interpreter, extensions, a timer per transaction), about three quarters of the memory a refresh
// allocated on SQLite (docs/sessions.md). The store hands out its SQLite client's connection
// (plugins/store/client.ts): the same connection, transaction lock and turns of the event loop
// Prisma uses, and the same error values (DriverAdapterError).
import { createHash } from 'node:crypto'

/** A value's type for the adapter's argument mapping (`@prisma/driver-adapter-utils` ArgType). */
export interface SqlArgType { scalarType: 'string' | 'int' | 'datetime' | 'unknown', arity: 'scalar' }
export interface SqlQuery { sql: string, args: unknown[], argTypes: SqlArgType[] }
export interface SqlResultSet { columnNames: string[], rows: unknown[][] }

export interface SqlTransaction {
  queryRaw: (query: SqlQuery) => Promise<SqlResultSet>
  executeRaw: (query: SqlQuery) => Promise<number>
  /** Releases the adapter's lock; the COMMIT statement is the caller's, as with Prisma's own transactions. */
  commit: () => Promise<void>
  rollback: () => Promise<void>
}

export interface SqlConnection {
  queryRaw: (query: SqlQuery) => Promise<SqlResultSet>
  executeRaw: (query: SqlQuery) => Promise<number>
  startTransaction: () => Promise<SqlTransaction>
}

/** The connection of a SQLite client the store created (connected on first use). */
export interface SqliteConnection {
  connection: () => Promise<SqlConnection>
}

/** The pool of a PostgreSQL client the store created, as its driver adapter offers it (`$1` placeholders). */
export type PostgresConnection = SqliteConnection

const preparedNames = new Map<string, string>()

/**
 * Marks a PostgreSQL statement (`$n` placeholders) as prepared: the store's pool parses and plans
 * it once per connection, under a name derived from its text, instead of on every call. For the
 * statements of the hot paths, whose planning costs PostgreSQL more than running them (a profile
 * read: about 5x, docs/store.md). Returns the text, so a constant can be declared through it.
 */
export function prepared (text: string): string {
  if (!preparedNames.has(text)) preparedNames.set(text, `gatehouse_${createHash('sha256').update(text).digest('hex').slice(0, 20)}`)
  return text
}

/** The name a statement text was prepared under, if it was marked with prepared(). */
export function preparedName (text: string): string | undefined {
  return preparedNames.get(text)
}

/** SQL with `?` placeholders and its values; each value's type is inferred (Date, number, string, null). */
export function sql (text: string, args: unknown[]): SqlQuery {
  return {
    sql: text,
    args,
    argTypes: args.map((a) => ({ scalarType: a instanceof Date ? 'datetime' : typeof a === 'number' ? 'int' : a === null ? 'unknown' : 'string', arity: 'scalar' }))
  }
}

/** One row of an adapter's answer as an object keyed by column name (see rowsOf). */
function rowObject<T> (names: string[], values: unknown[], dateColumns: ReadonlySet<string>): T {
  const row: Record<string, unknown> = {}
  for (let i = 0; i < names.length; i++) {
    const v = values[i]
    row[names[i]] = v === null || v === undefined ? null : dateColumns.has(names[i]) ? new Date(typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v as string | number) : v
  }
  return row as T
}

/**
 * The rows of an adapter's answer as objects keyed by column name, the way a Prisma raw query
 * returns them: the `dateColumns` (SQLite DateTime: the ISO text Prisma stores, or epoch
 * milliseconds) as Dates.
 */
export function rowsOf<T> (result: SqlResultSet, dateColumns: ReadonlySet<string>): T[] {
  return result.rows.map((values) => rowObject<T>(result.columnNames, values, dateColumns))
}

/** The first row of an adapter's answer as rowsOf() makes it; null when there is no row. */
export function firstRow<T> (result: SqlResultSet, dateColumns: ReadonlySet<string>): T | null {
  const values = result.rows[0]
  return values === undefined ? null : rowObject<T>(result.columnNames, values, dateColumns)
}

/**
 * Runs `body` in a transaction of `connection`: BEGIN (under the adapter's lock), the body's
 * statements, COMMIT; on any error ROLLBACK, and the error is thrown again.
 */
export async function inTransaction<T> (connection: SqlConnection, body: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  const tx = await connection.startTransaction()
  let result: T
  try {
    result = await body(tx)
    await tx.executeRaw(sql('COMMIT', []))
  } catch (err) {
    try {
      await tx.executeRaw(sql('ROLLBACK', []))
    } catch {}
    await tx.rollback()
    throw err
  }
  await tx.commit()
  return result
}
