// /admin on the whole app, on SQLite and PostgreSQL: refusals (401/403), the paged user list,
// role changes, disable/enable and soft delete taking effect on the next request with the same
// token, the last-admin rule, and the paged, filtered audit log.
import t from 'tap'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { account, call, login } from '../rbac/fixtures.ts'

for (const { provider, skip } of await providers()) {
  t.test(`admin API on ${provider}`, { skip }, async (t) => {
    const { app } = await build(t, { provider })
    const root = await account(app, { email: 'root@example.com', roles: ['admin'] })
    const mallory = await account(app, { email: 'mallory@example.com' })
    const users = [] as Awaited<ReturnType<typeof account>>[]
    for (let i = 0; i < 5; i++) users.push(await account(app, { email: `member${i}@corp.example` }))

    await t.test('non-admins get 403, anonymous callers 401', async (t) => {
      const routes: Array<[string, string, unknown?]> = [
        ['GET', '/admin/users'],
        ['PATCH', `/admin/users/${mallory.id}`, { roles: ['admin'] }],
        ['DELETE', `/admin/users/${root.id}`],
        ['GET', '/admin/audit']
      ]
      for (const [method, url, body] of routes) {
        t.match(await call(app, method, url, mallory, body), { status: 403, code: 'FORBIDDEN' }, `${method} ${url} as a user`)
        const anonymous = await call(app, method, url, null, body)
        t.match(anonymous, { status: 401, code: 'MISSING_AUTHORIZATION' }, `${method} ${url} anonymous`)
        t.match(anonymous.res.headers['www-authenticate'], /^Bearer/)
      }
      const me = await app.store.prisma.user.findUniqueOrThrow({ where: { id: mallory.id } })
      t.same(JSON.parse(me.roles), ['user'], 'the refused escalation changed nothing')
      t.equal((await call(app, 'GET', `/admin/users`, 'not.a.jwt')).status, 401, 'a garbage token is not a user')
    })

    await t.test('the user list is paged and filtered', async (t) => {
      const all = await call(app, 'GET', '/admin/users', root)
      t.equal(all.status, 200)
      t.equal(all.body.total, 7)
      t.equal(all.body.next, null)
      t.notOk(JSON.stringify(all.body).match(/password|hash/i), 'no credential fields')
      const seen: string[] = []
      let next: string | null = null
      let pages = 0
      do {
        const page: any = await call(app, 'GET', `/admin/users?limit=2${next === null ? '' : `&cursor=${next}`}`, root)
        t.equal(page.status, 200)
        t.ok(page.body.items.length <= 2)
        seen.push(...page.body.items.map((u: { id: string }) => u.id))
        next = page.body.next
        pages++
      } while (next !== null && pages < 10)
      t.equal(pages, 4, '7 users in pages of 2')
      t.same([...seen].sort(), all.body.items.map((u: { id: string }) => u.id).sort(), 'every user exactly once')
      const filtered = await call(app, 'GET', '/admin/users?email=CORP.example', root)
      t.equal(filtered.body.total, 5, 'email substring, case-insensitive')
      t.ok(filtered.body.items.every((u: { email: string }) => u.email.endsWith('@corp.example')))
      t.match(await call(app, 'GET', '/admin/users?limit=0', root), { status: 400 })
      t.match(await call(app, 'GET', '/admin/users?limit=500', root), { status: 400 })
      t.match(await call(app, 'GET', '/admin/users?cursor=bm9wZQ', root), { status: 400, code: 'FST_ERR_VALIDATION' })
      t.match(await call(app, 'GET', '/admin/users?status=sleeping', root), { status: 400 })
      t.match(await call(app, 'GET', '/admin/users?sort=email', root), { status: 400 }, 'unknown parameters are refused')
    })

    await t.test('role changes are validated against the hierarchy and apply on the next request', async (t) => {
      const [u0] = users
      t.match(await call(app, 'PATCH', `/admin/users/${u0.id}`, root, { roles: ['superuser'] }), { status: 400 })
      t.match(await call(app, 'PATCH', `/admin/users/${u0.id}`, root, { roles: 'admin' }), { status: 400 })
      t.match(await call(app, 'PATCH', `/admin/users/${u0.id}`, root, { roles: ['Admin'] }), { status: 400 })
      t.match(await call(app, 'PATCH', `/admin/users/${u0.id}`, root, { roles: [] }), { status: 400 })
      t.match(await call(app, 'PATCH', `/admin/users/${u0.id}`, root, {}), { status: 400 })
      t.match(await call(app, 'PATCH', '/admin/users/not-a-uuid', root, { disabled: true }), { status: 400 })
      t.match(await call(app, 'PATCH', '/admin/users/00000000-0000-4000-8000-000000000000', root, { disabled: true }), { status: 404, code: 'NOT_FOUND' })
      t.equal((await call(app, 'GET', '/admin/users', u0)).status, 403)
      t.match(await call(app, 'PATCH', `/admin/users/${u0.id}`, root, { roles: ['admin', 'user'] }), { status: 200, body: { id: u0.id, roles: ['admin', 'user'], status: 'active' } })
      t.equal((await call(app, 'GET', '/admin/users', u0)).status, 200, 'promoted: the same token now reaches admin routes')
      t.match(await call(app, 'PATCH', `/admin/users/${u0.id}`, root, { roles: ['user'] }), { status: 200, body: { roles: ['user'] } })
      t.match(await call(app, 'GET', '/admin/users', u0), { status: 403 }, 'security.md #56: demoted: the old access token carries no admin right any more')
    })

    await t.test('security.md #55/#56: roles come from the database, not from the token', async (t) => {
      const [, , , , u4] = users
      const family = await app.store.prisma.refreshFamily.create({ data: { userId: u4.id, clientId: 'gatehouse', absoluteExpiresAt: new Date(Date.now() + 3_600_000) } })
      const inflated = await app.tokens.sign({ id: u4.id, roles: ['admin'], tokenVersion: 0 }, { sid: family.id })
      t.match(await call(app, 'GET', '/admin/users', inflated.access_token), { status: 403, code: 'FORBIDDEN' }, 'a validly signed token claiming admin for a user account is not admin')
      t.equal((await call(app, 'PATCH', `/admin/users/${u4.id}`, root, { roles: ['admin'] })).status, 200)
      t.equal((await call(app, 'GET', '/admin/users', u4)).status, 200)
      t.equal((await call(app, 'PATCH', `/admin/users/${u4.id}`, root, { roles: ['user'] })).status, 200, 'demoted')
      t.equal((await call(app, 'GET', '/admin/users', u4)).status, 403, 'the access token issued before the demotion has lost the admin right')
      t.ok(u4.refreshToken !== undefined, 'a refresh token from gatehouse-sessions')
      const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u4.refreshToken } })
      t.equal(refreshed.statusCode, 200)
      const claims = JSON.parse(Buffer.from(refreshed.json().access_token.split('.')[1], 'base64url').toString())
      t.same(claims.roles, ['user'], 'the refreshed access token carries the database roles')
    })

    await t.test('disable and enable: the live token dies at once and stays dead', async (t) => {
      const u1 = users[1]
      t.equal((await call(app, 'GET', `/orgs/00000000-0000-4000-8000-000000000000`, u1)).status, 404, 'the token works before')
      t.match(await call(app, 'PATCH', `/admin/users/${u1.id}`, root, { disabled: true }), { status: 200, body: { status: 'disabled' } })
      const after = await call(app, 'GET', `/orgs/00000000-0000-4000-8000-000000000000`, u1)
      t.equal(after.status, 401)
      t.equal(after.code, 'ACCOUNT_DISABLED', 'next request: ACCOUNT_DISABLED')
      const families = await app.store.prisma.refreshFamily.findMany({ where: { userId: u1.id } })
      t.ok(families.length > 0 && families.every((f) => f.revokedAt !== null), 'every session revoked')
      t.equal((await call(app, 'GET', '/admin/users?status=disabled', root)).body.total, 1)
      t.match(await call(app, 'PATCH', `/admin/users/${u1.id}`, root, { disabled: false }), { status: 200, body: { status: 'active' } })
      t.match(await call(app, 'GET', `/orgs/00000000-0000-4000-8000-000000000000`, u1), { status: 401 }, 'enabling does not revive old sessions')
      const fresh = await login(app, u1.id)
      t.equal((await call(app, 'GET', `/orgs/00000000-0000-4000-8000-000000000000`, fresh.token)).status, 404, 'a new login works')
    })

    await t.test('soft delete keeps the data and kills the live token', async (t) => {
      const u2 = users[2]
      t.equal((await call(app, 'DELETE', `/admin/users/${u2.id}`, root)).status, 204)
      const after = await call(app, 'GET', `/orgs/00000000-0000-4000-8000-000000000000`, u2)
      t.equal(after.status, 401)
      t.equal(after.code, 'USER_NOT_FOUND', 'next request: USER_NOT_FOUND')
      const row = await app.store.prisma.user.findUnique({ where: { id: u2.id } })
      t.ok(row !== null && row.deletedAt instanceof Date, 'the row is kept with deleted_at set')
      t.equal((await call(app, 'DELETE', `/admin/users/${u2.id}`, root)).status, 404, 'deleting twice: not found')
      t.equal((await call(app, 'PATCH', `/admin/users/${u2.id}`, root, { disabled: false })).status, 404, 'a deleted account cannot be re-enabled here')
      const listed = await call(app, 'GET', '/admin/users', root)
      t.notOk(listed.body.items.some((u: { id: string }) => u.id === u2.id), 'not listed by default')
      t.ok((await call(app, 'GET', '/admin/users?status=deleted', root)).body.items.some((u: { id: string }) => u.id === u2.id), 'listed with status=deleted')
    })

    let auditor = root
    await t.test('the last active admin cannot be disabled, deleted or demoted', async (t) => {
      t.match(await call(app, 'PATCH', `/admin/users/${root.id}`, root, { roles: ['user'] }), { status: 409, code: 'CONFLICT' })
      t.match(await call(app, 'PATCH', `/admin/users/${root.id}`, root, { disabled: true }), { status: 409, code: 'CONFLICT' })
      t.match(await call(app, 'DELETE', `/admin/users/${root.id}`, root), { status: 409, code: 'CONFLICT' })
      const other = users[3]
      t.equal((await call(app, 'PATCH', `/admin/users/${other.id}`, root, { roles: ['admin'] })).status, 200)
      const [a, b] = await Promise.all([
        call(app, 'PATCH', `/admin/users/${other.id}`, root, { disabled: true }),
        call(app, 'PATCH', `/admin/users/${root.id}`, other, { disabled: true })
      ])
      t.same([a.status, b.status].filter((s) => s === 200).length, 1, 'of two concurrent disables of the two admins, one wins')
      const admins = (await app.store.prisma.user.findMany({ where: { status: 'active', deletedAt: null } })).filter((u) => JSON.parse(u.roles).includes('admin'))
      t.equal(admins.length, 1, 'one active admin remains')
      const remaining = admins[0].id === root.id ? root : other
      const revived = admins[0].id === root.id ? other : root
      t.equal((await call(app, 'PATCH', `/admin/users/${revived.id}`, remaining, { disabled: false })).status, 200)
      auditor = remaining
    })

    await t.test('the audit log: every admin event, paged and filtered, no secrets', async (t) => {
      const res = await call(app, 'GET', '/admin/audit?limit=200', auditor)
      t.equal(res.status, 200)
      const types = new Set(res.body.items.map((e: { type: string }) => e.type))
      for (const type of ['roles_changed', 'user_disabled', 'user_enabled', 'user_deleted']) t.ok(types.has(type), `${type} recorded`)
      const change = res.body.items.find((e: any) => e.type === 'roles_changed' && e.subjectId === users[0].id && e.details?.to?.includes('admin'))
      t.match(change, { actorId: root.id, outcome: 'success', details: { from: ['user'], to: ['admin', 'user'] } })
      const byType = await call(app, 'GET', '/admin/audit?type=user_deleted', auditor)
      t.ok(byType.body.items.length >= 1 && byType.body.items.every((e: { type: string }) => e.type === 'user_deleted'))
      const byUser = await call(app, 'GET', `/admin/audit?user=${users[1].id}`, auditor)
      t.ok(byUser.body.items.length >= 2 && byUser.body.items.every((e: any) => e.actorId === users[1].id || e.subjectId === users[1].id))
      const future = new Date(Date.now() + 3_600_000).toISOString()
      t.same((await call(app, 'GET', `/admin/audit?from=${encodeURIComponent(future)}`, auditor)).body.items, [], 'time range: nothing in the future')
      const past = new Date(Date.now() - 3_600_000).toISOString()
      t.equal((await call(app, 'GET', `/admin/audit?to=${encodeURIComponent(past)}`, auditor)).body.items.length, 0)
      const total = res.body.items.length
      const seen = new Set<string>()
      let next: string | null = null
      do {
        const page: any = await call(app, 'GET', `/admin/audit?limit=3${next === null ? '' : `&cursor=${next}`}`, auditor)
        for (const e of page.body.items) seen.add(e.id)
        next = page.body.next
      } while (next !== null && seen.size <= total)
      t.ok(seen.size >= total, 'paging walks every event once')
      const failures = await call(app, 'GET', '/admin/audit?outcome=failure', auditor)
      t.ok(failures.body.items.every((e: { outcome: string }) => e.outcome === 'failure'), 'outcome filter')
      const org = (await call(app, 'POST', '/orgs', auditor, { name: 'Audited' })).body.id as string
      const byOrg = await call(app, 'GET', `/admin/audit?org=${org}`, auditor)
      t.match(byOrg.body.items, [{ type: 'org_created', orgId: org }], 'organization filter; an event recorded just before is visible')
      t.match(await call(app, 'GET', '/admin/audit?from=yesterday', auditor), { status: 400 })
      t.match(await call(app, 'GET', '/admin/audit?user=nope', auditor), { status: 400 })

      const rows = await app.store.prisma.auditEvent.findMany()
      const secrets = [root, mallory, ...users].flatMap((u) => [u.token, u.refreshToken]).filter((s): s is string => typeof s === 'string')
      const stored = JSON.stringify(rows)
      for (const secret of secrets) t.notOk(stored.includes(secret), 'no token in any stored audit field')
      t.notOk(/eyJ[A-Za-z0-9_-]+\.eyJ/.test(stored), 'nothing shaped like a JWT')
    })
  })
}
