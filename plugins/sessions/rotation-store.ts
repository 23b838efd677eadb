// The hot path of a refresh in plain SQL through the store's Prisma client (raw queries, same
// driver adapter): one read of everything a rotation needs, and one atomic conditional write.
// The ORM's query compiler and interpreter cost more CPU than the rest of a refresh together
// (docs/sessions.md, "Cost of a rotation"); these statements skip them.
//  - PostgreSQL: the write is one statement (data-modifying CTEs): UPDATE ... RETURNING feeds the
//    successor's INSERT. The conditional UPDATE takes the row lock, so of concurrent rotations of
//    one token exactly one matches; the others re-check the WHERE after the winner commits.
//  - SQLite: UPDATE, conditional INSERT and the session's "last used" in one transaction (one
//    commit). When the store created the client, the read and the transaction go to its driver
//    adapter directly (the store's `sqlite` connection): the same statements on the same
//    connection and lock, without Prisma's client runtime, which allocated about three quarters of
//    a refresh's memory (docs/sessions.md, "Cost of a rotation").
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { PrismaClient, Provider } from '../store/index.ts'
import { firstRow, inTransaction, prepared, sql, type PostgresConnection, type SqliteConnection } from '../../lib/sql-connection.ts'

/** The presented token's row with its family, user and session authentication. */
export interface RotationRow {
  id: string
  familyId: string
  userId: string
  clientId: string
  usedAt: Date | null
  successorId: string | null
  revokedAt: Date | null
  idleExpiresAt: Date
  absoluteExpiresAt: Date
  family: { id: string, createdAt: Date, absoluteExpiresAt: Date, revokedAt: Date | null, revokedReason: string | null }
  user: { id: string, roles: string, tokenVersion: number, status: string, deletedAt: Date | null }
  authentication: { amr: string, authTime: Date } | null
}

export interface RotationWrite {
  tokenHash: string
  clientId: string
  now: Date
  /** The user state the access token was signed from: the write fails if it changed. */
  roles: string
  tokenVersion: number
  successor: { id: string, tokenHash: string, idleExpiresAt: Date, absoluteExpiresAt: Date }
  activity: { ip: string | null, userAgent: string | null }
}

export interface RotationStore {
  read: (tokenHash: string) => Promise<RotationRow | null>
  /** True when this caller rotated the token (and stored the successor), false when it did not. */
  rotate: (write: RotationWrite) => Promise<boolean>
  /** Whether `rotate` already recorded the session's last use (SQLite: in its transaction). */
  recordsActivity: boolean
  noteActivity: (familyId: string, now: Date, activity: { ip: string | null, userAgent: string | null }) => Promise<void>
}

interface RawRow {
  id: string
  family_id: string
  user_id: string
  client_id: string
  used_at: Date | null
  successor_id: string | null
  revoked_at: Date | null
  idle_expires_at: Date
  absolute_expires_at: Date
  f_created_at: Date
  f_absolute_expires_at: Date
  f_revoked_at: Date | null
  f_revoked_reason: string | null
  u_roles: string
  u_token_version: number | bigint
  u_status: string
  u_deleted_at: Date | null
  a_amr: string | null
  a_auth_time: Date | null
}

function toRow (r: RawRow): RotationRow {
  return {
    id: r.id,
    familyId: r.family_id,
    userId: r.user_id,
    clientId: r.client_id,
    usedAt: r.used_at,
    successorId: r.successor_id,
    revokedAt: r.revoked_at,
    idleExpiresAt: r.idle_expires_at,
    absoluteExpiresAt: r.absolute_expires_at,
    family: { id: r.family_id, createdAt: r.f_created_at, absoluteExpiresAt: r.f_absolute_expires_at, revokedAt: r.f_revoked_at, revokedReason: r.f_revoked_reason },
    user: { id: r.user_id, roles: r.u_roles, tokenVersion: Number(r.u_token_version), status: r.u_status, deletedAt: r.u_deleted_at },
    authentication: r.a_amr === null || r.a_auth_time === null ? null : { amr: r.a_amr, authTime: r.a_auth_time }
  }
}

