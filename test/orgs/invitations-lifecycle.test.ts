// The life of an invitation on SQLite and PostgreSQL, with gatehouse-orgs' injectable clock:
// expiry, a new invitation to the same address replacing the pending one, the per-recipient
// limit on mails, and the answers for an address that is a member already.
import t from 'tap'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { startSmtp } from '../helpers/smtp.ts'
import { call } from '../rbac/fixtures.ts'
import { invitationToken, verifiedAccount } from './helpers.ts'

const DAY = 86_400_000

t.test('ORG_INVITATION_TTL sets the lifetime', async (t) => {
  const smtp = await startSmtp()
  t.teardown(() => smtp.close())
  const { app } = await build(t, { env: { SMTP_URL: smtp.url, ORG_INVITATION_TTL: '3600' } })
  const ada = await verifiedAccount(app, { email: 'ada@example.com' })
  const org = (await call(app, 'POST', '/orgs', ada, { name: 'Short' })).body.id as string
  const sent = await call(app, 'POST', `/orgs/${org}/members`, ada, { email: 'bob@example.com', role: 'viewer' })
  const lifetime = Date.parse(sent.body.expires_at) - Date.now()
  t.ok(lifetime > 3_540_000 && lifetime <= 3_600_000, `expires_at is an hour ahead (${lifetime} ms)`)
  t.match((await smtp.next((m) => m.to.includes('bob@example.com'))).text, /expires in 1 hour/, 'and the mail says so')
})

for (const { provider, skip } of await providers()) {
  t.test(`the life of an invitation on ${provider}`, { skip }, async (t) => {
    const smtp = await startSmtp()
    t.teardown(() => smtp.close())
    let offset = 0
    const { app } = await build(t, {
      provider,
      env: { SMTP_URL: smtp.url },
      app: { rateLimit: { classes: { login: { max: 1000 } } }, orgs: { clock: () => Date.now() + offset } }
    })
    const ada = await verifiedAccount(app, { email: 'ada@example.com' })
    const acme = (await call(app, 'POST', '/orgs', ada, { name: 'Acme' })).body.id as string

    await t.test('an invitation expires after ORG_INVITATION_TTL (7 days by default)', async (t) => {
      const bob = await verifiedAccount(app, { email: 'bob@example.com' })
      const sent = await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'bob@example.com', role: 'viewer' })
      const lifetime = Date.parse(sent.body.expires_at) - Date.now()
      t.ok(lifetime > 7 * DAY - 60_000 && lifetime <= 7 * DAY, `expires_at is 7 days ahead (${lifetime} ms)`)
      const token = await invitationToken(smtp, 'bob@example.com')
      offset = 7 * DAY + 1000
      t.match(await call(app, 'POST', '/orgs/invitations/accept', bob, { token }), { status: 400, code: 'INVALID_INVITATION' }, 'expired')
      t.same((await call(app, 'GET', `/orgs/${acme}/invitations`, ada)).body, [], 'no longer pending')
      t.match(await call(app, 'DELETE', `/orgs/${acme}/invitations/${sent.body.id as string}`, ada), { status: 404 })
      offset = 0
      t.equal((await call(app, 'POST', '/orgs/invitations/accept', bob, { token })).status, 200, 'the same token a moment before the end')
    })

    await t.test('inviting an address again replaces its pending invitation', async (t) => {
      const cyd = await verifiedAccount(app, { email: 'cyd@example.com' })
      const first = await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'cyd@example.com', role: 'viewer' })
      const firstToken = await invitationToken(smtp, 'cyd@example.com')
      const second = await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'cyd@example.com', role: 'admin' })
      const secondToken = await invitationToken(smtp, 'cyd@example.com')
      t.equal(second.status, 202)
      t.equal(second.body.id, first.body.id, 'the same invitation, refreshed')
      const pending = (await call(app, 'GET', `/orgs/${acme}/invitations`, ada)).body
      t.match(pending, [{ email: 'cyd@example.com', role: 'admin' }])
      t.equal(pending.length, 1, 'one pending invitation for the address')
      t.match(await call(app, 'POST', '/orgs/invitations/accept', cyd, { token: firstToken }), { status: 400, code: 'INVALID_INVITATION' }, 'the older link stopped working')
      t.match(await call(app, 'POST', '/orgs/invitations/accept', cyd, { token: secondToken }), { status: 200, body: { role: 'admin' } })
    })

    await t.test('at most 3 mails per organization and address in 15 minutes', async (t) => {
      for (let i = 0; i < 3; i++) t.equal((await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'dan@example.com', role: 'viewer' })).status, 202)
      const limited = await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'dan@example.com', role: 'viewer' })
      t.match(limited, { status: 429, code: 'RATE_LIMITED' })
      t.ok(Number(limited.res.headers['retry-after']) >= 1, 'with Retry-After')
      t.equal((await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'dee@example.com', role: 'viewer' })).status, 202, 'another address has its own budget')
      await app.mailer.idle()
      t.equal(smtp.mails.filter((m) => m.to.includes('dan@example.com')).length, 3, 'three mails, not four')
      t.equal((await call(app, 'GET', `/orgs/${acme}/invitations`, ada)).body.filter((i: { email: string }) => i.email === 'dan@example.com').length, 1, 'one pending invitation')
    })

    await t.test('a member\'s address: 409 on inviting, 409 on accepting (the invitation stays pending)', async (t) => {
      t.match(await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'Bob@Example.com', role: 'viewer' }), { status: 409, code: 'CONFLICT' })
      const eve = await verifiedAccount(app, { email: 'eve@example.com' })
      t.equal((await call(app, 'POST', `/orgs/${acme}/members`, ada, { email: 'eve@example.com', role: 'viewer' })).status, 202)
      const token = await invitationToken(smtp, 'eve@example.com')
      await app.orgs.addMember(acme, 'eve@example.com', 'developer', { via: 'test' })
      t.match(await call(app, 'POST', '/orgs/invitations/accept', eve, { token }), { status: 409, code: 'CONFLICT' })
      t.ok((await call(app, 'GET', `/orgs/${acme}/invitations`, ada)).body.some((i: { email: string }) => i.email === 'eve@example.com'), 'still pending')
      const members = (await call(app, 'GET', `/orgs/${acme}`, ada)).body.members as Array<{ id: string, role: string }>
      t.same(members.filter((m) => m.id === eve.id).map((m) => m.role), ['developer'], 'the role was not changed by the invitation')
    })
  })
}
