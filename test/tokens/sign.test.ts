// tokens.sign: the claims of user and client_credentials tokens, and the principal each one
// becomes on verification (a client token is checked against its OAuthClient row).
import t from 'tap'
import { buildProtected, createUser, bearer } from './helpers.ts'

function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
}

t.test('user and client tokens', async (t) => {
  const { app, config } = await buildProtected(t)

  t.test('a user token carries exactly the contract claims', async (t) => {
    const user = await createUser(app, { roles: ['user'] })
    const { access_token: token, expires_in: expiresIn } = await app.tokens.sign({ id: user.id, roles: ['user'], tokenVersion: 3 }, { sid: 'fam-1' })
    t.equal(expiresIn, config.accessTokenTtl)
    const claims = claimsOf(token)
    t.same(Object.keys(claims).sort(), ['amr', 'aud', 'auth_time', 'exp', 'iat', 'iss', 'jti', 'roles', 'sid', 'sub', 'ver'])
    t.same(claims.amr, ['pwd'], 'a session without another method was made by a password (RFC 8176)')
    t.equal(claims.auth_time, claims.iat, 'without authTime the token stands for an authentication now')
    const later = claimsOf((await app.tokens.sign({ id: user.id, roles: ['user'], tokenVersion: 3 }, { sid: 'fam-1', authTime: 1_700_000_000 })).access_token)
    t.equal(later.auth_time, 1_700_000_000, 'authTime is carried as auth_time (OIDC Core §2)')
    await t.rejects(app.tokens.sign({ id: user.id, roles: [], tokenVersion: 3 }, { sid: 'fam-1', authTime: 1.5 }), TypeError, 'authTime is whole seconds')
    t.equal(claims.iss, config.issuer)
    t.equal(claims.aud, config.audience)
    t.equal(claims.sub, user.id)
    t.equal(claims.sid, 'fam-1')
    t.equal(claims.ver, 3)
    t.equal((claims.exp as number) - (claims.iat as number), config.accessTokenTtl)
    t.not(claimsOf((await app.tokens.sign({ id: user.id, roles: [], tokenVersion: 3 }, { sid: 'fam-1' })).access_token).jti, claims.jti, 'jti is unique')
  })

  t.test('sign refuses inputs that would make an unverifiable or ambiguous token', async (t) => {
    await t.rejects(app.tokens.sign({ id: 'u1', roles: ['user'], tokenVersion: 0 }), /needs options.sid/)
    await t.rejects(app.tokens.sign({ id: '', roles: [], tokenVersion: 0 }, { sid: 's' }), TypeError)
    await t.rejects(app.tokens.sign({ id: 'u1', roles: 'admin' as never, tokenVersion: 0 }, { sid: 's' }), TypeError)
    await t.rejects(app.tokens.sign({ id: 'u1', roles: [], tokenVersion: -1 }, { sid: 's' }), TypeError)
    await t.rejects(app.tokens.sign({ id: 'u1', roles: [], tokenVersion: 0 }, { clientId: 'c1' }), /client token/)
    await t.rejects(app.tokens.sign({ id: 'c1', roles: [], tokenVersion: 0 }, { clientId: 'c1', sid: 's' }), /no sid/)
  })

  t.test('a client_credentials token is a client principal, checked against its client row', async (t) => {
    await app.store.prisma.oAuthClient.create({ data: { id: 'reporting', name: 'Reporting job', grants: '["client_credentials"]', roles: '["reports"]' } })
    const { access_token: token } = await app.tokens.sign({ id: 'reporting', roles: ['reports'], tokenVersion: 0 }, { clientId: 'reporting', scope: 'reports:read' })
    const claims = claimsOf(token)
    t.equal(claims.client_id, 'reporting')
    t.equal(claims.sub, 'reporting')
    t.equal(claims.scope, 'reports:read')
    t.notOk('sid' in claims)
    t.notOk('auth_time' in claims, 'no user authenticated behind a client token')
    const ok = await app.inject({ url: '/protected', headers: bearer(token) })
    t.equal(ok.statusCode, 200)
    t.equal(ok.json().clientId, 'reporting')
    t.same(ok.json().roles, ['reports'])

    await app.store.prisma.oAuthClient.update({ where: { id: 'reporting' }, data: { revokedAt: new Date() } })
    await app.tokens.clientChanged('reporting')
    const revoked = await app.inject({ url: '/protected', headers: bearer(token) })
    t.equal(revoked.statusCode, 401)
    t.equal(revoked.json().code, 'TOKEN_REVOKED', 'a revoked client\'s tokens fail at once')

    const { access_token: ghost } = await app.tokens.sign({ id: 'no-such-client', roles: [], tokenVersion: 0 }, { clientId: 'no-such-client' })
    t.equal((await app.inject({ url: '/protected', headers: bearer(ghost) })).json().code, 'USER_NOT_FOUND')
  })
})
