// Applies the committed SQL migrations of prisma/migrations/<provider>/ in order.
//
// Prisma's own `migrate deploy` cannot run PostgreSQL offline here (its wasm engine fails on
// PostgreSQL catalog types), so Gatehouse applies the SQL that `prisma migrate diff` wrote with
// the plain drivers: each migration in its own transaction, recorded with a checksum in
// `gatehouse_migrations`, under a lock so that instances starting together migrate once.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { PACKAGE_ROOT } from '../../lib/paths.ts'
import { parseDatabaseUrl, type DatabaseTarget, type Provider } from './database-url.ts'
import { StartupError } from '../../lib/startup-error.ts'

export interface Migration {
  name: string
  sql: string
  checksum: string
}

export interface MigrateResult {
  applied: string[]
  alreadyApplied: number
  createdDatabase: boolean
}

export interface MigrateOptions {
  /** Progress lines (one per migration). */
  log?: (line: string) => void
  /** Where the migrations live; defaults to the package's prisma/migrations. */
  migrationsDir?: string
}

/** The schema cannot be brought to this version (StartupError MIGRATION_FAILED). */
export class MigrationError extends StartupError {
  override name = 'MigrationError'
  constructor (message: string, options?: { cause?: unknown }) {
    super('MIGRATION_FAILED', message, options)
  }
}

const LOCK_ID = 7_240_113_251 // pg_advisory_lock key for Gatehouse migrations
const TABLE = 'gatehouse_migrations'

export function loadMigrations (provider: Provider, migrationsDir = join(PACKAGE_ROOT, 'prisma', 'migrations')): Migration[] {
  const dir = join(migrationsDir, provider)
  if (!existsSync(dir)) throw new MigrationError(`no migrations folder for ${provider} at ${dir}`)
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8')
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    })
}

interface AppliedRow { name: string, checksum: string }

function checkApplied (migrations: Migration[], applied: AppliedRow[]): Migration[] {
  const known = new Map(migrations.map((m) => [m.name, m]))
  for (const row of applied) {
    const migration = known.get(row.name)
    if (migration === undefined) {
      throw new MigrationError(`the database has migration ${row.name}, which this version of Gatehouse does not know: it was migrated by a newer version`)
    }
    if (migration.checksum !== row.checksum) {
      throw new MigrationError(`migration ${row.name} was changed after it was applied (checksum mismatch)`)
    }
  }
  const done = new Set(applied.map((row) => row.name))
  return migrations.filter((m) => !done.has(m.name))
}

/** Applies every pending migration to the database `databaseUrl` names. */
export async function migrate (databaseUrl: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const target = parseDatabaseUrl(databaseUrl)
  const migrations = loadMigrations(target.provider, options.migrationsDir)
  return target.provider === 'sqlite'
    ? migrateSqlite(target, migrations, options.log)
    : await migratePostgres(target, migrations, options.log)
}

/** The names of the migrations not yet applied (no changes made). */
export async function pendingMigrations (databaseUrl: string, migrationsDir?: string): Promise<string[]> {
  const target = parseDatabaseUrl(databaseUrl)
  const migrations = loadMigrations(target.provider, migrationsDir)
  if (target.provider === 'sqlite') {
    if (target.file !== ':memory:' && !existsSync(target.file!)) return migrations.map((m) => m.name)
    const db = new Database(target.file!, { readonly: target.file !== ':memory:', fileMustExist: target.file !== ':memory:' })
    try {
      const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(TABLE)
      const applied = exists === undefined ? [] : db.prepare(`SELECT name, checksum FROM ${TABLE}`).all() as AppliedRow[]
      return checkApplied(migrations, applied).map((m) => m.name)
    } finally {
      db.close()
    }
  }
  const client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [TABLE])
    const applied = rows[0].exists ? (await client.query<AppliedRow>(`SELECT name, checksum FROM ${TABLE}`)).rows : []
    return checkApplied(migrations, applied).map((m) => m.name)
  } finally {
    await client.end()
  }
}

function migrateSqlite (target: DatabaseTarget, migrations: Migration[], log?: (line: string) => void): MigrateResult {
  const file = target.file!
  let createdDatabase = false
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true })
    createdDatabase = !existsSync(file)
  }
  const db = new Database(file, { timeout: 10_000 })
  try {
    db.pragma('journal_mode = WAL')
    db.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)`)
    db.exec('BEGIN IMMEDIATE') // the write lock: a second process waits here
    let pending: Migration[]
    try {
      pending = checkApplied(migrations, db.prepare(`SELECT name, checksum FROM ${TABLE}`).all() as AppliedRow[])
      for (const migration of pending) {
        log?.(`applying migration ${migration.name}`)
        db.exec(migration.sql)
        db.prepare(`INSERT INTO ${TABLE} (name, checksum, applied_at) VALUES (?, ?, ?)`)
          .run(migration.name, migration.checksum, new Date().toISOString())
      }
      db.exec('COMMIT')
    } catch (err) {
      db.exec('ROLLBACK')
      throw err
    }
    return { applied: pending.map((m) => m.name), alreadyApplied: migrations.length - pending.length, createdDatabase }
  } finally {
    db.close()
  }
}

async function ensurePostgresDatabase (url: string, log?: (line: string) => void): Promise<boolean> {
  const parsed = new URL(url)
  const name = decodeURIComponent(parsed.pathname.slice(1))
  parsed.pathname = '/postgres'
  const admin = new pg.Client({ connectionString: parsed.toString(), connectionTimeoutMillis: 5000 })
  await admin.connect()
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
    if (rowCount !== 0) return false
    log?.(`creating database ${name}`)
    try {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
    } catch (err) {
      if ((err as { code?: string }).code !== '42P04') throw err // created meanwhile by another instance
      return false
    }
    return true
  } finally {
    await admin.end()
  }
}

async function migratePostgres (target: DatabaseTarget, migrations: Migration[], log?: (line: string) => void): Promise<MigrateResult> {
  let createdDatabase = false
  const client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err // 3D000: database does not exist
    await client.end().catch(() => {})
    createdDatabase = await ensurePostgresDatabase(target.url, log)
    return { ...(await migratePostgres(target, migrations, log)), createdDatabase }
  }
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID])
    await client.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
    const applied = (await client.query<AppliedRow>(`SELECT name, checksum FROM ${TABLE}`)).rows
    const pending = checkApplied(migrations, applied)
    for (const migration of pending) {
      log?.(`applying migration ${migration.name}`)
      await client.query('BEGIN')
      try {
        await client.query(migration.sql)
        await client.query(`INSERT INTO ${TABLE} (name, checksum) VALUES ($1, $2)`, [migration.name, migration.checksum])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK')
        throw new MigrationError(`migration ${migration.name} failed: ${(err as Error).message}`)
      }
    }
    return { applied: pending.map((m) => m.name), alreadyApplied: migrations.length - pending.length, createdDatabase }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]).catch(() => {})
    await client.end()
  }
}
