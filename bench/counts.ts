// Redis commands and PostgreSQL queries per operation of the standalone server, counted for real:
// the whole app (buildApp) on a fresh PostgreSQL database with REDIS_URL, every command that its
// ioredis clients send and every query its pg clients send counted at the client, per operation,
// over `--n` operations after a warm-up. Background work during the window (key reload, notices)
// is counted too, which is why each figure is an average over many operations.
//
//   npx tsx bench/counts.ts [--n 200] [--json out.json]
//
// The figures feed docs/scaling.md. Needs PostgreSQL (GATEHOUSE_TEST_DATABASE_URL) and Redis
// (GATEHOUSE_TEST_REDIS_URL); says why and exits 0 without them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { Redis } from 'ioredis'
import { buildApp } from '../server/app.ts'
import { loadConfig } from '../server/config.ts'
import { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } from '../test/helpers/databases.ts'
import { dropRedisKeys, redisUnreachable } from './lib/server-kit.ts'

const { values: opts } = parseArgs({ options: { n: { type: 'string', default: '200' }, json: { type: 'string' } } })
const N = Number(opts.n)

if (await postgresAdminUrl() === null) {
  process.stdout.write(`skipped: ${PG_SKIP_REASON}\n`)
  process.exit(0)
}
const redisUrl = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const unreachable = await redisUnreachable(redisUrl)
if (unreachable !== null) {
  process.stdout.write(`skipped: ${unreachable}\n`)
  process.exit(0)
}

// ---- counting at the clients -------------------------------------------------------------------
const redisCommands = new Map<string, number>()
const sqlQueries = new Map<string, number>()
type SendCommand = (this: Redis, command: { name: string }, ...rest: unknown[]) => unknown
const proto = Redis.prototype as unknown as { sendCommand: SendCommand }
const sendCommand = proto.sendCommand
proto.sendCommand = function (command, ...rest) {
  redisCommands.set(command.name, (redisCommands.get(command.name) ?? 0) + 1)
  return sendCommand.call(this, command, ...rest)
}
type Query = (this: pg.Client, ...args: unknown[]) => unknown
const pgProto = pg.Client.prototype as unknown as { query: Query }
const query = pgProto.query
pgProto.query = function (...args) {
  const first = args[0] as string | { text?: string }
  const text = typeof first === 'string' ? first : first?.text ?? '?'
  // The statement kind and its table: SELECT "public"."users" -> SELECT users. The table is the
  // statement's own (outside any parentheses) when it names one, not a subquery's; else the first.
  const kind = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '?'
  const tableIn = (sql: string): string | undefined => /(?:FROM|INTO|UPDATE)\s+(?:"public"\.)?"?(\w+)"?/i.exec(sql)?.[1]
  const table = tableIn(outsideParentheses(text)) ?? tableIn(text)
  const key = table === undefined ? kind : `${kind} ${table}`
  sqlQueries.set(key, (sqlQueries.get(key) ?? 0) + 1)
  return query.apply(this, args)
}
/** `sql` with everything inside parentheses blanked (the parentheses kept). */
function outsideParentheses (sql: string): string {
  let depth = 0
  let out = ''
  for (const c of sql) {
    if (c === ')') depth--
    out += depth > 0 ? ' ' : c
    if (c === '(') depth++
  }
  return out
}
const snapshot = (): { redis: Map<string, number>, sql: Map<string, number> } => ({ redis: new Map(redisCommands), sql: new Map(sqlQueries) })
function delta (before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) out[k] = v - (before.get(k) ?? 0)
  return out
}

// ---- the app ----------------------------------------------------------------------------------------
const db = await createTestDatabase('postgresql')
const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-counts-'))
const prefix = `gatehouse-bench:${process.pid}:${randomUUID().slice(0, 8)}:`
const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: db.url, REDIS_URL: redisUrl, AUTH_ISSUER: 'http://127.0.0.1:3000', AUTH_KEYS_DIR: keysDir, MAIL_OUTBOX_DIR: join(keysDir, 'outbox'), LOG_LEVEL: 'warn' })
const app = await buildApp(config, {
  // Limits high enough for the counted operations; the counting itself is what is measured.
  rateLimit: { prefix, classes: { default: { max: 1_000_000 }, login: { max: 1_000_000 }, refresh: { max: 1_000_000 } } }
})
// A route protected by authenticate alone, as an app's own API route would be.
app.get('/bench/protected', { onRequest: app.authenticate }, async (request) => ({ sub: request.user!.sub }))
await app.ready()

