// The audit trail end to end, over HTTP on the whole app, on SQLite and PostgreSQL: one event of
// every type the server records, each with time, actor/subject, IP, user agent and outcome, and
// not one password, token, refresh token, API key or hash in any stored field.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { keysCommand } from '../../cli/keys.ts'
import { linkToken, startSmtp } from '../helpers/smtp.ts'

const AGENT = 'gatehouse-audit-trail-test/1.0'
const ROOT_PASSWORD = 'root-bootstrap-passphrase-8812'
const P1 = 'first correct horse battery'
const P2 = 'second correct horse battery'
const BOB_PASSWORD = 'bob has a long passphrase 77'
const WRONG = 'wrong horse battery staple x'

async function req (app: FastifyInstance, method: string, url: string, options: { token?: string, body?: unknown } = {}) {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { 'user-agent': AGENT, ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }) },
    ...(options.body === undefined ? {} : { payload: options.body as object })
  })
  return { status: res.statusCode, body: res.body === '' ? null : res.json() }
}

for (const { provider, skip } of await providers()) {
  t.test(`the audit trail on ${provider}`, { skip }, async (t) => {
    // The per-IP login limit is raised so that the per-account throttle (audited) answers first.
    const smtp = await startSmtp()
    t.teardown(() => smtp.close())
    const { app, config } = await build(t, {
      provider,
      env: { ADMIN_EMAIL: 'root@example.com', ADMIN_PASSWORD: ROOT_PASSWORD, SMTP_URL: smtp.url },
      app: { rateLimit: { failedCredentials: { max: 1000 }, classes: { login: { max: 1000 }, register: { max: 1000 } } } }
    })
    const secrets: string[] = [ROOT_PASSWORD, P1, P2, BOB_PASSWORD, WRONG]
    const keep = (...values: unknown[]): void => { for (const v of values) if (typeof v === 'string' && v.length >= 8) secrets.push(v) }

    const registered = await req(app, 'POST', '/auth/register', { body: { email: 'alice@example.com', password: P1, name: 'Alice' } })
    t.equal(registered.status, 201, 'register')
    keep(registered.body?.access_token, registered.body?.refresh_token)
    const alice = registered.body?.user?.id as string

    const login = await req(app, 'POST', '/auth/login', { body: { email: 'alice@example.com', password: P1 } })
    t.equal(login.status, 200, 'login')
    keep(login.body?.access_token, login.body?.refresh_token)
    t.equal((await req(app, 'POST', '/auth/login', { body: { email: 'alice@example.com', password: WRONG } })).status, 401, 'bad password')
    t.equal((await req(app, 'POST', '/auth/login', { body: { email: 'nobody@example.com', password: WRONG } })).status, 401, 'unknown user')

    const refreshed = await req(app, 'POST', '/auth/refresh', { body: { refresh_token: login.body?.refresh_token } })
    t.equal(refreshed.status, 200, 'refresh')
    keep(refreshed.body?.access_token, refreshed.body?.refresh_token)
    t.equal((await req(app, 'POST', '/auth/refresh', { body: { refresh_token: login.body?.refresh_token } })).status, 401, 'refresh reuse')

    const session = await req(app, 'POST', '/auth/login', { body: { email: 'alice@example.com', password: P1 } })
    keep(session.body?.access_token, session.body?.refresh_token)
    const token = session.body?.access_token as string
    const key = await req(app, 'POST', '/auth/api-keys', { token, body: { name: 'ci' } })
    t.equal(key.status, 201, 'api key created')
    keep(key.body?.key)
    t.equal((await req(app, 'DELETE', `/auth/api-keys/${key.body?.id}`, { token })).status, 204, 'api key revoked')
    t.equal((await req(app, 'POST', '/auth/password', { token, body: { current_password: P1, new_password: P2 } })).status, 204, 'password change')
    t.equal((await req(app, 'POST', '/auth/logout', { token, body: { refresh_token: session.body?.refresh_token } })).status, 204, 'logout')
    const again = await req(app, 'POST', '/auth/login', { body: { email: 'alice@example.com', password: P2 } })
    keep(again.body?.access_token, again.body?.refresh_token)
    t.equal((await req(app, 'POST', '/auth/logout-all', { token: again.body?.access_token })).status, 204, 'logout-all')

    const root = await req(app, 'POST', '/auth/login', { body: { email: 'root@example.com', password: ROOT_PASSWORD } })
    t.equal(root.status, 200, 'the bootstrap admin logs in')
    keep(root.body?.access_token, root.body?.refresh_token)
    const admin = root.body?.access_token as string
    const bobRes = await req(app, 'POST', '/auth/register', { body: { email: 'bob@example.com', password: BOB_PASSWORD } })
    keep(bobRes.body?.access_token, bobRes.body?.refresh_token)
    const bob = bobRes.body?.user?.id as string
    t.equal((await req(app, 'PATCH', `/admin/users/${bob}`, { token: admin, body: { roles: ['admin'] } })).status, 200, 'roles changed')
    t.equal((await req(app, 'PATCH', `/admin/users/${bob}`, { token: admin, body: { roles: ['user'] } })).status, 200)
    const org = await req(app, 'POST', '/orgs', { token: admin, body: { name: 'Trail' } })
    t.equal(org.status, 201, 'org created')
    t.equal((await req(app, 'POST', `/orgs/${org.body?.id}/members`, { token: admin, body: { email: 'bob@example.com', role: 'viewer' } })).status, 202, 'invitation sent')
    const invitation = linkToken(await smtp.next((m) => m.to.includes('bob@example.com') && /invited/.test(m.subject)), 'accept-invite')
    keep(invitation)
    const confirm = linkToken(await smtp.next((m) => m.to.includes('bob@example.com') && /Confirm your email/.test(m.subject)), 'verify-email')
    keep(confirm)
    t.equal((await req(app, 'POST', '/auth/email/verify', { body: { token: confirm } })).status, 204, 'bob confirms his address')
    t.equal((await req(app, 'POST', '/orgs/invitations/accept', { token: bobRes.body?.access_token, body: { token: invitation } })).status, 200, 'invitation accepted')
    const revoked = await req(app, 'POST', `/orgs/${org.body?.id}/members`, { token: admin, body: { email: 'cyd@example.com', role: 'viewer' } })
    keep(linkToken(await smtp.next((m) => m.to.includes('cyd@example.com')), 'accept-invite'))
    t.equal((await req(app, 'DELETE', `/orgs/${org.body?.id}/invitations/${revoked.body?.id}`, { token: admin })).status, 204, 'invitation revoked')
    t.equal((await req(app, 'PATCH', `/orgs/${org.body?.id}/members/${bob}`, { token: admin, body: { role: 'developer' } })).status, 200)
    t.equal((await req(app, 'DELETE', `/orgs/${org.body?.id}/members/${bob}`, { token: admin })).status, 204)
    t.equal((await req(app, 'PATCH', `/admin/users/${bob}`, { token: admin, body: { disabled: true } })).status, 200, 'disabled')
    t.equal((await req(app, 'POST', '/auth/login', { body: { email: 'bob@example.com', password: BOB_PASSWORD } })).status, 401, 'a disabled account cannot log in')
    t.equal((await req(app, 'PATCH', `/admin/users/${bob}`, { token: admin, body: { disabled: false } })).status, 200, 'enabled')
    t.equal((await req(app, 'DELETE', `/admin/users/${bob}`, { token: admin })).status, 204, 'deleted')

    let limited = false
    for (let i = 0; i < 20 && !limited; i++) {
      limited = (await req(app, 'POST', '/auth/login', { body: { email: 'alice@example.com', password: WRONG } })).status === 429
    }
    t.ok(limited, 'repeated failures are throttled')

    t.equal(await keysCommand.run(['rotate'], config), 0, 'gatehouse keys rotate')

    await app.audit.flush()
    const rows = await app.store.prisma.auditEvent.findMany({ orderBy: { createdAt: 'asc' } })
    const has = (type: string, outcome = 'success', reason?: string) => rows.some((r) => r.type === type && r.outcome === outcome && (reason === undefined || r.reason === reason))
    for (const type of ['register', 'login', 'refresh', 'logout', 'logout_all', 'password_change', 'api_key_created', 'api_key_revoked',
      'roles_changed', 'org_created', 'invitation_sent', 'invitation_accepted', 'invitation_revoked', 'membership_added', 'membership_changed', 'membership_removed', 'user_disabled', 'user_enabled', 'user_deleted', 'key_rotated']) {
      t.ok(has(type), `${type} recorded`)
    }
    t.ok(rows.some((r) => r.type === 'refresh_reuse'), 'refresh_reuse recorded')
    for (const reason of ['bad_password', 'unknown_user', 'disabled', 'rate_limited']) t.ok(has('login', 'failure', reason), `login failure (${reason}) recorded`)

    const viaHttp = rows.filter((r) => r.type !== 'key_rotated' && !(r.type === 'roles_changed' && r.reason === 'bootstrap_admin'))
    t.ok(viaHttp.every((r) => r.userAgent === AGENT && r.ip !== null), 'every request-borne event has the IP and user agent')
    t.ok(rows.every((r) => r.createdAt instanceof Date), 'every event has its time')
    t.ok(rows.filter((r) => r.type === 'login' && r.outcome === 'success').every((r) => r.actorId === alice || r.actorId !== null), 'logins name the account')
    t.ok(rows.filter((r) => ['user_disabled', 'user_enabled', 'user_deleted'].includes(r.type)).every((r) => r.subjectId === bob && r.actorId !== null), 'admin events name actor and subject')

    const stored = rows.map((r) => Object.values(r).map((v) => (v instanceof Date ? v.toISOString() : String(v))).join('\u0000')).join('\n')
    t.ok(secrets.length >= 15, `${secrets.length} secrets to look for`)
    const leaked = secrets.filter((s) => stored.includes(s))
    t.same(leaked.map((s) => s.slice(0, 6) + '…'), [], 'no password, token, refresh token or API key in any stored field')
    t.notMatch(stored, /\$argon2|eyJ[A-Za-z0-9_-]{10,}\.eyJ|BEGIN [A-Z ]*KEY/, 'no hash, JWT or key material')
  })
}
