// The smaller findings of an outside test, each against a listening server on SQLite and
// PostgreSQL: 500s on input no valid request has, token answers a cache could keep, a second
// Authorization header silently ignored, login CSRF through a form post, lookalike emails as
// separate accounts, LIKE wildcards in the admin search, the last-admin rule counting a disabled
// co-admin, /oauth/revoke from another client, and OAuth clients' tokens managing organizations.
import t from 'tap'
import { connect } from 'node:net'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { createOAuthClient } from '../../plugins/sessions/clients.ts'

const PASSWORD = 'a long and decent passphrase 9'

interface Answer { status: number, code?: string, headers: Headers, body: any }

async function listening (t: Parameters<typeof build>[0], provider: 'sqlite' | 'postgresql') {
  // Registrations from one address beyond the register class's 5 per hour are needed here.
  const { app } = await build(t, { provider, env: { ADMIN_EMAIL: 'root@example.com', ADMIN_PASSWORD: PASSWORD }, app: { rateLimit: { classes: { register: { max: 1000 } } } } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  const port = address.port
  const base = `http://127.0.0.1:${port}`
  async function call (method: string, path: string, init: { token?: string, body?: unknown, raw?: string, type?: string, headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...init.headers }
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
    let body: string | undefined
    if (init.raw !== undefined) body = init.raw
    else if (init.body !== undefined) body = JSON.stringify(init.body)
    if (body !== undefined) headers['content-type'] = init.type ?? 'application/json'
    const res = await fetch(base + path, { method, headers, body })
    const text = await res.text()
    let parsed: any = null
    try { parsed = text === '' ? null : JSON.parse(text) } catch { parsed = text }
    return { status: res.status, code: parsed?.code, headers: res.headers, body: parsed }
  }
  async function register (email: string): Promise<Answer> {
    return await call('POST', '/auth/register', { body: { email, password: PASSWORD } })
  }
  return { app, port, call, register }
}

for (const { provider, skip } of await providers()) {
  t.test(`input no valid request has is a 400, never a 500, on ${provider}`, { skip }, async (t) => {
    const { call, register } = await listening(t, provider)
    const ada = await register('ada@example.com')
    const token = ada.body.access_token as string
    // JSON.stringify writes a lone surrogate as the escape \ud800 and NUL as \u0000.
    const cases: Array<[string, string, unknown, string?]> = [
      ['POST', '/auth/register', { email: 'x\ud800@example.com', password: PASSWORD }],
      ['POST', '/auth/login', { email: 'x\ud800@example.com', password: PASSWORD }],
      ['POST', '/auth/register', { email: 'nul@example.com', password: PASSWORD, name: 'A\u0000B' }],
      ['POST', '/auth/login', { email: 'ada\u0000@example.com', password: PASSWORD }],
      ['POST', '/orgs', { name: 'Acme\u0000' }, token],
      ['POST', '/auth/api-keys', { name: 'ci\u0000' }, token]
    ]
    for (const [method, path, body, bearer] of cases) {
      const res = await call(method, path, { body, token: bearer })
      t.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)}`)
      t.equal(res.code, 'FST_ERR_VALIDATION')
    }
    const form = await call('POST', '/oauth/token', { raw: 'grant_type=password&username=ada%40example.com%00&password=x', type: 'application/x-www-form-urlencoded' })
    t.equal(form.status, 400, 'a form field with NUL on /oauth/token')
    t.equal(form.body.error, 'invalid_request')
    const search = await call('GET', '/admin/users?email=%00', { token })
    t.not(search.status, 500, 'a NUL in a query string is no 500')
  })

  t.test(`answers carrying tokens are not cached; two Authorization headers are refused; /auth takes JSON only, on ${provider}`, { skip }, async (t) => {
    const { call, register, port } = await listening(t, provider)
    const registered = await register('bob@example.com')
    t.equal(registered.headers.get('cache-control'), 'no-store', 'register')
    const login = await call('POST', '/auth/login', { body: { email: 'bob@example.com', password: PASSWORD } })
    t.equal(login.headers.get('cache-control'), 'no-store', 'login')
    const refreshed = await call('POST', '/auth/refresh', { body: { refresh_token: login.body.refresh_token } })
    t.equal(refreshed.status, 200)
    t.equal(refreshed.headers.get('cache-control'), 'no-store', 'refresh')
    const key = await call('POST', '/auth/api-keys', { token: refreshed.body.access_token, body: { name: 'k' } })
    t.equal(key.headers.get('cache-control'), 'no-store', 'API key creation')

    // fetch folds repeated headers into one: the request is written by hand.
    const twice = await new Promise<{ status: number, body: any }>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`GET /auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${refreshed.body.access_token as string}\r\nAuthorization: Bearer forged\r\nConnection: close\r\n\r\n`)
      })
      let text = ''
      socket.on('data', (chunk) => { text += chunk.toString() })
      socket.on('end', () => resolve({ status: Number(text.split(' ')[1]), body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) }))
      socket.on('error', reject)
    })
    t.equal(twice.status, 400, 'two Authorization headers')
    t.equal(twice.body.code, 'MALFORMED_AUTHORIZATION')

    const form = await call('POST', '/auth/login', { raw: 'email=bob%40example.com&password=x', type: 'application/x-www-form-urlencoded' })
    t.equal(form.status, 415, 'a form post to /auth/login (login CSRF)')
    const text = await call('POST', '/auth/login', { raw: '{"email":"bob@example.com","password":"x"}', type: 'text/plain' })
    t.equal(text.status, 415, 'a text/plain post, which a cross-site form can send too')
  })

  t.test(`lookalike emails are refused or folded into one account, on ${provider}`, { skip }, async (t) => {
    const { register } = await listening(t, provider)
    t.equal((await register('ada@example.com')).status, 201)
    for (const lookalike of ['ada\u200b@example.com', '\u0430da@example.com', 'ad\u00ada@example.com', 'ada@exa\u200dmple.com']) {
      const res = await register(lookalike)
      t.equal(res.status, 400, `${JSON.stringify(lookalike)} is refused`)
      t.equal(res.code, 'FST_ERR_VALIDATION')
    }
    for (const same of ['ada@example.com.', 'ADA@EXAMPLE.COM', ' ada@example.com ']) {
      t.equal((await register(same)).code, 'EMAIL_TAKEN', `${JSON.stringify(same)} is the same account`)
    }
    t.equal((await register('kai@bücher.example')).status, 201)
    t.equal((await register('kai@xn--bcher-kva.example')).code, 'EMAIL_TAKEN', 'an IDN domain and its ASCII form are one domain (UTS #46)')
    t.equal((await register('\u0430\u0434\u0430@example.com')).status, 201, 'an all-Cyrillic local part is an address of its own')
  })

  t.test(`the admin search matches its text literally, on ${provider}`, { skip }, async (t) => {
    const { call, register } = await listening(t, provider)
    for (const email of ['a_b@example.com', 'axb@example.com', 'plain@example.com']) t.equal((await register(email)).status, 201)
    const root = await call('POST', '/auth/login', { body: { email: 'root@example.com', password: PASSWORD } })
    const search = async (text: string): Promise<string[]> => {
      const res = await call('GET', `/admin/users?email=${encodeURIComponent(text)}`, { token: root.body.access_token })
      t.equal(res.status, 200)
      return (res.body.items as Array<{ email: string }>).map((u) => u.email).sort()
    }
    t.same(await search('%'), [], '% matches only a literal %')
    t.same(await search('_'), ['a_b@example.com'], '_ matches only a literal _')
    t.same(await search('a_b'), ['a_b@example.com'])
    t.same(await search('plain'), ['plain@example.com'])
  })

  t.test(`a disabled co-admin does not count as the organization's other admin, on ${provider}`, { skip }, async (t) => {
    const { app, call, register } = await listening(t, provider)
    const ada = (await register('ada@example.com')).body
    const bob = (await register('bob@example.com')).body
    const org = (await call('POST', '/orgs', { token: ada.access_token, body: { name: 'Acme' } })).body.id as string
    // Bob is a second admin; then a global admin disables his account.
    await app.store.prisma.membership.create({ data: { orgId: org, userId: bob.user.id, role: 'admin' } })
    const root = await call('POST', '/auth/login', { body: { email: 'root@example.com', password: PASSWORD } })
    t.equal((await call('PATCH', `/admin/users/${bob.user.id as string}`, { token: root.body.access_token, body: { disabled: true } })).status, 200)
    const demote = await call('PATCH', `/orgs/${org}/members/${ada.user.id as string}`, { token: ada.access_token, body: { role: 'viewer' } })
    t.equal(demote.status, 409, 'the last active admin cannot step down')
    t.equal(demote.code, 'CONFLICT')
    const leave = await call('DELETE', `/orgs/${org}/members/${ada.user.id as string}`, { token: ada.access_token })
    t.equal(leave.status, 409, 'nor leave')
  })

  t.test(`/oauth/revoke ends a session only for the client it was issued to; an OAuth client cannot manage organizations, on ${provider}`, { skip }, async (t) => {
    const { app, call, register } = await listening(t, provider)
    const victim = (await register('vic@example.com')).body
    const other = await createOAuthClient(app.store.prisma, { id: 'other-app', name: 'Other app', grants: ['client_credentials'], roles: [] })
    const asOther = `Basic ${Buffer.from(`${other.clientId}:${other.clientSecret}`).toString('base64')}`
    const revoke = await call('POST', '/oauth/revoke', { raw: `token=${victim.access_token as string}`, type: 'application/x-www-form-urlencoded', headers: { authorization: asOther } })
    t.equal(revoke.status, 200, 'the same answer as for any token (RFC 7009 §2.2)')
    t.equal((await call('GET', '/auth/me', { token: victim.access_token })).status, 200, "another client did not end the victim's session")
    t.equal((await call('POST', '/auth/refresh', { body: { refresh_token: victim.refresh_token } })).status, 200, 'nor its refresh token')

    const clientToken = await call('POST', '/oauth/token', { raw: 'grant_type=client_credentials', type: 'application/x-www-form-urlencoded', headers: { authorization: asOther } })
    t.equal(clientToken.status, 200)
    const created = await call('POST', '/orgs', { token: clientToken.body.access_token, body: { name: 'Bot org' } })
    t.equal(created.status, 403, 'a client_credentials token creates no organization (was a 500)')
    t.equal(created.code, 'FORBIDDEN')
    t.equal((await call('GET', '/admin/users', { token: clientToken.body.access_token })).status, 403, 'nor uses the admin API')
  })
}
