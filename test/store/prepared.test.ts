// Statements marked with prepared() go to PostgreSQL as named statements of the store's own pool:
// parsed and planned once per connection (pg_prepared_statements shows them), then bound and
// executed with the same answers; other statements stay unnamed. Checked against a real server.
import t from 'tap'
import Fastify from 'fastify'
import { store } from '../../plugins/store/index.ts'
import { prepared, preparedName, rowsOf, sql } from '../../lib/sql-connection.ts'
import { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } from '../helpers/databases.ts'

t.test('prepared() returns the text and names it by its content', async (t) => {
  const text = 'SELECT $1::text AS prepared_unit_a'
  t.equal(prepared(text), text)
  t.match(preparedName(text), /^gatehouse_[0-9a-f]{20}$/)
  t.equal(preparedName(prepared(text)), preparedName(text), 'the same name when marked again')
  t.not(preparedName(prepared('SELECT $1::text AS prepared_unit_b')), preparedName(text), 'another text, another name')
  t.equal(preparedName('SELECT 1 AS never_marked'), undefined)
})

const pgSkip = await postgresAdminUrl() === null ? PG_SKIP_REASON : false

t.test('PostgreSQL: a marked statement is prepared once per connection', { skip: pgSkip }, async (t) => {
  const db = await createTestDatabase('postgresql')
  const app = Fastify()
  // One connection: every statement below runs on it, so its prepared statements are visible.
  await app.register(store, { databaseUrl: db.url, poolSize: 1 })
  t.teardown(async () => { await app.close(); await db.drop() })
  await app.ready()
  const connection = await app.store.postgres!.connection()

  await app.store.prisma.user.create({ data: { email: 'ada@example.com', name: 'Ada' } })
  const marked = prepared('SELECT email, name FROM users WHERE email = $1')
  const plain = 'SELECT email FROM users WHERE name = $1'
  const listPrepared = async (): Promise<Array<{ name: string, statement: string }>> =>
    rowsOf<{ name: string, statement: string }>(await connection.queryRaw(sql('SELECT name, statement FROM pg_prepared_statements', [])), new Set())

  t.same(await listPrepared(), [], 'nothing prepared before')
  for (let i = 0; i < 3; i++) {
    t.same(rowsOf(await connection.queryRaw(sql(marked, ['ada@example.com'])), new Set()), [{ email: 'ada@example.com', name: 'Ada' }], `answer ${i + 1} of the marked statement`)
    t.same(rowsOf(await connection.queryRaw(sql(plain, ['Ada'])), new Set()), [{ email: 'ada@example.com' }], `answer ${i + 1} of the plain one`)
  }
  const list = await listPrepared()
  t.equal(list.length, 1, 'one prepared statement: the marked one, once')
  t.equal(list[0]?.name, preparedName(marked))
  t.equal(list[0]?.statement, marked)

  // The same text through Prisma's raw queries on the same pool is the same prepared statement.
  t.same(await app.store.prisma.$queryRawUnsafe(marked, 'ada@example.com'), [{ email: 'ada@example.com', name: 'Ada' }])
  t.equal((await listPrepared()).length, 1, 'still one')

  // A failing execution of a prepared statement is the adapter's error as before, and leaves it usable.
  const failing = prepared('SELECT $1::int AS n')
  await t.rejects(connection.queryRaw(sql(failing, ['not a number'])), { name: 'DriverAdapterError' })
  t.same(rowsOf(await connection.queryRaw(sql(failing, ['7'])), new Set()), [{ n: 7 }])
})

t.test('PostgreSQL: preparedStatements: false sends every statement unnamed', { skip: pgSkip }, async (t) => {
  const db = await createTestDatabase('postgresql')
  const app = Fastify()
  await app.register(store, { databaseUrl: db.url, poolSize: 1, preparedStatements: false })
  t.teardown(async () => { await app.close(); await db.drop() })
  await app.ready()
  const connection = await app.store.postgres!.connection()
  const marked = prepared('SELECT count(*)::int AS n FROM users WHERE email = $1')
  t.same(rowsOf(await connection.queryRaw(sql(marked, ['nobody@example.com'])), new Set()), [{ n: 0 }])
  t.same(rowsOf(await connection.queryRaw(sql('SELECT count(*)::int AS n FROM pg_prepared_statements', [])), new Set()), [{ n: 0 }], 'nothing prepared')
})

t.test('preparedStatements must be a boolean', async (t) => {
  const app = Fastify()
  app.register(store, { databaseUrl: 'file::memory:', preparedStatements: 'no' as unknown as boolean })
  await t.rejects(Promise.resolve(app.ready()), { code: 'GATEHOUSE_INVALID_OPTION', option: 'preparedStatements' })
  await app.close().catch(() => {})
})
