// gatehouse-audit on a real database: batching, flush on close, loud reporting of lost
// events, and the details sanitiser.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Writable } from 'node:stream'
import { store } from '../../plugins/store/index.ts'
import { createPrismaClient } from '../../plugins/store/client.ts'
import { audit, sanitizeDetails, sanitizeText, REDACTED, toRow, resolveOptions } from '../../plugins/audit/index.ts'
import { createTestDatabase, providers } from '../helpers/databases.ts'

t.test('the sanitiser drops secret-looking keys and values, keeps identifiers', async (t) => {
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'
  const out = sanitizeDetails({
    email: 'ada@example.com',
    password: 'hunter2hunter2',
    new_password: 'x',
    currentPassword: 'x',
    access_token: 'x',
    refreshToken: 'x',
    tokenHash: 'x',
    passwordHash: 'x',
    client_secret: 'x',
    apiKey: 'x',
    key: 'x',
    privateKey: 'x',
    Authorization: 'x',
    cookie: 'x',
    nested: { deeper: { secret: 'x', ok: 1 }, list: [{ token: 'x', name: 'n' }] },
    apiKeyId: 'k-1',
    keyName: 'ci',
    kid: 'abc',
    tokenType: 'Bearer',
    sid: 'family-1',
    note: jwt,
    header: 'Bearer abc.def',
    hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
    pem: '-----BEGIN PRIVATE KEY-----\nMII...',
    refresh: '0b5a1d3e-3f1c-4c9a-9d7e-2a5b8c1d0e9f.' + 'A'.repeat(43),
    roles: ['admin', 'user']
  })
  t.same(out, {
    email: 'ada@example.com',
    nested: { deeper: { ok: 1 }, list: [{ name: 'n' }] },
    apiKeyId: 'k-1',
    keyName: 'ci',
    kid: 'abc',
    tokenType: 'Bearer',
    sid: 'family-1',
    note: REDACTED,
    header: REDACTED,
    pem: REDACTED,
    refresh: REDACTED,
    roles: ['admin', 'user']
  })
  t.equal(sanitizeDetails(JSON.parse('{"__proto__": {"x": 1}}')), null, 'prototype keys are dropped')
  t.equal(sanitizeDetails('a string'), null)
  t.equal(sanitizeText(jwt), REDACTED, 'a token pasted into a reason is blanked')
  t.equal(sanitizeText('x'.repeat(300))?.length, 200)
  const row = toRow({ type: 'login', outcome: 'failure', reason: 'bad_password', details: { password: 'p' } })
  t.equal(row.details, null, 'nothing left: no details at all')
  t.equal(row.reason, 'bad_password')
})

function logCapture (): { logs: string[], logger: { level: string, stream: Writable } } {
  const logs: string[] = []
  return { logs, logger: { level: 'warn', stream: new Writable({ write (c, _e, cb) { logs.push(c.toString()); cb() } }) } }
}

