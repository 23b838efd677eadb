// Fault injection (security.md F10, F11): the database fails in the middle of a rotation, or is
// gone. The answer is 503, the transaction rolls back (the presented token stays valid, no orphan
// successor), and nothing that was not persisted is ever returned.
//  - PostgreSQL: the app talks to the real server through a TCP proxy that cuts the connection
//    when the successor's INSERT goes by (the server then rolls the transaction back), or refuses
//    every connection.
//  - SQLite: the real better-sqlite3 driver adapter, wrapped so that the INSERT inside the
//    transaction fails the way a vanished connection does (DriverAdapterError ConnectionClosed).
import t from 'tap'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3'
import { DriverAdapterError } from '@prisma/driver-adapter-utils'
import pg from 'pg'
import { PrismaClient } from '../../prisma/generated/sqlite/client.ts'
import type { PrismaClient as StorePrismaClient } from '../../plugins/store/client.ts'
import { createTestDatabase, postgresAdminUrl, PG_SKIP_REASON } from '../helpers/databases.ts'
import { accessVerdict, login, refresh, sessionApp } from './helpers.ts'

const SUCCESSOR_INSERT = /INSERT INTO\s+["`]?(?:public["`]?\.["`]?|main["`]?\.["`]?)?refresh_tokens["`]?/i

class FaultyProxy {
  server: Server
  port = 0
  sockets = new Set<Socket>()
  cutOn: RegExp | null = null
  refusing = false
  cuts = 0

  constructor (target: { host: string, port: number }) {
    this.server = createServer((client) => {
      if (this.refusing) { client.destroy(); return }
      const upstream = connect(target.port, target.host)
      this.sockets.add(client).add(upstream)
      const close = (): void => { client.destroy(); upstream.destroy(); this.sockets.delete(client); this.sockets.delete(upstream) }
      client.on('data', (chunk: Buffer) => {
        if (this.cutOn !== null && this.cutOn.test(chunk.toString('latin1'))) {
          this.cuts++
          close()
          return
        }
        upstream.write(chunk)
      })
      upstream.on('data', (chunk: Buffer) => client.write(chunk))
      client.on('error', close).on('close', close)
      upstream.on('error', close).on('close', close)
    })
  }

