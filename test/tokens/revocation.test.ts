// Revocation takes effect on the very next request, even for a token already in the verified
// cache: revoked sessions, a token-version bump (logout-all), disable, soft and hard delete; roles
// come from the current user state, not from the token. On SQLite and PostgreSQL.
import t from 'tap'
import { providers } from '../helpers/databases.ts'
import { buildProtected, createUser, tokenFor, bearer } from './helpers.ts'

for (const { provider, skip } of await providers()) {
  t.test(`revocation is immediate (${provider})`, { skip }, async (t) => {
    const { app, databaseUrl, config } = await buildProtected(t, { provider })

    async function call (token: string): Promise<{ status: number, code?: string, body: Record<string, unknown> }> {
      const res = await app.inject({ url: '/protected', headers: bearer(token) })
      const body = res.json()
      return { status: res.statusCode, code: body.code, body }
    }

    t.test('revokeSids', async (t) => {
      const user = await createUser(app)
      const a = await tokenFor(app, user)
      const b = await tokenFor(app, user)
      t.equal((await call(a.token)).status, 200)
      t.equal((await call(a.token)).status, 200, 'served from the verified cache')
      await app.tokens.revokeSids([a.sid], Math.floor(Date.now() / 1000) + 900)
      t.equal((await call(a.token)).code, 'TOKEN_REVOKED', 'the revoked session fails at once')
      t.equal((await call(b.token)).status, 200, 'another session of the same user still works')
    })

    t.test('token version bump (logout-all)', async (t) => {
      const user = await createUser(app)
      const old = await tokenFor(app, user, { tokenVersion: 0 })
      t.equal((await call(old.token)).status, 200)
      await app.store.prisma.user.update({ where: { id: user.id }, data: { tokenVersion: 1 } })
      await app.tokens.userChanged(user.id)
      t.equal((await call(old.token)).code, 'TOKEN_REVOKED', 'a token with an older ver fails')
      const fresh = await tokenFor(app, user, { tokenVersion: 1 })
      t.equal((await call(fresh.token)).status, 200, 'a token with the current ver works')
    })

    t.test('disable, then enable', async (t) => {
      const user = await createUser(app)
      const { token } = await tokenFor(app, user)
      t.equal((await call(token)).status, 200)
      await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } })
      await app.tokens.userChanged(user.id)
      const res = await app.inject({ url: '/protected', headers: bearer(token) })
      t.equal(res.statusCode, 401)
      t.equal(res.json().code, 'ACCOUNT_DISABLED')
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
      await app.store.prisma.user.update({ where: { id: user.id }, data: { status: 'active' } })
      await app.tokens.userChanged(user.id)
      t.equal((await call(token)).status, 200, 'works again once re-enabled')
    })

    t.test('soft delete and hard delete', async (t) => {
      const soft = await createUser(app)
      const softToken = (await tokenFor(app, soft)).token
      t.equal((await call(softToken)).status, 200)
      await app.store.prisma.user.update({ where: { id: soft.id }, data: { deletedAt: new Date() } })
      await app.tokens.userChanged(soft.id)
      t.equal((await call(softToken)).code, 'USER_NOT_FOUND')

      const hard = await createUser(app)
      const hardToken = (await tokenFor(app, hard)).token
      t.equal((await call(hardToken)).status, 200)
      await app.store.prisma.user.delete({ where: { id: hard.id } })
      await app.tokens.userChanged(hard.id)
      t.equal((await call(hardToken)).code, 'USER_NOT_FOUND')
    })

    t.test('an account error wins over TOKEN_REVOKED when a disable or delete also revoked the session', async (t) => {
      for (const [change, code] of [[{ status: 'disabled' }, 'ACCOUNT_DISABLED'], [{ deletedAt: new Date() }, 'USER_NOT_FOUND']] as const) {
        const user = await createUser(app)
        const { token, sid } = await tokenFor(app, user)
        t.equal((await call(token)).status, 200)
        await app.store.prisma.user.update({ where: { id: user.id }, data: change })
        await app.tokens.userChanged(user.id)
        await app.tokens.revokeSids([sid], Math.floor(Date.now() / 1000) + 900)
        t.equal((await call(token)).code, code, `${code} rather than TOKEN_REVOKED`)
        t.equal((await call(token)).code, code, `${code} again, from the cached state`)
      }
    })

    t.test('roles come from the current state, not the token', async (t) => {
      const user = await createUser(app, { roles: ['user'] })
      const { token } = await tokenFor(app, user, { roles: ['user'] })
      t.same((await call(token)).body.roles, ['user'])
      await app.store.prisma.user.update({ where: { id: user.id }, data: { roles: JSON.stringify(['user', 'admin']) } })
      await app.tokens.userChanged(user.id)
      t.same((await call(token)).body.roles, ['user', 'admin'], 'a promotion applies to an existing token')
      const forged = await tokenFor(app, user, { roles: ['superuser'] })
      t.same((await call(forged.token)).body.roles, ['user', 'admin'], 'the token\'s roles claim grants nothing')
    })

    t.test('userState', async (t) => {
      const user = await createUser(app, { roles: ['user'] })
      const state = await app.tokens.userState(user.id)
      t.same(state, { id: user.id, email: user.email, status: 'active', deleted: false, roles: ['user'], tokenVersion: 0 })
      t.equal(await app.tokens.userState('no-such-user'), null)
    })

    t.test('sessions revoked before a start are loaded from refresh_families', async (t) => {
      const user = await createUser(app)
      const family = await app.store.prisma.refreshFamily.create({
        data: { userId: user.id, clientId: 'gatehouse', absoluteExpiresAt: new Date(Date.now() + 86_400_000), revokedAt: new Date(), revokedReason: 'logout' }
      })
      const live = await app.store.prisma.refreshFamily.create({
        data: { userId: user.id, clientId: 'gatehouse', absoluteExpiresAt: new Date(Date.now() + 86_400_000) }
      })
      const second = await buildProtected(t, { provider, databaseUrl, keysDir: config.keysDir })
      const revokedToken = (await tokenFor(second.app, user, { sid: family.id })).token
      const liveToken = (await tokenFor(second.app, user, { sid: live.id })).token
      const res = await second.app.inject({ url: '/protected', headers: bearer(revokedToken) })
      t.equal(res.json().code, 'TOKEN_REVOKED', 'a session revoked before the instance started')
      t.equal((await second.app.inject({ url: '/protected', headers: bearer(liveToken) })).statusCode, 200)
    })
  })
}
