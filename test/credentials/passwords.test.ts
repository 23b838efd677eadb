// Password hashing, login and registration through fastify.credentials, on SQLite and PostgreSQL.
import t from 'tap'
import { hash as argon2Hash, parseOptions } from '@node-rs/argon2'
import { providers } from '../helpers/databases.ts'
import { buildCredentials, codeOf, dumpRows } from './helpers.ts'
import type { ThrottleAttempt } from '../../plugins/credentials/index.ts'

const PASSWORD = 'violet tractor evening 42'
const OTHER = 'silent harbour lantern 77'

for (const { provider, skip } of await providers()) {
  t.test(`passwords on ${provider}`, { skip }, async (t) => {
    t.test('argon2id with the explicit parameters, stored as a PHC string', async (t) => {
      const { app } = await buildCredentials(t, provider)
      const user = await app.credentials.register({ email: 'ada@example.com', password: PASSWORD })
      const row = await app.store.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
      t.match(row.passwordHash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
      t.same(parseOptions(row.passwordHash!), { algorithm: 2, version: 1, memoryCost: 19456, timeCost: 2, parallelism: 1, outputLen: 32, saltLen: 16 })
      t.equal(await app.credentials.verifyPassword(row.passwordHash!, PASSWORD), true)
      t.equal(await app.credentials.verifyPassword(row.passwordHash!, OTHER), false)
      const again = await app.credentials.hashPassword(PASSWORD)
      t.not(again, row.passwordHash, 'a fresh salt every time')
    })

    t.test('configured parameters are used, and weaker stored hashes are rehashed at login', async (t) => {
      const { app } = await buildCredentials(t, provider, { credentials: { argon2: { memoryCost: 24_576, timeCost: 3 } } })
      const prisma = app.store.prisma
      const weak = await argon2Hash(PASSWORD, { algorithm: 2, memoryCost: 8192, timeCost: 1, parallelism: 1 })
      const argon2i = await argon2Hash(OTHER, { algorithm: 1, memoryCost: 24_576, timeCost: 3, parallelism: 1 })
      const a = await prisma.user.create({ data: { email: 'weak@example.com', passwordHash: weak } })
      const b = await prisma.user.create({ data: { email: 'argon2i@example.com', passwordHash: argon2i } })

      await app.credentials.login('weak@example.com', PASSWORD)
      const upgraded = (await prisma.user.findUniqueOrThrow({ where: { id: a.id } })).passwordHash!
      t.not(upgraded, weak)
      t.match(upgraded, /^\$argon2id\$v=19\$m=24576,t=3,p=1\$/, 'rehashed with the configured parameters')
      t.ok((await prisma.user.findUniqueOrThrow({ where: { id: a.id } })).lastLoginAt, 'login time stamped')
      await app.credentials.login('weak@example.com', PASSWORD)
      t.equal((await prisma.user.findUniqueOrThrow({ where: { id: a.id } })).passwordHash, upgraded, 'a current hash is left alone')

      await app.credentials.login('argon2i@example.com', OTHER)
      t.match((await prisma.user.findUniqueOrThrow({ where: { id: b.id } })).passwordHash, /^\$argon2id\$v=19\$m=24576,t=3,p=1\$/, 'argon2i imported hash becomes argon2id')

      t.same(await codeOf(() => app.credentials.login('weak@example.com', OTHER)), { code: 'INVALID_CREDENTIALS', statusCode: 401, message: 'Invalid email or password', headers: undefined }, 'a wrong password still fails after the rehash')
    })

    t.test('unknown email and wrong password: the same error, a dummy hash verified, similar time', async (t) => {
      const { app } = await buildCredentials(t, provider)
      await app.credentials.register({ email: 'bob@example.com', password: PASSWORD })
      const before = app.credentials.stats().argon2Operations
      const unknown = await codeOf(() => app.credentials.login('nobody@example.com', PASSWORD))
      t.equal(app.credentials.stats().argon2Operations, before + 1, 'argon2 runs for an unknown email too')
      const wrong = await codeOf(() => app.credentials.login('bob@example.com', OTHER))
      t.same(unknown, wrong)
      t.equal(unknown.code, 'INVALID_CREDENTIALS')

      // Interleaved, 20 tries each, medians compared as a ratio. The machine is shared (other test
      // files run alongside), so a round may be disturbed: up to three rounds are measured and one
      // within 25% passes. Without the dummy hash the ratio is about 0.1 in every round.
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
      const ratios: number[] = []
      for (let round = 0; round < 3; round++) {
        const times: Record<'unknown' | 'wrong', number[]> = { unknown: [], wrong: [] }
        for (let i = 0; i < 22; i++) {
          for (const kind of (i % 2 === 0 ? ['unknown', 'wrong'] : ['wrong', 'unknown']) as Array<'unknown' | 'wrong'>) {
            const started = process.hrtime.bigint()
            await codeOf(() => app.credentials.login(kind === 'unknown' ? `nobody${round}-${i}@example.com` : 'bob@example.com', OTHER))
            if (i >= 2) times[kind].push(Number(process.hrtime.bigint() - started))
          }
        }
        t.equal(times.unknown.length, 20)
        ratios.push(median(times.unknown) / median(times.wrong))
        if (Math.abs(ratios[ratios.length - 1] - 1) < 0.25) break
      }
      t.ok(ratios.some((r) => r > 0.75 && r < 1.25), `median unknown / median wrong per round: ${ratios.map((r) => r.toFixed(3)).join(', ')}`)
    })

    t.test('a 2 KB password is refused before hashing', async (t) => {
      const { app } = await buildCredentials(t, provider)
      await app.credentials.register({ email: 'carol@example.com', password: PASSWORD })
      const before = app.credentials.stats().argon2Operations
      const huge = 'x'.repeat(2048)
      t.match(await codeOf(() => app.credentials.register({ email: 'dave@example.com', password: huge })), { code: 'WEAK_PASSWORD', statusCode: 400, message: /at most 1024 bytes/ })
      t.equal((await codeOf(() => app.credentials.login('carol@example.com', huge))).code, 'INVALID_CREDENTIALS')
      t.equal((await codeOf(() => app.credentials.verifyBasic('carol@example.com', huge))).code, 'INVALID_CREDENTIALS')
      t.equal(await app.credentials.verifyPassword('$argon2id$whatever', huge), false)
      t.equal(app.credentials.stats().argon2Operations, before, 'argon2 never ran')
    })

    t.test('registration: policy, normalised unique email, one account under a race', async (t) => {
      const { app } = await buildCredentials(t, provider)
      t.match(await codeOf(() => app.credentials.register({ email: 'e@example.com', password: 'password1234' })), { code: 'WEAK_PASSWORD', message: /common or breached/ })
      t.match(await codeOf(() => app.credentials.register({ email: 'e@example.com', password: 'short' })), { code: 'WEAK_PASSWORD', message: /at least 12/ })
      t.match(await codeOf(() => app.credentials.register({ email: 'not an email', password: PASSWORD })), { code: 'FST_ERR_VALIDATION', statusCode: 400 })
      const ok = await app.credentials.register({ email: '  Alice@Example.COM ', password: 'correct horse battery staple', name: 'Alice' })
      t.equal(ok.email, 'alice@example.com')
      t.same(await codeOf(() => app.credentials.register({ email: 'alice@example.com', password: PASSWORD })), { code: 'EMAIL_TAKEN', statusCode: 409, message: 'An account with this email already exists', headers: undefined })
      const logged = await app.credentials.login('ALICE@example.com', 'correct horse battery staple')
      t.equal(logged.id, ok.id, 'Alice@Example.COM and alice@example.com are one account')

      const results = await Promise.allSettled(Array.from({ length: 6 }, () => app.credentials.register({ email: 'Race@Example.com', password: PASSWORD })))
      t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one registration wins')
      t.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as { code: string }).code === 'EMAIL_TAKEN'), 'the others are EMAIL_TAKEN')
      t.equal(await app.store.prisma.user.count({ where: { email: 'race@example.com' } }), 1)
    })

    t.test('disabled and deleted accounts: their codes only after a correct password', async (t) => {
      const { app } = await buildCredentials(t, provider)
      const prisma = app.store.prisma
      const d = await app.credentials.register({ email: 'disabled@example.com', password: PASSWORD })
      const x = await app.credentials.register({ email: 'deleted@example.com', password: PASSWORD })
      await prisma.user.update({ where: { id: d.id }, data: { status: 'disabled' } })
      await prisma.user.update({ where: { id: x.id }, data: { deletedAt: new Date() } })
      t.equal((await codeOf(() => app.credentials.login('disabled@example.com', OTHER))).code, 'INVALID_CREDENTIALS')
      t.equal((await codeOf(() => app.credentials.login('deleted@example.com', OTHER))).code, 'INVALID_CREDENTIALS')
      t.equal((await codeOf(() => app.credentials.login('disabled@example.com', PASSWORD))).code, 'ACCOUNT_DISABLED')
      t.equal((await codeOf(() => app.credentials.login('deleted@example.com', PASSWORD))).code, 'USER_NOT_FOUND')
      t.equal((await codeOf(() => app.credentials.verifyBasic('disabled@example.com', PASSWORD))).code, 'ACCOUNT_DISABLED')
    })

    t.test('a full hashing queue answers 503 with Retry-After', async (t) => {
      const { app } = await buildCredentials(t, provider, { credentials: { hashConcurrency: 1, hashQueueSize: 2, retryAfterSeconds: 2 } })
      await app.credentials.register({ email: 'q@example.com', password: PASSWORD })
      const stored = (await app.store.prisma.user.findUniqueOrThrow({ where: { email: 'q@example.com' } })).passwordHash!
      const results = await Promise.allSettled(Array.from({ length: 12 }, () => app.credentials.verifyPassword(stored, PASSWORD)))
      const refused = results.filter((r) => r.status === 'rejected')
      t.equal(results.filter((r) => r.status === 'fulfilled').length, 3, 'one running and two queued')
      t.equal(refused.length, 9)
      t.match((refused[0] as PromiseRejectedResult).reason, { code: 'SERVICE_UNAVAILABLE', statusCode: 503, headers: { 'retry-after': '2' } })
      const logins = await Promise.allSettled(Array.from({ length: 8 }, () => app.credentials.login('q@example.com', PASSWORD)))
      t.ok(logins.some((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'SERVICE_UNAVAILABLE'), 'a login flood gets 503s')
      t.ok(logins.some((r) => r.status === 'fulfilled'), 'and the admitted logins succeed')
      t.equal(app.credentials.stats().hashWaiting, 0, 'the queue drains')
    })

    t.test('the per-account throttle runs before argon2 and hears the outcome', async (t) => {
      const calls: string[] = []
      let blocked = false
      let argon2AtBegin = -1
      const built = await buildCredentials(t, provider, {
        loginThrottle: {
          async begin (accountKey: string): Promise<ThrottleAttempt> {
            argon2AtBegin = built.app.credentials.stats().argon2Operations
            calls.push(`begin ${accountKey}`)
            if (blocked) {
              const { gatehouseError } = await import('../../lib/errors.ts')
              throw gatehouseError('RATE_LIMITED', undefined, { headers: { 'retry-after': '5' } })
            }
            return { fail: async () => { calls.push('fail') }, succeed: async () => { calls.push('succeed') } }
          }
        }
      })
      const app = built.app
      await app.credentials.register({ email: 'thr@example.com', password: PASSWORD })
      const before = app.credentials.stats().argon2Operations
      await codeOf(() => app.credentials.login('Thr@Example.com', OTHER))
      t.equal(argon2AtBegin, before, 'begin ran before any argon2 work')
      await app.credentials.login('thr@example.com', PASSWORD)
      t.same(calls, ['begin thr@example.com', 'fail', 'begin thr@example.com', 'succeed'], 'keyed by the normalised email')
      blocked = true
      const n = app.credentials.stats().argon2Operations
      t.match(await codeOf(() => app.credentials.login('thr@example.com', PASSWORD)), { code: 'RATE_LIMITED', headers: { 'retry-after': '5' } })
      t.equal(app.credentials.stats().argon2Operations, n, 'no argon2 while throttled')
      await app.audit.flush()
      const reasons = (await app.store.prisma.auditEvent.findMany({ where: { type: 'login' }, orderBy: { createdAt: 'asc' } })).map((e) => `${e.outcome}:${e.reason ?? ''}`)
      t.same(reasons, ['failure:bad_password', 'success:', 'failure:rate_limited'])
    })

    t.test('an infrastructure fault releases the throttle reservation without a verdict', async (t) => {
      const calls: string[] = []
      const { app } = await buildCredentials(t, provider, {
        credentials: { hashConcurrency: 1, hashQueueSize: 0 },
        loginThrottle: {
          async begin (): Promise<ThrottleAttempt> {
            return {
              fail: async () => { calls.push('fail') },
              succeed: async () => { calls.push('succeed') },
              release: async () => { calls.push('release') }
            }
          }
        }
      })
      await app.credentials.register({ email: 'rel@example.com', password: PASSWORD })
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => app.credentials.login('rel@example.com', OTHER)))
      const unavailable = results.filter((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'SERVICE_UNAVAILABLE').length
      t.ok(unavailable >= 1, `${unavailable} of 4 refused with 503`)
      t.equal(calls.filter((c) => c === 'release').length, unavailable, 'each 503 released its reservation')
      t.equal(calls.filter((c) => c === 'fail').length, 4 - unavailable, 'only real verdicts count as failures')
    })

    t.test('audit events and secret scan', async (t) => {
      const { app, logs } = await buildCredentials(t, provider)
      const user = await app.credentials.register({ email: 'audit@example.com', password: PASSWORD })
      await codeOf(() => app.credentials.login('audit@example.com', OTHER))
      await codeOf(() => app.credentials.login('ghost@example.com', OTHER))
      await app.credentials.login('audit@example.com', PASSWORD)
      await app.credentials.changePassword(user.id, PASSWORD, 'fresh meadow compass 31')
      const key = await app.credentials.createApiKey(user.id, 'ci')
      await app.credentials.revokeApiKey(user.id, key.id)
      await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } })
      await codeOf(() => app.credentials.login('audit@example.com', 'fresh meadow compass 31'))
      await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'active', deletedAt: new Date() } })
      await codeOf(() => app.credentials.login('audit@example.com', 'fresh meadow compass 31'))
      await app.audit.flush()
      const events = (await app.store.prisma.auditEvent.findMany({ orderBy: { createdAt: 'asc' } })).map((e) => [e.type, e.outcome, e.reason])
      t.same(events, [
        ['register', 'success', null],
        ['login', 'failure', 'bad_password'],
        ['login', 'failure', 'unknown_user'],
        ['login', 'success', null],
        ['password_change', 'success', null],
        ['api_key_created', 'success', null],
        ['api_key_revoked', 'success', null],
        ['login', 'failure', 'disabled'],
        ['login', 'failure', 'deleted']
      ])
      const everything = logs.join('\n') + await dumpRows(app)
      for (const secret of [PASSWORD, OTHER, 'fresh meadow compass 31', key.key, key.key.slice(-43)]) {
        t.notOk(everything.includes(secret), 'no password or key in logs or rows')
      }
    })
  })
}
