// `gatehouse prisma` and the path of docs/store.md for an app with its own Prisma schema: the
// models merged into the app's schema, one client generated for the app's models and Gatehouse's,
// the tables created by the app's own migration (the SQL `prisma migrate diff` writes), and that
// client handed to gatehouse-store, under gatehouse-credentials.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { PACKAGE_ROOT } from '../../lib/paths.ts'
import { store, type PrismaClient } from '../../plugins/store/index.ts'
import { redis } from '../../plugins/redis/index.ts'
import { credentials } from '../../plugins/credentials/index.ts'
import { BEGIN, END, gatehouseModels, mergeModels, SchemaMergeError } from '../../cli/prisma.ts'

interface Result { code: number, stdout: string, stderr: string }

function run (args: string[], cwd = PACKAGE_ROOT): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
  })
}
const cli = (args: string[]): Promise<Result> => run(['--import', 'tsx', join(PACKAGE_ROOT, 'cli.ts'), ...args])
const prismaCli = join(PACKAGE_ROOT, 'node_modules', 'prisma', 'build', 'index.js')

const APP_SCHEMA = `generator client {
  provider               = "prisma-client"
  output                 = "./generated"
  engineType             = "client"
  runtime                = "nodejs"
  moduleFormat           = "esm"
  generatedFileExtension = "ts"
  importFileExtension    = "ts"
}

datasource db {
  provider = "sqlite"
  url      = "file:./unused.db"
}

/// The app's own model, next to Gatehouse's.
model Project {
  id      String @id @default(uuid())
  name    String
  ownerId String @map("owner_id")

  @@map("projects")
}
`

t.test('gatehouse prisma prints the models, without a generator or a datasource', async (t) => {
  const printed = await cli(['prisma'])
  t.equal(printed.code, 0)
  t.ok(printed.stdout.startsWith(BEGIN), 'starts with the begin marker')
  t.ok(printed.stdout.trimEnd().endsWith(END), 'ends with the end marker')
  for (const model of ['User', 'Organization', 'Membership', 'RefreshFamily', 'RefreshToken', 'ApiKey', 'OAuthClient', 'AuditEvent']) {
    t.match(printed.stdout, new RegExp(`^model ${model} \\{`, 'm'), `model ${model}`)
  }
  t.notMatch(printed.stdout, /^(generator|datasource)\s/m)
  t.equal(printed.stdout, gatehouseModels())
})

t.test('merging is idempotent and refuses a model name Gatehouse uses', async (t) => {
  const once = mergeModels(APP_SCHEMA)
  t.equal(mergeModels(once), once, 'a second merge replaces the first')
  t.ok(once.startsWith(APP_SCHEMA.trimEnd()), 'the app\'s own schema is kept as it was')
  t.throws(() => mergeModels(APP_SCHEMA + '\nmodel User {\n  id String @id\n}\n'), SchemaMergeError)
  t.throws(() => mergeModels(APP_SCHEMA + `\n${BEGIN}\n`), SchemaMergeError, 'a lone marker')
})

t.test('an app with its own Prisma schema runs gatehouse-store and gatehouse-credentials on its own client', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-own-schema-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // The app's node_modules (with @prisma/client and the driver adapter).
  symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  const schema = join(dir, 'schema.prisma')
  writeFileSync(schema, APP_SCHEMA)

  const merged = await cli(['prisma', '--merge', schema])
  t.equal(merged.code, 0, `merge: ${merged.stderr}`)
  t.match(readFileSync(schema, 'utf8'), /model Project \{[\s\S]*model User \{/)
  const clash = join(dir, 'clash.prisma')
  writeFileSync(clash, APP_SCHEMA + '\nmodel ApiKey {\n  id String @id\n}\n')
  const refused = await cli(['prisma', '--merge', clash])
  t.equal(refused.code, 1, 'a clashing model name: exit 1')
  t.match(refused.stderr, /already defines ApiKey/)

  const generated = await run([prismaCli, 'generate', '--config', join(PACKAGE_ROOT, 'prisma.config.ts'), '--schema', schema, '--no-hints'], dir)
  t.equal(generated.code, 0, `prisma generate: ${generated.stderr.slice(-1500)}`)
  // The app's own migration: the SQL Prisma writes for the whole merged schema.
  const diff = await run([prismaCli, 'migrate', 'diff', '--config', join(PACKAGE_ROOT, 'prisma.config.ts'), '--from-empty', '--to-schema-datamodel', schema, '--script'], dir)
  t.equal(diff.code, 0, `prisma migrate diff: ${diff.stderr.slice(-1500)}`)
  const file = join(dir, 'app.db')
  const db = new Database(file)
  db.exec(diff.stdout)
  db.close()

  const { PrismaClient: AppClient } = await import(pathToFileURL(join(dir, 'generated', 'client.ts')).href)
  const { PrismaBetterSQLite3 } = await import('@prisma/adapter-better-sqlite3')
  const prisma = new AppClient({ adapter: new PrismaBetterSQLite3({ url: `file:${file}` }) })
  t.teardown(() => prisma.$disconnect())

  const app = Fastify()
  await app.register(store, { prisma: prisma as unknown as PrismaClient, provider: 'sqlite' })
  await app.register(redis)
  await app.register(credentials, { argon2: { memoryCost: 8192, timeCost: 1 } })
  t.teardown(() => app.close())
  await app.ready()
  const user = await app.credentials.register({ email: 'ada@example.com', password: 'correct horse battery staple' })
  const login = await app.credentials.login('ada@example.com', 'correct horse battery staple')
  t.equal(login.id, user.id, 'register and login through the app\'s own client')
  await prisma.project.create({ data: { name: 'first', ownerId: user.id } })
  t.equal(await prisma.project.count({ where: { ownerId: user.id } }), 1, 'the app\'s own model in the same client')
  t.equal(await prisma.user.count(), 1, 'Gatehouse\'s table is the app\'s table')
})
