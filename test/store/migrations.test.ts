// The committed migrations of each provider must build exactly the schema that
// prisma/schema.prisma describes: we apply them to one fresh database, apply the SQL Prisma
// generates from the schema (`prisma migrate diff --from-empty`) to another, and compare the
// two catalogues. Also: migrate is idempotent, detects pending and tampered migrations, and
// creates a PostgreSQL database that does not exist yet.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { migrate, pendingMigrations, loadMigrations } from '../../plugins/store/migrate.ts'
import { parseDatabaseUrl } from '../../plugins/store/database-url.ts'
import { PACKAGE_ROOT } from '../../lib/paths.ts'
import { createTestDatabase, providers, postgresAdminUrl, PG_SKIP_REASON } from '../helpers/databases.ts'
import type { Provider } from '../../plugins/store/database-url.ts'

function schemaSql (provider: Provider): string {
  const prisma = join(PACKAGE_ROOT, 'node_modules', 'prisma', 'build', 'index.js')
  // Render the schema for this provider from the one source of truth, as scripts/prisma-generate.js does.
  const schema = join(mkdtempSync(join(tmpdir(), 'gatehouse-schema-')), 'schema.prisma')
  writeFileSync(schema, execFileSync(process.execPath, ['-e', `import('${join(PACKAGE_ROOT, 'scripts', 'prisma-generate.js')}').then(m => process.stdout.write(m.renderSchema('${provider}')))`], { encoding: 'utf8' }))
  return execFileSync(process.execPath, [prisma, 'migrate', 'diff', '--config', join(PACKAGE_ROOT, 'prisma.config.ts'), '--from-empty', '--to-schema-datamodel', schema, '--script'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, CHECKPOINT_DISABLE: '1' }
  })
}

async function catalogue (url: string): Promise<string[]> {
  const target = parseDatabaseUrl(url)
  if (target.provider === 'sqlite') {
    const db = new Database(target.file!, { readonly: true })
    try {
      const rows = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'gatehouse_migrations%' AND name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as Array<Record<string, string>>
      // Whitespace around separators is not significant: `ALTER TABLE ... ADD COLUMN` splices the
      // new column into the stored CREATE TABLE text with spacing of its own.
      return rows.map((r) => `${r.type} ${r.name} ${r.tbl_name} ${(r.sql ?? '').replace(/\s+/g, ' ').replace(/\s*([,()])\s*/g, '$1')}`)
    } finally {
      db.close()
    }
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const columns = await client.query(`SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name <> 'gatehouse_migrations' ORDER BY table_name, column_name`)
    const indexes = await client.query(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'gatehouse_migrations' ORDER BY indexname`)
    const constraints = await client.query(`SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'gatehouse_migrations' ORDER BY conname`)
    return [
      ...columns.rows.map((r) => `column ${r.table_name}.${r.column_name} ${r.data_type} ${r.is_nullable} ${r.column_default}`),
      ...indexes.rows.map((r) => `index ${r.indexname} ${r.indexdef}`),
      ...constraints.rows.map((r) => `constraint ${r.tbl} ${r.conname} ${r.def}`)
    ]
  } finally {
    await client.end()
  }
}

async function applyRaw (url: string, sql: string): Promise<void> {
  const target = parseDatabaseUrl(url)
  if (target.provider === 'sqlite') {
    const db = new Database(target.file!)
    db.exec(sql)
    db.close()
    return
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query(sql)
  await client.end()
}

for (const { provider, skip } of await providers()) {
  t.test(`${provider}: the committed migrations match prisma/schema.prisma`, { skip }, async (t) => {
    const fromMigrations = await createTestDatabase(provider)
    const fromSchema = await createTestDatabase(provider, { migrate: false })
    t.teardown(async () => { await fromMigrations.drop(); await fromSchema.drop() })
    await applyRaw(fromSchema.url, schemaSql(provider))
    const expected = await catalogue(fromSchema.url)
    const actual = await catalogue(fromMigrations.url)
    t.ok(expected.length > 20, 'the schema catalogue is not empty')
    t.same(actual, expected, `prisma/migrations/${provider} builds the schema of prisma/schema.prisma (if not, add a migration: see docs/store.md)`)
  })

  t.test(`${provider}: migrate is idempotent and detects pending and tampered migrations`, { skip }, async (t) => {
    const db = await createTestDatabase(provider, { migrate: false })
    t.teardown(() => db.drop())
    const all = loadMigrations(provider).map((m) => m.name)
    t.same(await pendingMigrations(db.url), all, 'a fresh database has every migration pending')
    const lines: string[] = []
    const first = await migrate(db.url, { log: (line) => lines.push(line) })
    t.same(first.applied, all)
    t.ok(lines.some((line) => line.includes(all[0])), 'progress is reported per migration')
    const second = await migrate(db.url)
    t.same(second.applied, [], 'nothing to apply the second time')
    t.same(await pendingMigrations(db.url), [])

    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-migrations-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    cpSync(join(PACKAGE_ROOT, 'prisma', 'migrations'), dir, { recursive: true })
    const file = join(dir, provider, all[0], 'migration.sql')
    writeFileSync(file, readFileSync(file, 'utf8') + '\n-- edited\n')
    await t.rejects(migrate(db.url, { migrationsDir: dir }), /changed after it was applied/)
  })
}

const admin = await postgresAdminUrl()
t.test('postgresql: migrate creates a database that does not exist yet', { skip: admin === null ? PG_SKIP_REASON : false }, async (t) => {
  if (admin === null) return
  const name = `gatehouse_fresh_${process.pid}_${Date.now()}`
  const url = new URL(admin)
  url.pathname = `/${name}`
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: admin })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await c.end()
  })
  const result = await migrate(url.toString())
  t.equal(result.createdDatabase, true)
  t.ok(result.applied.length > 0)
})
