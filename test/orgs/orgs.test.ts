// /orgs on the whole app (real tokens through the real authenticate hook), on SQLite and
// PostgreSQL: creation and slugs, org scoping by route parameter, the role hierarchy,
// immediate loss of access after removal or demotion, the last-admin rule (also under
// concurrent demotions), clear 4xx errors and the audit trail. Members join by invitation
// (test/orgs/invitations.test.ts covers the invitations themselves).
import t from 'tap'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { startSmtp } from '../helpers/smtp.ts'
import { call } from '../rbac/fixtures.ts'
import { join, verifiedAccount } from './helpers.ts'

const MISSING_ORG = '00000000-0000-4000-8000-000000000000'

for (const { provider, skip } of await providers()) {
  t.test(`organizations on ${provider}`, { skip }, async (t) => {
    const smtp = await startSmtp()
    t.teardown(() => smtp.close())
    const { app } = await build(t, { provider, env: { SMTP_URL: smtp.url }, app: { rateLimit: { classes: { login: { max: 1000 } } } } })
    const ada = await verifiedAccount(app, { email: 'ada@example.com', name: 'Ada' })
    const bob = await verifiedAccount(app, { email: 'bob@example.com', name: 'Bob' })
    const cyd = await verifiedAccount(app, { email: 'cyd@example.com' })
    const eve = await verifiedAccount(app, { email: 'eve@example.com' })

    const created = await call(app, 'POST', '/orgs', ada, { name: 'Acme Café, Inc.' })
    t.equal(created.status, 201)
    t.match(created.body, { id: /^[0-9a-f-]{36}$/, name: 'Acme Café, Inc.', slug: 'acme-cafe-inc' })
    const acme = created.body.id as string
    const again = await call(app, 'POST', '/orgs', bob, { name: 'ACME cafe inc' })
    t.equal(again.body.slug, 'acme-cafe-inc-2', 'a colliding slug gets a suffix')
    const third = await call(app, 'POST', '/orgs', bob, { name: 'acme café inc' })
    t.equal(third.body.slug, 'acme-cafe-inc-3')
    const other = again.body.id as string
    t.equal((await call(app, 'POST', '/orgs', ada, { name: '!!!' })).body.slug, 'org', 'a name without letters still gets a slug')
    t.equal((await call(app, 'POST', '/orgs', ada, { name: '   ' })).status, 400, 'a blank name is refused')
    t.equal((await call(app, 'POST', '/orgs', ada, { name: 'x', admin: true })).status, 400, 'unknown fields are refused')
    t.match(await call(app, 'POST', '/orgs', null, { name: 'Anon' }), { status: 401, code: 'MISSING_AUTHORIZATION' })

    await t.test('a member reads the organization with its members', async (t) => {
      const res = await call(app, 'GET', `/orgs/${acme}`, ada)
      t.equal(res.status, 200)
      t.match(res.body, { id: acme, name: 'Acme Café, Inc.', slug: 'acme-cafe-inc', members: [{ id: ada.id, email: 'ada@example.com', name: 'Ada', role: 'admin' }] })
      t.equal(res.body.members.length, 1)
      t.notOk(JSON.stringify(res.body).includes('passwordHash'), 'no account internals')
    })

    await t.test('errors: invalid uuid, unknown org, non-member, duplicate, bad role', async (t) => {
      t.match(await call(app, 'GET', '/orgs/not-a-uuid', ada), { status: 400, code: 'FST_ERR_VALIDATION' })
      t.match(await call(app, 'GET', `/orgs/${MISSING_ORG}`, ada), { status: 404, code: 'NOT_FOUND' })
      const outsider = await call(app, 'GET', `/orgs/${acme}`, eve)
      t.match(outsider, { status: 404, code: 'NOT_FOUND' }, 'a non-member cannot tell the organization exists')
      t.same(outsider.body, (await call(app, 'GET', `/orgs/${MISSING_ORG}`, eve)).body, 'same answer as for a missing organization')
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'nobody@example.com', role: 'viewer' }), { status: 202, body: { email: 'nobody@example.com', role: 'viewer' } }, 'an address without an account is invited like any other')
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'bob@example.com', role: 'owner' }), { status: 400 })
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'not an address', role: 'viewer' }), { status: 400, code: 'FST_ERR_VALIDATION' })
      await join(app, smtp, acme, ada, { ...bob, email: 'BOB@Example.com ' }, 'developer')
      t.match((await call(app, 'GET', `/orgs/${acme}`, bob)).body.members, [{ id: ada.id }, { id: bob.id, email: 'bob@example.com', role: 'developer' }], 'invited as BOB@Example.com, bob joined: the email is normalised')
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'bob@example.com', role: 'viewer' }), { status: 409, code: 'CONFLICT' }, 'the address of a member')
      t.match(await call(app, 'PATCH', `/orgs/${acme}/members/${eve.id}`, ada, { role: 'viewer' }), { status: 404, code: 'NOT_FOUND' }, 'not a member')
      t.match(await call(app, 'DELETE', `/orgs/${acme}/members/not-a-uuid`, ada), { status: 400 })
      t.match(await call(app, 'POST', `/orgs/${MISSING_ORG}/members`, ada, { email: 'bob@example.com', role: 'viewer' }), { status: 404 })
    })

    await t.test('hierarchy: a developer may do what a viewer may, not what an admin may', async (t) => {
      t.equal((await call(app, 'GET', `/orgs/${acme}`, bob)).status, 200, 'developer reads (a viewer right)')
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, bob, { email: 'cyd@example.com', role: 'viewer' }), { status: 403, code: 'FORBIDDEN' }, 'developer cannot invite')
      t.match(await call(app, 'PATCH', `/orgs/${acme}/members/${bob.id}`, bob, { role: 'admin' }), { status: 403, code: 'FORBIDDEN' }, 'nor promote themself')
      t.match(await call(app, 'DELETE', `/orgs/${acme}/members/${ada.id}`, bob), { status: 403 }, 'nor remove the admin')
    })

    await t.test('org scoping by route parameter: a member of one org has no rights in another', async (t) => {
      t.equal((await call(app, 'GET', `/orgs/${other}`, bob)).status, 200, 'bob is admin of his own org')
      t.match(await call(app, 'GET', `/orgs/${other}`, ada), { status: 404 }, 'ada, admin of acme, is nobody in bob\'s org')
      t.match(await call(app, 'POST', `/orgs/${other}/members`, ada, { email: 'ada@example.com', role: 'admin' }), { status: 404 }, 'and cannot invite herself there')
      t.match(await call(app, 'PATCH', `/orgs/${other}/members/${bob.id}`, ada, { role: 'viewer' }), { status: 404 })
      t.match(await call(app, 'DELETE', `/orgs/${acme}/members/${ada.id}`, bob), { status: 403 }, 'bob\'s admin role elsewhere does not count in acme')
    })

    await t.test('a removed or demoted member loses access on the next request with the same token', async (t) => {
      await join(app, smtp, acme, ada, cyd, 'admin')
      t.equal((await call(app, 'GET', `/orgs/${acme}`, cyd)).status, 200, 'cyd reads (warms the membership cache)')
      await join(app, smtp, acme, cyd, eve, 'viewer')
      t.equal((await call(app, 'GET', `/orgs/${acme}`, eve)).status, 200, 'cyd acted as admin: eve joined through her invitation')
      t.match(await call(app, 'PATCH', `/orgs/${acme}/members/${cyd.id}`, ada, { role: 'viewer' }), { status: 200, body: { id: cyd.id, role: 'viewer' } })
      t.match(await call(app, 'DELETE', `/orgs/${acme}/members/${eve.id}`, cyd), { status: 403 }, 'demoted: admin rights gone at once')
      t.equal((await call(app, 'GET', `/orgs/${acme}`, cyd)).status, 200, 'viewer rights remain')
      t.equal((await call(app, 'DELETE', `/orgs/${acme}/members/${cyd.id}`, ada)).status, 204)
      t.match(await call(app, 'GET', `/orgs/${acme}`, cyd), { status: 404 }, 'removed: no access at once')
      t.equal((await call(app, 'GET', `/orgs/${acme}`, eve)).status, 200)
      t.equal((await call(app, 'DELETE', `/orgs/${acme}/members/${eve.id}`, ada)).status, 204)
      t.match(await call(app, 'GET', `/orgs/${acme}`, eve), { status: 404 })
    })

    await t.test('the last admin can be neither demoted nor removed', async (t) => {
      t.match(await call(app, 'PATCH', `/orgs/${acme}/members/${ada.id}`, ada, { role: 'developer' }), { status: 409, code: 'CONFLICT' })
      t.match(await call(app, 'DELETE', `/orgs/${acme}/members/${ada.id}`, ada), { status: 409, code: 'CONFLICT' })
      t.equal((await call(app, 'PATCH', `/orgs/${acme}/members/${bob.id}`, ada, { role: 'admin' })).status, 200)
      t.equal((await call(app, 'PATCH', `/orgs/${acme}/members/${ada.id}`, ada, { role: 'viewer' })).status, 200, 'with a second admin, an admin may step down')
      t.match(await call(app, 'PATCH', `/orgs/${acme}/members/${ada.id}`, ada, { role: 'admin' }), { status: 403 }, 'and cannot step back up')
      t.match(await call(app, 'DELETE', `/orgs/${acme}/members/${bob.id}`, bob), { status: 409 }, 'bob is now the last admin')
      t.equal((await call(app, 'PATCH', `/orgs/${acme}/members/${ada.id}`, bob, { role: 'admin' })).status, 200)
    })

    await t.test('concurrent demotions and removals never leave an organization without an admin', async (t) => {
      for (let round = 0; round < 5; round++) {
        const org = (await call(app, 'POST', '/orgs', ada, { name: `Race ${round}` })).body.id as string
        await join(app, smtp, org, ada, bob, 'admin')
        const results = await Promise.all(round % 2 === 0
          ? [call(app, 'PATCH', `/orgs/${org}/members/${bob.id}`, ada, { role: 'viewer' }), call(app, 'PATCH', `/orgs/${org}/members/${ada.id}`, bob, { role: 'viewer' })]
          : [call(app, 'DELETE', `/orgs/${org}/members/${bob.id}`, ada), call(app, 'DELETE', `/orgs/${org}/members/${ada.id}`, bob)])
        const won = results.filter((r) => r.status === (round % 2 === 0 ? 200 : 204))
        const refused = results.filter((r) => r.status === 409 || r.status === 403)
        t.equal(won.length, 1, `round ${round}: one change wins`)
        t.equal(refused.length, 1, `round ${round}: the other is refused (409 last admin, or 403 once the actor lost the admin role)`)
        const admins = await app.store.prisma.membership.count({ where: { orgId: org, role: 'admin' } })
        t.equal(admins, 1, `round ${round}: exactly one admin left`)
      }
    })

    await t.test('membership changes are audited with actor, subject and organization', async (t) => {
      await app.audit.flush()
      const events = await app.store.prisma.auditEvent.findMany({ where: { orgId: acme }, orderBy: { createdAt: 'asc' } })
      const types = new Set(events.map((e) => e.type))
      for (const type of ['org_created', 'invitation_sent', 'invitation_accepted', 'membership_added', 'membership_changed', 'membership_removed']) t.ok(types.has(type), `${type} recorded`)
      const demotion = events.find((e) => e.type === 'membership_changed' && e.subjectId === cyd.id)
      t.match(demotion, { actorId: ada.id, subjectId: cyd.id, orgId: acme, outcome: 'success' })
      t.same(JSON.parse(demotion?.details ?? '{}'), { from: 'admin', to: 'viewer' })
      t.ok(events.every((e) => e.ip !== null), 'the client address is kept')
    })
  })
}