const PASSWORD = 'bench-correct-horse-battery-staple'
const USERS = 50
const hash = await app.credentials.hashPassword(PASSWORD)
const users: Array<{ id: string, email: string }> = []
for (let i = 0; i < USERS; i++) {
  const email = `counts${i}@example.com`
  const row = await app.store.prisma.user.create({ data: { email, passwordHash: hash, roles: '["user"]', emailVerifiedAt: new Date() } })
  users.push({ id: row.id, email })
}

async function call (method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: unknown): Promise<Record<string, unknown>> {
  const res = await app.inject({ method, url, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, payload: body === undefined ? undefined : JSON.stringify(body) })
  if (res.statusCode !== 200) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`)
  return res.json()
}
const login = async (i: number): Promise<{ access_token: string, refresh_token: string }> =>
  await call('POST', '/auth/login', {}, { email: users[i % USERS].email, password: PASSWORD }) as { access_token: string, refresh_token: string }

interface Counted { operation: string, n: number, redisPerOp: number, sqlPerOp: number, redis: Record<string, number>, sql: Record<string, number> }
const results: Counted[] = []
async function count (operation: string, run: (i: number) => Promise<unknown>, n = N): Promise<void> {
  for (let i = 0; i < Math.min(20, n); i++) await run(i) // warm-up: caches, prepared statements
  const before = snapshot()
  for (let i = 0; i < n; i++) await run(i)
  const after = snapshot()
  const redis = delta(before.redis, after.redis)
  const sql = delta(before.sql, after.sql)
  const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0)
  results.push({ operation, n, redisPerOp: sum(redis) / n, sqlPerOp: sum(sql) / n, redis, sql })
}

const sessions = await Promise.all(users.map(async (_u, i) => await login(i)))
const repeated = sessions[0].access_token
await count('verified request, repeated token (GET /bench/protected)', async () => await call('GET', '/bench/protected', { authorization: `Bearer ${repeated}` }))
// A different token each time (50 users, 50 sessions): the signature is checked, the user's state comes from its cache.
const distinct = await Promise.all(Array.from({ length: N }, async (_x, i) => (await app.tokens.sign({ id: users[i % USERS].id, roles: ['user'], tokenVersion: 0 }, { sid: JSON.parse(Buffer.from(sessions[i % USERS].access_token.split('.')[1], 'base64url').toString()).sid })).access_token))
await count('verified request, unique tokens (GET /bench/protected)', async (i) => await call('GET', '/bench/protected', { authorization: `Bearer ${distinct[i % distinct.length]}` }))
await count('GET /auth/me', async () => await call('GET', '/auth/me', { authorization: `Bearer ${repeated}` }))
await count('login (POST /auth/login)', async (i) => await login(i), Math.min(N, 100))
let chains = sessions.map((s) => s.refresh_token)
await count('refresh (POST /auth/refresh)', async (i) => {
  const k = i % chains.length
  const r = await call('POST', '/auth/refresh', {}, { refresh_token: chains[k] }) as { refresh_token: string }
  chains[k] = r.refresh_token
})
chains = []

await app.close()
await dropRedisKeys(redisUrl, prefix).catch(() => {})
await db.drop()
rmSync(keysDir, { recursive: true, force: true })

const lines = ['| operation | Redis commands / op | PostgreSQL queries / op | Redis by command | PostgreSQL by statement |', '|---|---:|---:|---|---|']
const fmt = (r: Record<string, number>, n: number): string => Object.entries(r).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / n).toFixed(2)}`).join(', ') || '-'
for (const r of results) lines.push(`| ${r.operation} | ${r.redisPerOp.toFixed(2)} | ${r.sqlPerOp.toFixed(2)} | ${fmt(r.redis, r.n)} | ${fmt(r.sql, r.n)} |`)
process.stdout.write(lines.join('\n') + '\n')
if (opts.json !== undefined) writeFileSync(opts.json, JSON.stringify({ date: new Date().toISOString(), n: N, results }, null, 2))
process.exit(0)