for (const { provider, skip } of await providers()) {
  t.test(`audit on ${provider}`, { skip }, async (t) => {
    const db = await createTestDatabase(provider)
    t.teardown(() => db.drop())
    const { logs, logger } = logCapture()
    const app: FastifyInstance = Fastify({ logger })
    await app.register(store, { databaseUrl: db.url })
    await app.register(audit, { batchSize: 10, flushIntervalMs: 20, attempts: 2 })
    await app.ready()
    const { prisma } = app.store

    await t.test('events are batched and written with time, actor, subject, ip and user agent', async (t) => {
      for (let i = 0; i < 25; i++) {
        app.audit.record({ type: 'login', outcome: 'success', actorId: `a${i}`, subjectId: `a${i}`, ip: '203.0.113.7', userAgent: 'test-agent', details: { n: i } })
      }
      await app.audit.flush()
      const rows = await prisma.auditEvent.findMany({ orderBy: { createdAt: 'asc' } })
      t.equal(rows.length, 25, 'every event stored')
      t.equal(rows[0].ip, '203.0.113.7')
      t.equal(rows[0].userAgent, 'test-agent')
      t.equal(rows[0].outcome, 'success')
      t.ok(rows[0].createdAt instanceof Date)
      t.same(new Set(rows.map((r) => JSON.parse(r.details ?? '{}').n)).size, 25)
      t.equal(app.audit.stats().written, 25)
    })

    await t.test('a timer flushes a small batch without an explicit flush', async (t) => {
      app.audit.record({ type: 'logout', outcome: 'success', actorId: 'timer' })
      for (let i = 0; i < 100; i++) {
        if (await prisma.auditEvent.count({ where: { actorId: 'timer' } }) === 1) break
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      t.equal(await prisma.auditEvent.count({ where: { actorId: 'timer' } }), 1)
    })

    await t.test('a failed write is retried and then reported loudly, never dropped silently', async (t) => {
      await prisma.$executeRawUnsafe('ALTER TABLE audit_events RENAME TO audit_events_away')
      app.audit.record({ type: 'user_disabled', outcome: 'success', actorId: 'admin-1', subjectId: 'victim-1', details: { password: 'must-not-appear' } })
      await app.audit.flush()
      await prisma.$executeRawUnsafe('ALTER TABLE audit_events_away RENAME TO audit_events')
      const line = logs.find((l) => l.includes('AUDIT EVENTS LOST'))
      t.ok(line, 'an error line names the loss')
      const entry = JSON.parse(line ?? '{}')
      t.equal(entry.level, 50, 'at error level')
      t.match(entry.lost, [{ type: 'user_disabled', actorId: 'admin-1', subjectId: 'victim-1' }], 'the lost events are identified')
      t.equal(logs.filter((l) => l.includes('audit: write failed; retrying')).length, 2, 'each attempt is logged')
      t.notOk(logs.join('\n').includes('must-not-appear'), 'the log carries no secret')
      t.equal(app.audit.stats().lost, 1)
      app.audit.record({ type: 'user_enabled', outcome: 'success', actorId: 'admin-1' })
      await app.audit.flush()
      t.equal(await prisma.auditEvent.count({ where: { type: 'user_enabled' } }), 1, 'writing resumes once the database is back')
    })

    await t.test('queued events are written when the server closes', async (t) => {
      for (let i = 0; i < 5; i++) app.audit.record({ type: 'refresh', outcome: 'success', actorId: 'closing' })
      await app.close()
      const { prisma: direct } = await createPrismaClient(db.url)
      t.teardown(() => direct.$disconnect())
      t.equal(await direct.auditEvent.count({ where: { actorId: 'closing' } }), 5)
    })
  })
}

t.test('a full queue reports the overflow loudly', async (t) => {
  const db = await createTestDatabase('sqlite')
  t.teardown(() => db.drop())
  const { logs, logger } = logCapture()
  const app = Fastify({ logger })
  await app.register(store, { databaseUrl: db.url })
  await app.register(audit, { maxQueue: 3, batchSize: 100, flushIntervalMs: 10_000 })
  t.teardown(() => app.close())
  await app.ready()
  for (let i = 0; i < 5; i++) app.audit.record({ type: 'login', outcome: 'failure', reason: 'bad_password', actorId: `q${i}` })
  t.equal(logs.filter((l) => l.includes('AUDIT EVENTS LOST') && l.includes('queue is full')).length, 2)
  t.equal(app.audit.stats().lost, 2)
  await app.audit.flush()
  t.equal(await app.store.prisma.auditEvent.count(), 3)
})

for (const { provider, skip } of await providers()) {
  t.test(`${provider}: a batch larger than one INSERT statement is stored whole`, { skip }, async (t) => {
    const db = await createTestDatabase(provider)
    t.teardown(() => db.drop())
    const app = Fastify()
    await app.register(store, { databaseUrl: db.url })
    await app.register(audit, { batchSize: 1200, flushIntervalMs: 10_000 })
    t.teardown(() => app.close())
    await app.ready()
    t.ok((app.store.sqlite ?? app.store.postgres) !== undefined, 'the store\'s own connection is used')
    const at = Date.now()
    for (let i = 0; i < 1200; i++) app.audit.record({ type: 'refresh', outcome: 'success', actorId: `b${i}`, details: { i } })
    await app.audit.flush()
    t.equal(await app.store.prisma.auditEvent.count(), 1200, 'every event of the batch')
    t.equal(new Set((await app.store.prisma.auditEvent.findMany({ select: { id: true } })).map((r) => r.id)).size, 1200, 'each with its own id')
    const last = await app.store.prisma.auditEvent.findFirst({ where: { actorId: 'b1199' } })
    t.equal(JSON.parse(last?.details ?? '{}').i, 1199)
    t.ok(last !== null && last.createdAt.getTime() >= at - 1000 && last.createdAt.getTime() <= Date.now(), 'its time read back as a Date')
    t.equal(app.audit.stats().written, 1200)
  })
}

t.test('options are validated', async (t) => {
  t.throws(() => resolveOptions({ batchSize: 0 }), /batchSize/)
  t.throws(() => resolveOptions({ maxQueue: 1.5 }), /maxQueue/)
  t.same(resolveOptions(), { batchSize: 100, flushIntervalMs: 50, attempts: 3, maxQueue: 10_000 })
  t.ok(Object.isFrozen(resolveOptions()))
})