const READ_SQL = `
  SELECT t.id, t.family_id, t.user_id, t.client_id, t.used_at, t.successor_id, t.revoked_at,
         t.idle_expires_at, t.absolute_expires_at,
         f.created_at AS f_created_at, f.absolute_expires_at AS f_absolute_expires_at,
         f.revoked_at AS f_revoked_at, f.revoked_reason AS f_revoked_reason,
         u.roles AS u_roles, u.token_version AS u_token_version, u.status AS u_status, u.deleted_at AS u_deleted_at,
         a.amr AS a_amr, a.auth_time AS a_auth_time
  FROM refresh_tokens t
  JOIN refresh_families f ON f.id = t.family_id
  JOIN users u ON u.id = t.user_id
  LEFT JOIN session_authentications a ON a.family_id = t.family_id
  WHERE t.token_hash = ?`

const ROTATE_SQL = `
  UPDATE refresh_tokens SET used_at = ?, successor_id = ?
  WHERE token_hash = ? AND client_id = ?
    AND used_at IS NULL AND revoked_at IS NULL
    AND idle_expires_at > ? AND absolute_expires_at > ?
    AND EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL)
    AND EXISTS (SELECT 1 FROM users u WHERE u.id = refresh_tokens.user_id AND u.deleted_at IS NULL AND u.status = 'active'
                AND u.token_version = ? AND u.roles = ?)`

const SUCCESSOR_SQL = `
  INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, parent_id, idle_expires_at, absolute_expires_at, created_at)
  SELECT ?, family_id, user_id, client_id, ?, id, ?, ?, ?
  FROM refresh_tokens WHERE token_hash = ? AND successor_id = ?`

const ACTIVITY_SQL = `
  UPDATE refresh_families SET last_used_at = ?, ip = ?, user_agent = ?
  WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ? AND successor_id = ?)`

// PostgreSQL through the store's own pool (`$n` placeholders): the read, and the rotation's one statement.
const READ_PG = prepared(READ_SQL.replace('t.token_hash = ?', 't.token_hash = $1'))

const ROTATE_PG = prepared(`
  WITH won AS (
    UPDATE refresh_tokens t SET used_at = $1, successor_id = $2
    FROM refresh_families f, users u
    WHERE t.token_hash = $3 AND t.client_id = $4
      AND t.used_at IS NULL AND t.revoked_at IS NULL
      AND t.idle_expires_at > $1 AND t.absolute_expires_at > $1
      AND f.id = t.family_id AND f.revoked_at IS NULL
      AND u.id = t.user_id AND u.deleted_at IS NULL AND u.status = 'active'
      AND u.token_version = $5 AND u.roles = $6
    RETURNING t.id, t.family_id, t.user_id
  )
  INSERT INTO refresh_tokens (id, family_id, user_id, client_id, token_hash, parent_id, idle_expires_at, absolute_expires_at, created_at)
  SELECT $2, won.family_id, won.user_id, $4, $7, won.id, $8, $9, $1
  FROM won
  RETURNING id`)

const ACTIVITY_PG = prepared('UPDATE refresh_families SET last_used_at = $1, ip = $2, user_agent = $3 WHERE id = $4')
const FAMILY_ACTIVITY_SQL = 'UPDATE refresh_families SET last_used_at = ?, ip = ?, user_agent = ? WHERE id = ?'

const DATE_COLUMNS = new Set(['used_at', 'revoked_at', 'idle_expires_at', 'absolute_expires_at', 'f_created_at', 'f_absolute_expires_at', 'f_revoked_at', 'u_deleted_at', 'a_auth_time'])

