// The two statements of every password sign-in (the account by email, then the login stamp) in
// plain SQL through the store's Prisma client: raw queries on the same driver adapter, without the
// ORM's query compiler and interpreter, which cost more CPU than the rest of a login besides
// argon2 (docs/credentials.md, "Cost of a login"). Both dialects take the same statements. On the
// store's own SQLite client they go to its driver adapter connection directly (`store.sqlite`, as
// the refresh rotation does), without the client's request pipeline.
import type { PrismaClient } from '../store/index.ts'
import { firstRow, prepared, sql, type PostgresConnection, type SqliteConnection } from '../../lib/sql-connection.ts'
import type { User } from '../../prisma/generated/sqlite/client.ts'

export interface SignInStore {
  /** The account with this (normalised) email, every column, or null. */
  findByEmail: (email: string) => Promise<User | null>
  /**
   * Stamps the login, only while the stored hash is still the one that was verified (as the
   * ORM's rehash write is), so a concurrent password change is never overwritten. True when it wrote.
   */
  stampLogin: (userId: string, verifiedHash: string, now: Date) => Promise<boolean>
}

interface RawUser {
  id: string
  email: string
  name: string | null
  password_hash: string | null
  status: string
  roles: string
  token_version: number | bigint
  password_changed_at: Date | null
  last_login_at: Date | null
  deleted_at: Date | null
  created_at: Date
  updated_at: Date
  email_verified_at: Date | null
}

function toUser (r: RawUser): User {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    passwordHash: r.password_hash,
    status: r.status,
    roles: r.roles,
    tokenVersion: Number(r.token_version),
    passwordChangedAt: r.password_changed_at,
    lastLoginAt: r.last_login_at,
    deletedAt: r.deleted_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    emailVerifiedAt: r.email_verified_at
  }
}

const FIND_SQL = `
  SELECT id, email, name, password_hash, status, roles, token_version, password_changed_at,
         last_login_at, deleted_at, created_at, updated_at, email_verified_at
  FROM users WHERE email = ?`
const STAMP_SQL = 'UPDATE users SET last_login_at = ?, updated_at = ? WHERE id = ? AND password_hash = ?'
const DATE_COLUMNS = new Set(['password_changed_at', 'last_login_at', 'deleted_at', 'created_at', 'updated_at', 'email_verified_at'])

// PostgreSQL's placeholders are numbered.
const FIND_PG = prepared(FIND_SQL.replace('email = ?', 'email = $1'))
const STAMP_PG = prepared('UPDATE users SET last_login_at = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4')

/** `sqlite` / `postgres`: the store's own connection (`store.sqlite`, `store.postgres`), when it created the client. */
export function createSignInStore (prisma: PrismaClient, sqlite?: SqliteConnection, postgres?: PostgresConnection): SignInStore {
  const direct = sqlite ?? postgres
  if (direct !== undefined) {
    const find = sqlite === undefined ? FIND_PG : FIND_SQL
    const stamp = sqlite === undefined ? STAMP_PG : STAMP_SQL
    return {
      async findByEmail (email) {
        const row = firstRow<RawUser>(await (await direct.connection()).queryRaw(sql(find, [email])), DATE_COLUMNS)
        return row === null ? null : toUser(row)
      },
      async stampLogin (userId, verifiedHash, now) {
        return await (await direct.connection()).executeRaw(sql(stamp, [now, now, userId, verifiedHash])) === 1
      }
    }
  }

  async function findByEmail (email: string): Promise<User | null> {
    const rows = await prisma.$queryRaw<RawUser[]>`
      SELECT id, email, name, password_hash, status, roles, token_version, password_changed_at,
             last_login_at, deleted_at, created_at, updated_at, email_verified_at
      FROM users WHERE email = ${email}`
    return rows.length === 0 ? null : toUser(rows[0])
  }

  async function stampLogin (userId: string, verifiedHash: string, now: Date): Promise<boolean> {
    const count = await prisma.$executeRaw`
      UPDATE users SET last_login_at = ${now}, updated_at = ${now}
      WHERE id = ${userId} AND password_hash = ${verifiedHash}`
    return count === 1
  }

  return { findByEmail, stampLogin }
}
