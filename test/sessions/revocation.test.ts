// Session revocation: logout, logout-all, revokeOthers (password change), revokeAllFamilies
// (disable/delete), the reuse grace window; security corpus rows 44-45, ASVS 7.4.1-7.4.3.
import t from 'tap'
import { providers } from '../helpers/databases.ts'
import { accessVerdict, login, refresh, sessionApp } from './helpers.ts'

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

for (const { provider, skip } of await providers()) {
  t.test(`revocation on ${provider}`, { skip }, async (t) => {
    t.test('logout ends this session only (row 44)', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { user, tokens } = await login(app)
      const other = await app.sessions.start(user, {})
      const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) })
      t.equal(res.statusCode, 204)
      t.equal(res.body, '')
      const again = await refresh(app, tokens.refresh_token)
      t.equal(again.statusCode, 401)
      t.equal(again.json().code, 'TOKEN_REVOKED')
      t.equal(await accessVerdict(app, tokens.access_token), 'TOKEN_REVOKED', 'its access token stops at once')
      t.equal(await accessVerdict(app, other.access_token), 'ok', 'another session of the same user lives on')
      t.equal((await refresh(app, other.refresh_token)).statusCode, 200)
      await app.audit.flush()
      t.equal(await app.store.prisma.auditEvent.count({ where: { type: 'logout', subjectId: user.id } }), 1)
    })

    t.test('logout with a refresh token revokes that session too, only if it is the same user\'s', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { user, tokens } = await login(app)
      const second = await app.sessions.start(user, {})
      const stranger = await login(app)
      const res = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token), payload: { refresh_token: second.refresh_token } })
      t.equal(res.statusCode, 204)
      t.equal((await refresh(app, second.refresh_token)).json().code, 'TOKEN_REVOKED')
      const other = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(stranger.tokens.access_token), payload: { refresh_token: (await app.sessions.start(user, {})).refresh_token } })
      t.equal(other.statusCode, 204, 'the stranger ends their own session')
      t.equal(await app.store.prisma.refreshFamily.count({ where: { userId: user.id, revokedAt: null } }), 1, 'but not one of someone else\'s')
    })

    t.test('logout needs a valid bearer token', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const none = await app.inject({ method: 'POST', url: '/auth/logout' })
      t.equal(none.statusCode, 401)
      t.equal(none.json().code, 'MISSING_AUTHORIZATION')
      const { tokens } = await login(app)
      await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) })
      const twice = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) })
      t.equal(twice.statusCode, 401, 'a revoked access token cannot log out again')
      t.equal(twice.json().code, 'TOKEN_REVOKED')
    })

    t.test('logout-all ends every session and every access token issued before it', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { user, tokens } = await login(app)
      const second = await app.sessions.start(user, {})
      const bystander = await login(app)
      const res = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(tokens.access_token) })
      t.equal(res.statusCode, 204)
      for (const session of [tokens, second]) {
        t.equal((await refresh(app, session.refresh_token)).json().code, 'TOKEN_REVOKED')
        t.equal(await accessVerdict(app, session.access_token), 'TOKEN_REVOKED')
      }
      const row = await app.store.prisma.user.findUniqueOrThrow({ where: { id: user.id } })
      t.equal(row.tokenVersion, 1, 'token version bumped')
      t.equal(await accessVerdict(app, bystander.tokens.access_token), 'ok', 'other users are untouched')
      // A new login after logout-all works normally.
      const fresh = await app.sessions.start({ id: user.id, roles: ['user'], tokenVersion: row.tokenVersion }, {})
      t.equal(await accessVerdict(app, fresh.access_token), 'ok')
      await app.audit.flush()
      t.equal(await app.store.prisma.auditEvent.count({ where: { type: 'logout_all', subjectId: user.id } }), 1)
    })

    t.test('revokeOthers keeps the current session (password change, row 45)', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { user, tokens } = await login(app)
      const others = [await app.sessions.start(user, {}), await app.sessions.start(user, {})]
      const keep = tokens.refresh_token.split('.')[0]
      t.equal(await app.sessions.revokeOthers(user.id, keep, 'password_change'), 2)
      t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200, 'the session that changed the password lives')
      for (const session of others) {
        t.equal((await refresh(app, session.refresh_token)).json().code, 'TOKEN_REVOKED')
        t.equal(await accessVerdict(app, session.access_token), 'TOKEN_REVOKED')
      }
      const reasons = await app.store.prisma.refreshFamily.findMany({ where: { userId: user.id, revokedAt: { not: null } }, select: { revokedReason: true } })
      t.same(reasons.map((r) => r.revokedReason), ['password_change', 'password_change'])
    })

    t.test('revokeAllFamilies with a disabled account (row 45)', async (t) => {
      const { app } = await sessionApp(t, { provider })
      const { user, tokens } = await login(app)
      await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } })
      t.equal(await app.sessions.revokeAllFamilies(user.id, 'disabled'), 1)
      await app.tokens.userChanged(user.id)
      t.equal((await refresh(app, tokens.refresh_token)).json().code, 'ACCOUNT_DISABLED')
      t.equal(await accessVerdict(app, tokens.access_token), 'ACCOUNT_DISABLED', 'the account state wins over the revoked session')
      await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'active' } })
      await app.tokens.userChanged(user.id)
      t.equal(await accessVerdict(app, tokens.access_token), 'TOKEN_REVOKED', 're-enabled, the old session stays revoked')
      t.equal(await app.sessions.revokeAllFamilies(user.id, 'disabled'), 0, 'idempotent')
    })

    t.test('grace window: the same client gets the same successor back, once and briefly', async (t) => {
      const { app, advance } = await sessionApp(t, { provider, app: { sessions: { reuseGraceSeconds: 5 } } })
      const { tokens } = await login(app, { clientId: 'spa' })
      const first = await app.sessions.refresh(tokens.refresh_token, { clientId: 'spa' })
      advance(2)
      const lost = await app.sessions.refresh(tokens.refresh_token, { clientId: 'spa' })
      t.equal(lost.refresh_token, first.refresh_token, 'the lost response is answered again with the same successor')
      t.not(lost.access_token, undefined)
      const wrongClient = await app.sessions.refresh(tokens.refresh_token, {}).catch((e: { code: string }) => e.code)
      t.equal(wrongClient, 'INVALID_REFRESH_TOKEN', 'another client never gets it')
      const parallel = await Promise.all(Array.from({ length: 20 }, () => app.sessions.refresh(tokens.refresh_token, { clientId: 'spa' })))
      t.same(new Set(parallel.map((r) => r.refresh_token)), new Set([first.refresh_token]), 'parallel retries inside the window share one successor')
      advance(4)
      const late = await app.sessions.refresh(tokens.refresh_token, { clientId: 'spa' }).catch((e: { code: string }) => e.code)
      t.equal(late, 'REFRESH_TOKEN_REUSED', 'after the window it is reuse, and the family is revoked')
      const successor = await app.sessions.refresh(first.refresh_token, { clientId: 'spa' }).catch((e: { code: string }) => e.code)
      t.equal(successor, 'INVALID_REFRESH_TOKEN', 'the newest token of a family revoked for reuse')
    })

    t.test('grace window ends when the successor was used', async (t) => {
      const { app } = await sessionApp(t, { provider, app: { sessions: { reuseGraceSeconds: 5 } } })
      const { tokens } = await login(app)
      const first = await app.sessions.refresh(tokens.refresh_token)
      await app.sessions.refresh(first.refresh_token)
      const replay = await app.sessions.refresh(tokens.refresh_token).catch((e: { code: string }) => e.code)
      t.equal(replay, 'REFRESH_TOKEN_REUSED')
    })

    t.test('the sessions options are validated', async (t) => {
      const { resolveOptions } = await import('../../plugins/sessions/options.ts')
      t.throws(() => resolveOptions({ reuseGraceSeconds: 6 }), /between 0 and 5/)
      t.throws(() => resolveOptions({ refreshTokenTtl: 100, refreshTokenMaxTtl: 50 }))
      t.equal(resolveOptions().reuseGraceSeconds, 0, 'no grace by default')
      t.ok(Object.isFrozen(resolveOptions()))
    })
  })
}