export function createRotationStore (prisma: PrismaClient, provider: Provider, sqlite?: SqliteConnection, postgres?: PostgresConnection): RotationStore {
  async function readDirect (tokenHash: string): Promise<RotationRow | null> {
    const connection = await (provider === 'postgresql' ? postgres! : sqlite!).connection()
    // DateTime columns come as text (SQLite: as Prisma stores it, or epoch ms); integers maybe as decimal strings (toRow).
    const row = firstRow<RawRow>(await connection.queryRaw(sql(provider === 'postgresql' ? READ_PG : READ_SQL, [tokenHash])), DATE_COLUMNS)
    return row === null ? null : toRow(row)
  }

  async function rotateSqliteDirect (w: RotationWrite): Promise<boolean> {
    const s = w.successor
    const connection = await sqlite!.connection()
    return await inTransaction(connection, async (tx) => {
      const won = await tx.executeRaw(sql(ROTATE_SQL, [w.now, s.id, w.tokenHash, w.clientId, w.now, w.now, w.tokenVersion, w.roles]))
      await tx.executeRaw(sql(SUCCESSOR_SQL, [s.id, s.tokenHash, s.idleExpiresAt, s.absoluteExpiresAt, w.now, w.tokenHash, s.id]))
      await tx.executeRaw(sql(ACTIVITY_SQL, [w.now, w.activity.ip, w.activity.userAgent, w.tokenHash, s.id]))
      return won === 1
    })
  }

  // The same statements through Prisma's raw queries, for an app's own client (`store: { prisma }`).
  async function read (tokenHash: string): Promise<RotationRow | null> {
    const rows = await prisma.$queryRawUnsafe<RawRow[]>(provider === 'postgresql' ? READ_PG : READ_SQL, tokenHash)
    return rows.length === 0 ? null : toRow(rows[0])
  }

  async function rotatePostgres (w: RotationWrite): Promise<boolean> {
    const s = w.successor
    const rows = await prisma.$queryRawUnsafe<Array<{ id: string }>>(ROTATE_PG, w.now, s.id, w.tokenHash, w.clientId, w.tokenVersion, w.roles, s.tokenHash, s.idleExpiresAt, s.absoluteExpiresAt)
    return rows.length === 1
  }

  async function rotatePostgresDirect (w: RotationWrite): Promise<boolean> {
    const s = w.successor
    const result = await (await postgres!.connection()).queryRaw(sql(ROTATE_PG, [w.now, s.id, w.tokenHash, w.clientId, w.tokenVersion, w.roles, s.tokenHash, s.idleExpiresAt, s.absoluteExpiresAt]))
    return result.rows.length === 1
  }

  async function noteActivityDirect (familyId: string, now: Date, activity: { ip: string | null, userAgent: string | null }): Promise<void> {
    await (await postgres!.connection()).executeRaw(sql(ACTIVITY_PG, [now, activity.ip, activity.userAgent, familyId]))
  }

  // An app's own SQLite client: its adapter is paced only if the app wrapped it
  // (pacedSqliteAdapter); the yield keeps a queue of these transactions from running as one turn.
  async function rotateSqlite (w: RotationWrite): Promise<boolean> {
    const s = w.successor
    await yieldToEventLoop()
    const [won] = await prisma.$transaction([
      prisma.$executeRawUnsafe(ROTATE_SQL, w.now, s.id, w.tokenHash, w.clientId, w.now, w.now, w.tokenVersion, w.roles),
      prisma.$executeRawUnsafe(SUCCESSOR_SQL, s.id, s.tokenHash, s.idleExpiresAt, s.absoluteExpiresAt, w.now, w.tokenHash, s.id),
      prisma.$executeRawUnsafe(ACTIVITY_SQL, w.now, w.activity.ip, w.activity.userAgent, w.tokenHash, s.id)
    ])
    return won === 1
  }

  async function noteActivity (familyId: string, now: Date, activity: { ip: string | null, userAgent: string | null }): Promise<void> {
    await prisma.$executeRawUnsafe(provider === 'postgresql' ? ACTIVITY_PG : FAMILY_ACTIVITY_SQL, now, activity.ip, activity.userAgent, familyId)
  }

  if (provider === 'postgresql') {
    const direct = postgres !== undefined
    return { read: direct ? readDirect : read, rotate: direct ? rotatePostgresDirect : rotatePostgres, recordsActivity: false, noteActivity: direct ? noteActivityDirect : noteActivity }
  }
  const direct = sqlite !== undefined
  return { read: direct ? readDirect : read, rotate: direct ? rotateSqliteDirect : rotateSqlite, recordsActivity: true, noteActivity }
}
