// Refresh-token rotation (RFC 9700 §4.14.2, ASVS 10.4.5, security corpus rows 41-43, 46, 56)
// on SQLite and PostgreSQL.
import t from 'tap'
import { createHash } from 'node:crypto'
import { providers } from '../helpers/databases.ts'
import { accessVerdict, login, refresh, sessionApp } from './helpers.ts'

function claims (accessToken: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString('utf8'))
}

for (const { provider, skip } of await providers()) {
  t.test(`rotation on ${provider}`, { skip }, async (t) => {
    t.test('a refresh rotates the token, stores only its hash and mints an access token from current state', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { user, tokens } = await login(app)
      const familyId = tokens.refresh_token.split('.')[0]
      t.match(tokens.refresh_token, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/, '<familyId>.<43 base64url chars>')
      t.equal(claims(tokens.access_token).sid, familyId, 'the access token names its session')

      // Roles changed after login show up in the next access token (row 56).
      await app.store.prisma.user.update({ where: { id: user.id }, data: { roles: JSON.stringify(['user', 'auditor']) } })
      const res = await refresh(app, tokens.refresh_token)
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
      t.equal(body.token_type, 'Bearer')
      t.not(body.refresh_token, tokens.refresh_token, 'a new refresh token')
      t.equal(body.refresh_token.split('.')[0], familyId, 'same family')
      t.same(claims(body.access_token).roles, ['user', 'auditor'], 'roles come from the database')
      t.equal(claims(body.access_token).sid, familyId)
      t.equal(await accessVerdict(app, body.access_token), 'ok')

      const rows = await app.store.prisma.refreshToken.findMany({ where: { familyId }, orderBy: { createdAt: 'asc' } })
      t.equal(rows.length, 2)
      const hash = (s: string): string => createHash('sha256').update(s).digest('base64url')
      t.same(rows.map((r) => r.tokenHash).sort(), [hash(tokens.refresh_token), hash(body.refresh_token)].sort(), 'only SHA-256 hashes are stored')
      const used = rows.find((r) => r.tokenHash === hash(tokens.refresh_token))!
      const successor = rows.find((r) => r.tokenHash === hash(body.refresh_token))!
      t.ok(used.usedAt, 'the old token is used up')
      t.equal(used.successorId, successor.id)
      t.equal(successor.parentId, used.id)
      const dump = JSON.stringify(await app.store.prisma.refreshToken.findMany())
      t.notOk(dump.includes(tokens.refresh_token.split('.')[1]) || dump.includes(body.refresh_token.split('.')[1]), 'no token secret in the table')
    })

    t.test('replaying a rotated token revokes the whole family and its access tokens (row 41)', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { user, tokens } = await login(app)
      const second = (await refresh(app, tokens.refresh_token)).json()
      const replay = await refresh(app, tokens.refresh_token)
      t.equal(replay.statusCode, 401)
      t.equal(replay.json().code, 'REFRESH_TOKEN_REUSED')
      const successor = await refresh(app, second.refresh_token)
      t.equal(successor.statusCode, 401, 'the live successor dies with its family')
      t.equal(successor.json().code, 'INVALID_REFRESH_TOKEN', 'a refresh token revoked by reuse is an invalid refresh token (CONTRACT §4)')
      t.equal(await accessVerdict(app, second.access_token), 'TOKEN_REVOKED', 'access tokens of the family stop working at once')
      t.equal(await accessVerdict(app, tokens.access_token), 'TOKEN_REVOKED')
      const family = await app.store.prisma.refreshFamily.findUniqueOrThrow({ where: { id: tokens.refresh_token.split('.')[0] } })
      t.ok(family.revokedAt)
      t.equal(family.revokedReason, 'reuse')
      await app.audit.flush()
      const events = await app.store.prisma.auditEvent.findMany({ where: { type: 'refresh_reuse' } })
      t.equal(events.length, 1)
      t.equal(events[0].subjectId, user.id)
      t.equal(events[0].outcome, 'failure')
    })

    t.test('20 parallel refreshes of one token: exactly one success, never two live successors (row 42)', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { tokens } = await login(app)
      const results = await Promise.all(Array.from({ length: 20 }, () => refresh(app, tokens.refresh_token)))
      const ok = results.filter((r) => r.statusCode === 200)
      t.equal(ok.length, 1, 'one winner')
      t.same(results.filter((r) => r.statusCode !== 200).map((r) => r.json().code), Array(19).fill('REFRESH_TOKEN_REUSED'), 'every other one is reuse')
      const familyId = tokens.refresh_token.split('.')[0]
      t.equal(await app.store.prisma.refreshToken.count({ where: { familyId } }), 2, 'one successor was ever stored')
      t.equal(await app.store.prisma.refreshToken.count({ where: { familyId, revokedAt: null } }), 0, 'and the family is revoked')
    })

    t.test('many sessions rotated at once while one token is contested: each family stays consistent', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const sessions = await Promise.all(Array.from({ length: 12 }, () => login(app)))
      const contested = sessions[0].tokens.refresh_token
      const before = new Date()
      // Each other session rotates its token twice in a row; the contested token is sent 10 times at once.
      const chains = sessions.slice(1).map(async ({ tokens }) => {
        const first = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: tokens.refresh_token }, headers: { 'user-agent': 'chain-agent' } })
        if (first.statusCode !== 200) return [first.statusCode]
        const second = await refresh(app, first.json().refresh_token)
        return [first.statusCode, second.statusCode, second.json().refresh_token as string]
      })
      const [chained, contest] = await Promise.all([Promise.all(chains), Promise.all(Array.from({ length: 10 }, () => refresh(app, contested)))])
      t.same(chained.map((c) => c.slice(0, 2)), Array(11).fill([200, 200]), 'every uncontested chain rotated twice')
      t.equal(contest.filter((r) => r.statusCode === 200).length, 1, 'exactly one winner for the contested token')
      t.same(contest.filter((r) => r.statusCode !== 200).map((r) => r.json().code), Array(9).fill('REFRESH_TOKEN_REUSED'))
      const prisma = app.store.prisma
      for (const [i, { tokens }] of sessions.entries()) {
        const familyId = tokens.refresh_token.split('.')[0]
        const rows = await prisma.refreshToken.findMany({ where: { familyId }, orderBy: { createdAt: 'asc' } })
        const family = await prisma.refreshFamily.findUniqueOrThrow({ where: { id: familyId } })
        if (i === 0) {
          t.equal(rows.length, 2, 'the contested family got one successor')
          t.equal(family.revokedReason, 'reuse', 'and was revoked for reuse')
          t.ok(rows.every((r) => r.revokedAt !== null), 'with every token')
          continue
        }
        t.equal(rows.length, 3, 'three tokens in a chain family')
        t.equal(rows.filter((r) => r.usedAt === null && r.revokedAt === null).length, 1, 'exactly one live token')
        for (const r of rows.slice(1)) {
          const parent = rows.find((p) => p.id === r.parentId)
          t.ok(parent !== undefined && parent.successorId === r.id, 'parent and successor point at each other')
          t.ok(r.idleExpiresAt.getTime() <= family.absoluteExpiresAt.getTime(), 'no successor outlives its family')
        }
        t.equal(family.revokedAt, null)
        t.ok(family.lastUsedAt !== null && family.lastUsedAt.getTime() >= before.getTime() - 1000, 'the last use is recorded')
        const live = (await refresh(app, chained[i - 1][2] as string))
        t.equal(live.statusCode, 200, 'the live token still rotates')
      }
    })

    t.test('idle expiry slides with each rotation (REFRESH_TOKEN_TTL)', async (t) => {
      const { app, advance } = await sessionApp(t, { provider, env: { REFRESH_TOKEN_TTL: '60', REFRESH_TOKEN_MAX_TTL: '3600' } })
      const { tokens } = await login(app)
      advance(50)
      const a = await refresh(app, tokens.refresh_token)
      t.equal(a.statusCode, 200, 'within the idle lifetime')
      advance(50)
      const b = await refresh(app, a.json().refresh_token)
      t.equal(b.statusCode, 200, '100 s after login but 50 s after the last rotation')
      advance(61)
      const c = await refresh(app, b.json().refresh_token)
      t.equal(c.statusCode, 401)
      t.equal(c.json().code, 'INVALID_REFRESH_TOKEN', 'idle too long')
    })

    t.test('absolute expiry caps a family however often it is rotated (row 43)', async (t) => {
      const { app, advance } = await sessionApp(t, { provider, env: { REFRESH_TOKEN_TTL: '60', REFRESH_TOKEN_MAX_TTL: '120' } })
      const { tokens } = await login(app)
      const familyId = tokens.refresh_token.split('.')[0]
      let current = tokens.refresh_token
      for (const step of [50, 50]) {
        advance(step)
        const res = await refresh(app, current)
        t.equal(res.statusCode, 200)
        current = res.json().refresh_token
      }
      const family = await app.store.prisma.refreshFamily.findUniqueOrThrow({ where: { id: familyId } })
      const live = await app.store.prisma.refreshToken.findFirstOrThrow({ where: { familyId, usedAt: null } })
      t.ok(live.idleExpiresAt.getTime() <= family.absoluteExpiresAt.getTime(), 'the successor never outlives its family')
      advance(21)
      const late = await refresh(app, current)
      t.equal(late.statusCode, 401)
      t.equal(late.json().code, 'INVALID_REFRESH_TOKEN')
    })

    t.test('a refresh token is bound to its client', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { tokens } = await login(app, { clientId: 'mobile-app' })
      const other = await refresh(app, tokens.refresh_token)
      t.equal(other.statusCode, 401)
      t.equal(other.json().code, 'INVALID_REFRESH_TOKEN', 'the default client cannot use it')
      const own = await app.sessions.refresh(tokens.refresh_token, { clientId: 'mobile-app' })
      t.match(own.refresh_token, /\./, 'its own client still can: the mismatch revoked nothing')
    })

    t.test('user state is checked at refresh', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const disabled = await login(app)
      await app.store.prisma.user.update({ where: { id: disabled.user.id }, data: { status: 'disabled' } })
      const a = await refresh(app, disabled.tokens.refresh_token)
      t.equal(a.statusCode, 401)
      t.equal(a.json().code, 'ACCOUNT_DISABLED')
      const deleted = await login(app)
      await app.store.prisma.user.update({ where: { id: deleted.user.id }, data: { deletedAt: new Date() } })
      const b = await refresh(app, deleted.tokens.refresh_token)
      t.equal(b.statusCode, 401)
      t.equal(b.json().code, 'USER_NOT_FOUND')
      // Re-enabled: the token was never used up by the refused attempt.
      await app.store.prisma.user.update({ where: { id: disabled.user.id }, data: { status: 'active' } })
      t.equal((await refresh(app, disabled.tokens.refresh_token)).statusCode, 200)
    })

    t.test('garbage refresh tokens are 401 INVALID_REFRESH_TOKEN (a NUL character 400), never 500 (row 46)', async (t) => {
      const { app, logs } = await sessionApp(t, { provider })
      const { tokens } = await login(app)
      const familyId = tokens.refresh_token.split('.')[0]
      const cases: unknown[] = [
        '', 'x'.repeat(10 * 1024), "' OR '1'='1' --", `${familyId}.'; DROP TABLE refresh_tokens; --`,
        `${familyId}.${'A'.repeat(43)}`, 12345, null, ['a'], { $ne: null }
      ]
      for (const value of cases) {
        const res = await refresh(app, value)
        t.equal(res.statusCode, 401, `${JSON.stringify(value).slice(0, 40)} -> 401`)
        t.equal(res.json().code, 'INVALID_REFRESH_TOKEN')
      }
      // CONTRACT §14: a NUL character is input no valid request has: a 400 as the body is parsed.
      const nul = await refresh(app, `${familyId}.${tokens.refresh_token.split('.')[1]}\u0000`)
      t.equal(nul.statusCode, 400, 'a NUL character in the token -> 400')
      t.equal(nul.json().code, 'FST_ERR_VALIDATION')
      const secret = tokens.refresh_token.split('.')[1]
      t.notOk(logs.some((line) => line.includes(secret)), 'no refresh token secret in any log line')
      const noBody = await app.inject({ method: 'POST', url: '/auth/refresh' })
      t.equal(noBody.statusCode, 401)
      const query = await app.inject({ method: 'POST', url: `/auth/refresh?refresh_token=${encodeURIComponent(tokens.refresh_token)}`, payload: {} })
      t.equal(query.statusCode, 401, 'a token in the query string is ignored')
      t.equal(query.json().code, 'INVALID_REFRESH_TOKEN')
      t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200, 'the real token was untouched by all of that')
      t.equal(await app.store.prisma.refreshToken.count(), 2, 'the table is intact')
      t.notOk(logs.some((line) => line.includes(secret)), 'not even the one sent in the query string')
    })
  })
}
