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
import { inTransaction, sql, type PostgresConnection, type SqliteConnection } from '../../lib/sql-connection.ts'

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

// PostgreSQL through the store's own pool: the same statement as createPostgres, `$n` placeholders.
const FAMILY_PG = `
  WITH family AS (
    INSERT INTO refresh_families (id, user_id, client_id, absolute_expires_at, created_at, ip, user_agent)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING id
  )
  INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, idle_expires_at, absolute_expires_at, created_at)
  SELECT $8, family.id, $2, $3, $9, $10, $4, $5
  FROM family`
const FAMILY_AUTHENTICATION_PG = `
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
  SELECT family.id, $11, $12 FROM family`

export function createFamilyStore (prisma: PrismaClient, provider: Provider, sqlite?: SqliteConnection, postgres?: PostgresConnection): CreateFamily {
  async function createPostgresDirect (f: NewFamily): Promise<void> {
    const args: unknown[] = [f.id, f.userId, f.clientId, f.absoluteExpiresAt, f.now, f.activity.ip, f.activity.userAgent, randomUUID(), f.token.tokenHash, f.token.idleExpiresAt]
    const connection = await postgres!.connection()
    if (f.authentication === null) await connection.executeRaw(sql(FAMILY_PG, args))
    else await connection.executeRaw(sql(FAMILY_AUTHENTICATION_PG, [...args, f.authentication.amr, f.authentication.authTime]))
  }

  async function createPostgres (f: NewFamily): Promise<void> {
    const tokenId = randomUUID()
    if (f.authentication === null) {
      await prisma.$executeRaw`
        WITH family AS (
          INSERT INTO refresh_families (id, user_id, client_id, absolute_expires_at, created_at, ip, user_agent)
          VALUES (${f.id}, ${f.userId}, ${f.clientId}, ${f.absoluteExpiresAt}, ${f.now}, ${f.activity.ip}, ${f.activity.userAgent})
          RETURNING id
        )
        INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, idle_expires_at, absolute_expires_at, created_at)
        SELECT ${tokenId}, family.id, ${f.userId}, ${f.clientId}, ${f.token.tokenHash}, ${f.token.idleExpiresAt}, ${f.absoluteExpiresAt}, ${f.now}
        FROM family`
      return
    }
    await prisma.$executeRaw`
      WITH family AS (
        INSERT INTO refresh_families (id, user_id, client_id, absolute_expires_at, created_at, ip, user_agent)
        VALUES (${f.id}, ${f.userId}, ${f.clientId}, ${f.absoluteExpiresAt}, ${f.now}, ${f.activity.ip}, ${f.activity.userAgent})
        RETURNING id
      ), token AS (
        INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, idle_expires_at, absolute_expires_at, created_at)
        SELECT ${tokenId}, family.id, ${f.userId}, ${f.clientId}, ${f.token.tokenHash}, ${f.token.idleExpiresAt}, ${f.absoluteExpiresAt}, ${f.now}
        FROM family
      )
      INSERT INTO session_authentications (family_id, amr, auth_time)
      SELECT family.id, ${f.authentication.amr}, ${f.authentication.authTime} FROM family`
  }

  async function createSqliteDirect (f: NewFamily): Promise<void> {
    const tokenId = randomUUID()
    const connection = await sqlite!.connection()
    await inTransaction(connection, async (tx) => {
      await tx.executeRaw(sql(FAMILY_SQL, [f.id, f.userId, f.clientId, f.absoluteExpiresAt, f.now, f.activity.ip, f.activity.userAgent]))
      await tx.executeRaw(sql(TOKEN_SQL, [tokenId, f.id, f.userId, f.clientId, f.token.tokenHash, f.token.idleExpiresAt, f.absoluteExpiresAt, f.now]))
      if (f.authentication !== null) await tx.executeRaw(sql(AUTHENTICATION_SQL, [f.id, f.authentication.amr, f.authentication.authTime]))
    })
  }

  // An app's own SQLite client: Prisma's raw queries, after a yield (see rotation-store.ts).
  async function createSqlite (f: NewFamily): Promise<void> {
    const tokenId = randomUUID()
    // A synchronous driver: see rotation-store.ts (sockets are read between batches of writes).
    await yieldToEventLoop()
    const statements = [
      prisma.$executeRaw`
        INSERT INTO refresh_families (id, user_id, client_id, absolute_expires_at, created_at, ip, user_agent)
        VALUES (${f.id}, ${f.userId}, ${f.clientId}, ${f.absoluteExpiresAt}, ${f.now}, ${f.activity.ip}, ${f.activity.userAgent})`,
      prisma.$executeRaw`
        INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, idle_expires_at, absolute_expires_at, created_at)
        VALUES (${tokenId}, ${f.id}, ${f.userId}, ${f.clientId}, ${f.token.tokenHash}, ${f.token.idleExpiresAt}, ${f.absoluteExpiresAt}, ${f.now})`
    ]
    if (f.authentication !== null) {
      statements.push(prisma.$executeRaw`
        INSERT INTO session_authentications (family_id, amr, auth_time) VALUES (${f.id}, ${f.authentication.amr}, ${f.authentication.authTime})`)
    }
    await prisma.$transaction(statements)
  }

  if (provider === 'postgresql') return postgres === undefined ? createPostgres : createPostgresDirect
  return sqlite === undefined ? createSqlite : createSqliteDirect
}
