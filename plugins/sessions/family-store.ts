// The write of a new session (login) in plain SQL through the store's Prisma client, like the
// rotation (rotation-store.ts): the ORM's nested create was a transaction of three to four
// statements plus the query compiler's CPU, more than the rest of a login besides argon2.
//  - PostgreSQL: one statement (data-modifying CTEs insert the family, its first token and, for a
//    session that is not password-only, its authentication); on the store's own client through its
//    driver adapter's pool directly (`store.postgres`).
//  - SQLite: the same inserts in one transaction (one commit); on the store's own client through its
//    driver adapter connection directly (`store.sqlite`), as the rotation does.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { randomUUID } from 'node:crypto'
import type { PrismaClient, Provider } from '../store/index.ts'
import { inTransaction, prepared, sql, type PostgresConnection, type SqliteConnection } from '../../lib/sql-connection.ts'

export interface NewFamily {
  id: string
  userId: string
  clientId: string
  now: Date
  absoluteExpiresAt: Date
  activity: { ip: string | null, userAgent: string | null }
  token: { tokenHash: string, idleExpiresAt: Date }
  /** Null for a password-only session (its absence means ['pwd'] at the family's creation). */
  authentication: { amr: string, authTime: Date } | null
}

export type CreateFamily = (family: NewFamily) => Promise<void>

const FAMILY_SQL = 'INSERT INTO refresh_families (id, user_id, client_id, absolute_expires_at, created_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)'
const TOKEN_SQL = 'INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, idle_expires_at, absolute_expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
const AUTHENTICATION_SQL = 'INSERT INTO session_authentications (family_id, amr, auth_time) VALUES (?, ?, ?)'

// PostgreSQL (`$n` placeholders), through the store's own pool or Prisma's raw queries.
const FAMILY_PG = prepared(`
  WITH family AS (
    INSERT INTO refresh_families (id, user_id, client_id, absolute_expires_at, created_at, ip, user_agent)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING id
  )
  INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, idle_expires_at, absolute_expires_at, created_at)
  SELECT $8, family.id, $2, $3, $9, $10, $4, $5
  FROM family`)
const FAMILY_AUTHENTICATION_PG = prepared(`
  WITH family AS (
    INSERT INTO refresh_families (id, user_id, client_id, absolute_expires_at, created_at, ip, user_agent)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING id
  ), token AS (
    INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, idle_expires_at, absolute_expires_at, created_at)
    SELECT $8, family.id, $2, $3, $9, $10, $4, $5
    FROM family
  )
  INSERT INTO session_authentications (family_id, amr, auth_time)
  SELECT family.id, $11, $12 FROM family`)

/** PostgreSQL: the one statement of a new family (with its authentication when it has one). */
function postgresStatement (f: NewFamily): { text: string, args: unknown[] } {
  const args: unknown[] = [f.id, f.userId, f.clientId, f.absoluteExpiresAt, f.now, f.activity.ip, f.activity.userAgent, randomUUID(), f.token.tokenHash, f.token.idleExpiresAt]
  if (f.authentication === null) return { text: FAMILY_PG, args }
  return { text: FAMILY_AUTHENTICATION_PG, args: [...args, f.authentication.amr, f.authentication.authTime] }
}

/** SQLite: the statements of a new family, for one transaction. */
function sqliteStatements (f: NewFamily): Array<{ text: string, args: unknown[] }> {
  const statements = [
    { text: FAMILY_SQL, args: [f.id, f.userId, f.clientId, f.absoluteExpiresAt, f.now, f.activity.ip, f.activity.userAgent] },
    { text: TOKEN_SQL, args: [randomUUID(), f.id, f.userId, f.clientId, f.token.tokenHash, f.token.idleExpiresAt, f.absoluteExpiresAt, f.now] }
  ]
  if (f.authentication !== null) statements.push({ text: AUTHENTICATION_SQL, args: [f.id, f.authentication.amr, f.authentication.authTime] })
  return statements
}

export function createFamilyStore (prisma: PrismaClient, provider: Provider, sqlite?: SqliteConnection, postgres?: PostgresConnection): CreateFamily {
  async function createPostgres (f: NewFamily): Promise<void> {
    const { text, args } = postgresStatement(f)
    if (postgres !== undefined) await (await postgres.connection()).executeRaw(sql(text, args))
    else await prisma.$executeRawUnsafe(text, ...args)
  }

  async function createSqlite (f: NewFamily): Promise<void> {
    const statements = sqliteStatements(f)
    if (sqlite !== undefined) {
      const connection = await sqlite.connection()
      await inTransaction(connection, async (tx) => {
        for (const st of statements) await tx.executeRaw(sql(st.text, st.args))
      })
      return
    }
    // An app's own client: a synchronous driver, see rotation-store.ts (sockets are read between batches of writes).
    await yieldToEventLoop()
    await prisma.$transaction(statements.map((st) => prisma.$executeRawUnsafe(st.text, ...st.args)))
  }

  return provider === 'postgresql' ? createPostgres : createSqlite
}