  async listen (): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as { port: number }).port
  }

  /** Drops every open connection and refuses new ones until `restore()`. */
  down (): void {
    this.refusing = true
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  restore (): void {
    this.refusing = false
    this.cutOn = null
  }

  async close (): Promise<void> {
    this.down()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

t.test('PostgreSQL: connection cut mid-rotation and database down', async (t) => {
  const admin = await postgresAdminUrl()
  if (admin === null) { t.pass(PG_SKIP_REASON); return }
  const db = await createTestDatabase('postgresql')
  const target = new URL(db.url)
  const proxy = new FaultyProxy({ host: target.hostname, port: Number(target.port || 5432) })
  await proxy.listen()
  const proxied = new URL(db.url)
  proxied.port = String(proxy.port)
  const direct = new pg.Client({ connectionString: db.url })
  await direct.connect()
  t.teardown(async () => {
      await direct.end()
      await proxy.close()
      await db.drop()
    })
  // The pool client whose connection was cut mid-transaction is never released by the Prisma pg
  // adapter, so closing waits for it forever: close with a bound (reported to the store's owner).
  const { app } = await sessionApp(t, { databaseUrl: proxied.toString(), closeTimeoutMs: 3000 })
  const { tokens } = await login(app)
  const familyId = tokens.refresh_token.split('.')[0]

  proxy.cutOn = SUCCESSOR_INSERT
  const cut = await refresh(app, tokens.refresh_token)
  t.equal(proxy.cuts, 1, 'the connection was cut at the successor INSERT')
  t.equal(cut.statusCode, 503, 'a fault mid-rotation is 503')
  t.equal(cut.json().code, 'SERVICE_UNAVAILABLE')
  t.notOk('refresh_token' in cut.json(), 'no token in the body')
  proxy.restore()

  // Ask the server directly: the UPDATE was rolled back with the connection.
  let rows: Array<{ used_at: Date | null }> = []
  for (let i = 0; i < 50; i++) {
    rows = (await direct.query('SELECT used_at FROM refresh_tokens WHERE family_id = $1', [familyId])).rows
    if (rows.length === 1 && rows[0].used_at === null) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(rows.length, 1, 'no orphan successor')
  t.equal(rows[0].used_at, null, 'the presented token was not used up')

  const after = await refresh(app, tokens.refresh_token)
  t.equal(after.statusCode, 200, 'the old token still works once the database is back')
  const next = after.json()

  proxy.down()
  const down = await refresh(app, next.refresh_token)
  t.equal(down.statusCode, 503, 'database down: 503, never 401 or 200')
  t.equal(down.headers['retry-after'], '1')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${next.access_token}` } })
  t.equal(logout.statusCode, 503, 'logout never falsely confirms a revocation (F11)')
  const oauth = await app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `grant_type=refresh_token&refresh_token=${encodeURIComponent(next.refresh_token)}` })
  t.equal(oauth.statusCode, 503)
  t.equal(oauth.json().error, 'temporarily_unavailable')
  proxy.restore()

  const revived = await refresh(app, next.refresh_token)
  t.equal(revived.statusCode, 200, 'the token survived the outage')
  t.equal(await accessVerdict(app, revived.json().access_token), 'ok')
})

t.test('SQLite: the successor INSERT fails inside the transaction', async (t) => {
  const db = await createTestDatabase('sqlite')
  const fault = { armed: false, hits: 0 }
  const inner = new PrismaBetterSQLite3({ url: db.url, timeout: 10_000 })
  type Adapter = Awaited<ReturnType<typeof inner.connect>>
  type Tx = Awaited<ReturnType<Adapter['startTransaction']>>
  const failing = (sql: string): void => {
    if (fault.armed && SUCCESSOR_INSERT.test(sql)) {
      fault.hits++
      throw new DriverAdapterError({ kind: 'ConnectionClosed' })
    }
  }
  const wrapTx = (tx: Tx): Tx => new Proxy(tx, {
    get (target, prop, receiver) {
      if (prop === 'executeRaw' || prop === 'queryRaw') {
        return async (query: { sql: string }) => { failing(query.sql); return (target[prop] as (q: unknown) => Promise<unknown>).call(target, query) }
      }
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const wrapAdapter = (adapter: Adapter): Adapter => new Proxy(adapter, {
    get (target, prop, receiver) {
      if (prop === 'startTransaction') return async (...args: Parameters<Adapter['startTransaction']>) => wrapTx(await target.startTransaction(...args))
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const factory = {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => wrapAdapter(await inner.connect())
  } as unknown as PrismaBetterSQLite3
  const prisma = new PrismaClient({ adapter: factory }) as unknown as StorePrismaClient
  t.teardown(async () => {
    await prisma.$disconnect()
    await db.drop()
  })
  const { app } = await sessionApp(t, { databaseUrl: db.url, app: { store: { prisma, provider: 'sqlite' } } })
  const { tokens } = await login(app)
  const familyId = tokens.refresh_token.split('.')[0]

  fault.armed = true
  const res = await refresh(app, tokens.refresh_token)
  fault.armed = false
  t.equal(fault.hits, 1, 'the INSERT failed')
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'SERVICE_UNAVAILABLE')
  const rows = await app.store.prisma.refreshToken.findMany({ where: { familyId } })
  t.equal(rows.length, 1, 'no orphan successor')
  t.equal(rows[0].usedAt, null, 'the conditional update was rolled back')
  t.equal(rows[0].successorId, null)
  const again = await refresh(app, tokens.refresh_token)
  t.equal(again.statusCode, 200, 'the old token still works')
})
