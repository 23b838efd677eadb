// Membership by invitation over HTTP on the whole app, on SQLite and PostgreSQL, with every mail
// read back from a real SMTP server: the same 202 for an address with and without an account,
// the mailed link, acceptance by the invited (confirmed) account only, single use even in
// parallel, the pending list, revocation, no reach into another organization, admins only, and
// an audit trail without a token.
import t from 'tap'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { linkToken, startSmtp } from '../helpers/smtp.ts'
import { account, call } from '../rbac/fixtures.ts'
import { invitationToken, verifiedAccount } from './helpers.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const PASSWORD = 'a long and decent passphrase 9'

for (const { provider, skip } of await providers()) {
  t.test(`invitations on ${provider}`, { skip }, async (t) => {
    const smtp = await startSmtp()
    t.teardown(() => smtp.close())
    const { app, logs } = await build(t, {
      provider,
      env: { SMTP_URL: smtp.url, APP_URL: 'https://app.example.test' },
      app: { rateLimit: { classes: { login: { max: 1000 } } } }
    })
    const ada = await verifiedAccount(app, { email: 'ada@example.com' })
    const bob = await verifiedAccount(app, { email: 'bob@example.com' })
    const cyd = await verifiedAccount(app, { email: 'cyd@example.com' })
    const gil = await verifiedAccount(app, { email: 'gil@example.com' })
    const acme = (await call(app, 'POST', '/orgs', ada, { name: 'Acme' })).body.id as string
    const tokens: string[] = []

    let bobToken = ''
    await t.test('the same 202 for an address with an account and one without', async (t) => {
      const known = await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'bob@example.com', role: 'developer' })
      const unknown = await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'bex@example.com', role: 'developer' })
      for (const res of [known, unknown]) {
        t.equal(res.status, 202)
        t.same(Object.keys(res.body).sort(), ['email', 'expires_at', 'id', 'role'])
        t.match(res.body, { id: UUID, role: 'developer', expires_at: /^\d{4}-\d\d-\d\dT/ })
      }
      t.equal(known.body.email, 'bob@example.com')
      t.equal(unknown.body.email, 'bex@example.com')
      const headers = (res: typeof known) => Object.keys(res.res.headers).filter((h) => h !== 'date').sort()
      t.same(headers(known), headers(unknown), 'the same headers')
      t.equal(known.res.headers['content-length'], unknown.res.headers['content-length'], 'the same length (addresses of one length)')
      t.notOk(JSON.stringify(known.body).includes(bob.id), 'nothing of the account in the answer')

      const mail = await smtp.next((m) => m.to.includes('bob@example.com'))
      t.match(mail.subject, /invited to join Acme/)
      t.match(mail.text, /https:\/\/app\.example\.test\/accept-invite\?token=[A-Za-z0-9_-]{43}/, 'the link points at APP_URL')
      t.match(mail.html, /accept-invite\?token=/, 'the HTML body has the link too')
      bobToken = linkToken(mail, 'accept-invite')
      tokens.push(bobToken)
      const other = await invitationToken(smtp, 'bex@example.com')
      tokens.push(other)
      t.not(other, bobToken)
      const rows = await app.store.prisma.orgInvitation.findMany({ where: { orgId: acme } })
      t.equal(rows.length, 2)
      t.notOk(JSON.stringify(rows).includes(bobToken) || JSON.stringify(rows).includes(other), 'the token is stored only as a hash')
    })

    await t.test('only the invited account accepts, once its address is confirmed', async (t) => {
      const wrong = await call(app, 'POST', '/orgs/invitations/accept', cyd, { token: bobToken })
      t.match(wrong, { status: 403, code: 'FORBIDDEN' }, 'another account is refused')
      t.match(await call(app, 'GET', `/orgs/${acme}`, cyd), { status: 404 }, 'and is no member')
      t.match(await call(app, 'POST', '/orgs/invitations/accept', null, { token: bobToken }), { status: 401, code: 'MISSING_AUTHORIZATION' })

      const ok = await call(app, 'POST', '/orgs/invitations/accept', bob, { token: bobToken })
      t.equal(ok.status, 200, 'the refusals did not use the token up')
      t.same(ok.body, { org_id: acme, role: 'developer' })
      t.equal((await call(app, 'GET', `/orgs/${acme}`, bob)).status, 200, 'bob is a member from then')
      t.match((await call(app, 'GET', '/auth/me', bob)).body.orgs, [{ id: acme, name: 'Acme', role: 'developer' }])
      t.match(await call(app, 'POST', '/orgs/invitations/accept', bob, { token: bobToken }), { status: 400, code: 'INVALID_INVITATION' }, 'a link works once')
      t.match(await call(app, 'POST', '/orgs/invitations/accept', bob, { token: 'x'.repeat(43) }), { status: 400, code: 'INVALID_INVITATION' }, 'an unknown token')
      t.match(await call(app, 'POST', '/orgs/invitations/accept', bob, { token: 'short' }), { status: 400, code: 'INVALID_INVITATION' }, 'a malformed token')
    })

    await t.test('an address without an account: register, confirm, accept', async (t) => {
      const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'Bex@Example.com', password: PASSWORD } })
      t.equal(registered.statusCode, 201)
      const bex = registered.json().access_token as string
      const token = tokens[1]
      t.match(await call(app, 'POST', '/orgs/invitations/accept', bex, { token }), { status: 403, code: 'EMAIL_NOT_VERIFIED' }, 'not before the address is confirmed')
      const verification = await smtp.next((m) => m.to.includes('bex@example.com') && /Confirm your email/.test(m.subject))
      t.equal((await call(app, 'POST', '/auth/email/verify', null, { token: linkToken(verification, 'verify-email') })).status, 204)
      t.match(await call(app, 'POST', '/orgs/invitations/accept', bex, { token }), { status: 200, body: { org_id: acme, role: 'developer' } })
    })

    await t.test('the same link sent many times at once is accepted once', async (t) => {
      const eve = await verifiedAccount(app, { email: 'eve@example.com' })
      t.equal((await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'eve@example.com', role: 'viewer' })).status, 202)
      const token = await invitationToken(smtp, 'eve@example.com')
      tokens.push(token)
      const results = await Promise.all(Array.from({ length: 8 }, async () => await call(app, 'POST', '/orgs/invitations/accept', eve, { token })))
      t.same(results.map((r) => r.status).sort(), [200, 400, 400, 400, 400, 400, 400, 400], 'one 200, seven refusals')
      t.ok(results.filter((r) => r.status === 400).every((r) => r.code === 'INVALID_INVITATION'))
      t.equal(await app.store.prisma.membership.count({ where: { orgId: acme, userId: eve.id } }), 1, 'one membership')
    })

    let fayId = ''
    let fayToken = ''
    await t.test('pending invitations are listed without their token, and can be revoked', async (t) => {
      fayId = (await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'fay@example.com', role: 'viewer' })).body.id
      fayToken = await invitationToken(smtp, 'fay@example.com')
      tokens.push(fayToken)
      const listed = await call(app, 'GET', `/orgs/${acme}/invitations`, ada)
      t.equal(listed.status, 200)
      t.same(listed.body.map((i: { email: string }) => i.email), ['fay@example.com'], 'accepted invitations are no longer pending')
      t.same(Object.keys(listed.body[0]).sort(), ['created_at', 'email', 'expires_at', 'id', 'invited_by', 'role'])
      t.match(listed.body[0], { id: fayId, role: 'viewer', invited_by: ada.id })
      t.notOk(JSON.stringify(listed.body).includes(fayToken))

      t.equal((await call(app, 'DELETE', `/orgs/${acme}/invitations/${fayId}`, ada)).status, 204)
      t.same((await call(app, 'GET', `/orgs/${acme}/invitations`, ada)).body, [])
      const fay = await verifiedAccount(app, { email: 'fay@example.com' })
      t.match(await call(app, 'POST', '/orgs/invitations/accept', fay, { token: fayToken }), { status: 400, code: 'INVALID_INVITATION' }, 'a revoked link stops working')
      t.match(await call(app, 'DELETE', `/orgs/${acme}/invitations/${fayId}`, ada), { status: 404, code: 'NOT_FOUND' }, 'revoked already')
      t.match(await call(app, 'DELETE', `/orgs/${acme}/invitations/not-a-uuid`, ada), { status: 400 })
    })

    await t.test('another organization\'s invitation is out of reach; only org admins invite, list and revoke', async (t) => {
      const pending = (await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'hal@example.com', role: 'viewer' })).body.id as string
      const other = (await call(app, 'POST', '/orgs', gil, { name: 'Other' })).body.id as string
      t.match(await call(app, 'DELETE', `/orgs/${other}/invitations/${pending}`, gil), { status: 404, code: 'NOT_FOUND' }, 'acme\'s invitation through gil\'s own org')
      t.same((await call(app, 'GET', `/orgs/${other}/invitations`, gil)).body, [], 'and not in its list')
      t.match(await call(app, 'GET', `/orgs/${acme}/invitations`, gil), { status: 404 }, 'a non-member cannot tell the org exists')
      t.match(await call(app, 'DELETE', `/orgs/${acme}/invitations/${pending}`, gil), { status: 404 })
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, gil, { email: 'gil@example.com', role: 'admin' }), { status: 404 })
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, bob, { email: 'ivy@example.com', role: 'viewer' }), { status: 403, code: 'FORBIDDEN' }, 'a developer cannot invite')
      t.match(await call(app, 'GET', `/orgs/${acme}/invitations`, bob), { status: 403, code: 'FORBIDDEN' })
      t.match(await call(app, 'DELETE', `/orgs/${acme}/invitations/${pending}`, bob), { status: 403, code: 'FORBIDDEN' })
      t.same((await call(app, 'GET', `/orgs/${acme}/invitations`, ada)).body.map((i: { id: string }) => i.id), [pending], 'still pending')
      const outsider = await account(app, { email: 'ivy@example.com' })
      t.match(await call(app, 'POST', '/orgs/invitations/accept', outsider, { token: fayToken }), { status: 400, code: 'INVALID_INVITATION' })
    })

    await t.test('audited without a token; no token in the log', async (t) => {
      await app.audit.flush()
      const events = await app.store.prisma.auditEvent.findMany({ where: { type: { startsWith: 'invitation_' } } })
      const has = (type: string, outcome: string, reason?: string) => events.some((e) => e.type === type && e.outcome === outcome && (reason === undefined || e.reason === reason))
      t.ok(has('invitation_sent', 'success'), 'invitation_sent')
      t.ok(has('invitation_accepted', 'success'), 'invitation_accepted')
      t.ok(has('invitation_revoked', 'success'), 'invitation_revoked')
      for (const reason of ['wrong_email', 'email_not_verified', 'used', 'revoked', 'unknown', 'malformed']) t.ok(has('invitation_accepted', 'failure', reason), `failure ${reason}`)
      const sent = events.find((e) => e.type === 'invitation_sent' && e.details?.includes('bob@example.com'))
      t.match(sent, { actorId: ada.id, orgId: acme })
      t.match(JSON.parse(sent?.details ?? '{}'), { email: 'bob@example.com', role: 'developer', invitationId: UUID })
      const stored = JSON.stringify(await app.store.prisma.auditEvent.findMany())
      const text = logs.join('\n')
      for (const token of tokens) {
        t.notOk(stored.includes(token), 'no token in the audit trail')
        t.notOk(text.includes(token), 'no token in the log')
      }
    })
  })
}
