// Found by an outside test: any user could create an organization and probe
// `POST /orgs/:id/members {email}`: 201 with the account's id, email and name, or 404 "No account
// with this email"; 60 probes from one address got no 429, and the victim then found the org in
// `/auth/me`. Now the route only invites: the same 202 for every address, a mail to the address,
// membership only once its account accepts, and sends limited per client address, inviter and
// organization. Against a listening server, on SQLite and PostgreSQL.
import t from 'tap'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { startSmtp } from '../helpers/smtp.ts'
import { PASSWORD, client } from './limiter-helpers.ts'

const PROBES = 60
const INVITE_MAX = 30 // the default budget of the `invite` class

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

for (const { provider, skip } of await providers()) {
  t.test(`60 membership probes tell nothing and are limited, on ${provider}`, { skip }, async (t) => {
    const smtp = await startSmtp()
    t.teardown(() => smtp.close())
    const { app } = await build(t, { provider, env: { TRUST_PROXY: '127.0.0.1', SMTP_URL: smtp.url } })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    const call = client(base)

    const mallory = await call('198.51.100.1', 'POST', '/auth/register', { body: { email: 'mallory@example.com', password: PASSWORD } })
    const token = `Bearer ${mallory.body.access_token as string}`
    const org = (await call('198.51.100.1', 'POST', '/orgs', { authorization: token, body: { name: 'Probe' } })).body.id as string
    // Accounts behind half of the probed addresses: `user07@example.com` has one, `none07@example.com` not.
    for (let i = 0; i < PROBES / 2; i++) {
      await app.store.prisma.user.create({ data: { email: `user${String(i).padStart(2, '0')}@example.com` } })
    }
    const victim = await call('198.51.100.2', 'POST', '/auth/register', { body: { email: 'victim@example.com', password: PASSWORD } })

    // Each probe from a new address, so that no per-address budget hides the per-inviter one.
    const answers: Array<{ existing: boolean, status: number, code?: string, keys: string, retryAfter: string | null, ms: number }> = []
    for (let i = 0; i < PROBES; i++) {
      const existing = i % 2 === 0
      const email = `${existing ? 'user' : 'none'}${String(Math.floor(i / 2)).padStart(2, '0')}@example.com`
      const started = performance.now()
      const res = await call(`203.0.113.${i + 1}`, 'POST', `/orgs/${org}/members`, { authorization: token, body: { email, role: 'viewer' } })
      answers.push({ existing, status: res.status, code: res.code, keys: Object.keys(res.body ?? {}).sort().join(','), retryAfter: res.retryAfter, ms: performance.now() - started })
      if (res.status === 202) t.same({ email: res.body.email, role: res.body.role }, { email, role: 'viewer' }, `probe ${i + 1}: the address echoed, nothing else of it`)
    }
    const allowed = answers.filter((a) => a.status === 202)
    t.equal(allowed.length, INVITE_MAX, 'the inviter\'s budget: 30 invitations an hour')
    t.ok(answers.slice(0, INVITE_MAX).every((a) => a.status === 202), 'the first 30 are invitations, for addresses with and without an account alike')
    t.ok(answers.slice(INVITE_MAX).every((a) => a.status === 429 && a.code === 'RATE_LIMITED' && Number(a.retryAfter) >= 1), 'then 429 RATE_LIMITED with Retry-After')
    t.same(new Set(allowed.map((a) => a.keys)), new Set(['email,expires_at,id,role']), 'one body shape for every address')
    t.equal(allowed.filter((a) => a.existing).length, INVITE_MAX / 2, 'half of the invited addresses had an account')
    const known = median(allowed.filter((a) => a.existing).map((a) => a.ms))
    const unknown = median(allowed.filter((a) => !a.existing).map((a) => a.ms))
    t.comment(`median answer time: ${known.toFixed(1)} ms with an account, ${unknown.toFixed(1)} ms without (reported, not asserted)`)

    await app.mailer.idle()
    t.equal(smtp.mails.filter((m) => /invited to join/.test(m.subject)).length, INVITE_MAX, 'one mail per invitation, none beyond the limit')
    t.equal(await app.store.prisma.membership.count({ where: { orgId: org } }), 1, 'nobody became a member: mallory alone')

    const forced = await call('198.51.100.2', 'POST', `/orgs/${org}/members`, { authorization: token, body: { email: 'victim@example.com', role: 'admin' } })
    t.equal(forced.status, 429, 'the inviter stays limited from any address')
    t.same((await call('198.51.100.2', 'GET', '/auth/me', { authorization: `Bearer ${victim.body.access_token as string}` })).body.orgs, [], 'the victim is in no organization')

    // A second admin of the same organization, from a fresh address: the organization's budget is spent too.
    const trudy = await call('198.51.100.3', 'POST', '/auth/register', { body: { email: 'trudy@example.com', password: PASSWORD } })
    await app.store.prisma.membership.create({ data: { orgId: org, userId: trudy.body.user.id, role: 'admin' } })
    const second = await call('198.51.100.4', 'POST', `/orgs/${org}/members`, { authorization: `Bearer ${trudy.body.access_token as string}`, body: { email: 'fresh@example.com', role: 'viewer' } })
    t.equal(second.status, 429, 'the organization\'s budget: 30 invitations an hour, whoever sends them')
    const own = (await call('198.51.100.4', 'POST', '/orgs', { authorization: `Bearer ${trudy.body.access_token as string}`, body: { name: 'Own' } })).body.id as string
    t.equal((await call('198.51.100.4', 'POST', `/orgs/${own}/members`, { authorization: `Bearer ${trudy.body.access_token as string}`, body: { email: 'fresh@example.com', role: 'viewer' } })).status, 202, 'her own organization has its own budget')
  })
}
