// Browser sessions over HTTP against a listening server, on SQLite and PostgreSQL: the refresh
// cookie's attributes, its rotation and reuse detection, the Origin check that refuses
// cookie-authenticated requests from other origins without changing anything, CORS, 415 for
// non-JSON bodies, Cache-Control, and the sessions list.
import t from 'tap'
import { build, type TestContext } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import type { Provider } from '../../plugins/store/database-url.ts'

const PASSWORD = 'correct horse battery staple'
const APP = 'http://localhost:5173'

interface Answer { status: number, body: any, headers: Headers, cookie?: Record<string, string> }

async function server (t: TestContext, provider: Provider) {
  const { app } = await build(t, {
    provider,
    env: { CORS_ORIGINS: `${APP},https://app.example.test`, REFRESH_TOKEN_TTL: '3600' },
    app: { rateLimit: { classes: { login: { max: 1000 }, register: { max: 1000 }, refresh: { max: 1000 } } } }
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base }
}

/** The refresh cookie of a Set-Cookie header, with its attributes. */
function refreshCookie (headers: Headers): Record<string, string> | undefined {
  const line = headers.getSetCookie().find((c) => c.startsWith('gatehouse_refresh='))
  if (line === undefined) return undefined
  const [pair, ...attrs] = line.split(';').map((s) => s.trim())
  const out: Record<string, string> = { value: decodeURIComponent(pair.slice(pair.indexOf('=') + 1)) }
  for (const a of attrs) {
    const eq = a.indexOf('=')
    out[(eq === -1 ? a : a.slice(0, eq)).toLowerCase()] = eq === -1 ? 'true' : a.slice(eq + 1)
  }
  return out
}

async function send (base: string, method: string, path: string, options: { body?: unknown, raw?: string, type?: string, cookie?: string, origin?: string, token?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  let body: string | undefined
  if (options.raw !== undefined) {
    body = options.raw
    headers['content-type'] = options.type ?? 'text/plain'
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['content-type'] = 'application/json'
  }
  if (options.cookie !== undefined) headers.cookie = `gatehouse_refresh=${options.cookie}`
  if (options.origin !== undefined) headers.origin = options.origin
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  const res = await fetch(base + path, { method, headers, body })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = text === '' ? null : JSON.parse(text) } catch {}
  return { status: res.status, body: parsed, headers: res.headers, cookie: refreshCookie(res.headers) }
}

for (const { provider, skip } of await providers()) {
  t.test(`${provider}: cookie session: attributes, rotation, reuse detection, logout`, { skip }, async (t) => {
    const { base } = await server(t, provider)
    const reg = await send(base, 'POST', '/auth/register', { body: { email: 'cookie@example.com', password: PASSWORD, session: 'cookie' } })
    t.equal(reg.status, 201)
    t.notOk('refresh_token' in reg.body, 'register: no refresh token in the body')
    t.ok(reg.cookie !== undefined, 'register sets the cookie')
    t.equal(reg.headers.get('cache-control'), 'no-store')

    const login = await send(base, 'POST', '/auth/login', { body: { email: 'cookie@example.com', password: PASSWORD, session: 'cookie' } })
    t.equal(login.status, 200)
    t.ok(typeof login.body.access_token === 'string', 'the body carries the access token')
    t.notOk('refresh_token' in login.body, 'and no refresh token')
    t.equal(login.headers.get('cache-control'), 'no-store', 'a response with a token is not cached')
    const c = login.cookie!
    t.equal(c.httponly, 'true', 'HttpOnly')
    t.equal(c.secure, 'true', 'Secure')
    t.equal(c.samesite, 'Strict', 'SameSite=Strict')
    t.equal(c.path, '/auth', 'scoped to /auth')
    const maxAge = Number(c['max-age'])
    t.ok(maxAge > 3500 && maxAge <= 3600, `Max-Age ${maxAge} is the token's life (REFRESH_TOKEN_TTL=3600), no longer`)

    const bodyMode = await send(base, 'POST', '/auth/login', { body: { email: 'cookie@example.com', password: PASSWORD } })
    t.ok(typeof bodyMode.body.refresh_token === 'string' && bodyMode.cookie === undefined, 'without "session": "cookie" nothing changes')

    const first = await send(base, 'POST', '/auth/refresh', { cookie: c.value, origin: APP })
    t.equal(first.status, 200)
    t.notOk('refresh_token' in first.body, 'the refresh answer carries no refresh token')
    t.ok(first.cookie !== undefined && first.cookie.value !== c.value, 'the cookie is rotated')
    t.equal(first.cookie!.path, '/auth')
    t.equal(first.headers.get('access-control-allow-origin'), APP)
    t.equal(first.headers.get('access-control-allow-credentials'), 'true')
    t.equal((await send(base, 'GET', '/auth/me', { token: first.body.access_token })).status, 200)

    const own = await send(base, 'POST', '/auth/refresh', { cookie: first.cookie!.value, origin: new URL(base).origin })
    t.equal(own.status, 403, 'the listening address is not the issuer\'s origin (AUTH_ISSUER is http://127.0.0.1:3000 here)')
    const issuerOrigin = await send(base, 'POST', '/auth/refresh', { cookie: first.cookie!.value, origin: 'http://127.0.0.1:3000' })
    t.equal(issuerOrigin.status, 200, 'the server\'s own origin (of AUTH_ISSUER) is allowed')
    const current = issuerOrigin.cookie!.value

    const reused = await send(base, 'POST', '/auth/refresh', { cookie: c.value, origin: APP })
    t.equal(reused.status, 401)
    t.equal(reused.body.code, 'REFRESH_TOKEN_REUSED', 'an old cookie presented again is reuse')
    t.ok(reused.cookie !== undefined && (reused.cookie['max-age'] === '0' || /1970/.test(reused.cookie.expires ?? '')), 'and the dead cookie is cleared')
    const afterReuse = await send(base, 'POST', '/auth/refresh', { cookie: current, origin: APP })
    t.equal(afterReuse.status, 401, 'the whole family is revoked, the newest cookie included')

    const again = await send(base, 'POST', '/auth/login', { body: { email: 'cookie@example.com', password: PASSWORD, session: 'cookie' } })
    const out = await send(base, 'POST', '/auth/logout', { cookie: again.cookie!.value, origin: APP })
    t.equal(out.status, 204, 'logout with the cookie alone')
    t.ok(out.cookie !== undefined && (out.cookie['max-age'] === '0' || /1970/.test(out.cookie.expires ?? '')), 'clears the cookie')
    t.equal((await send(base, 'GET', '/auth/me', { token: again.body.access_token })).body.code, 'TOKEN_REVOKED', 'the session\'s access token stops working')
    t.equal((await send(base, 'POST', '/auth/refresh', { cookie: again.cookie!.value, origin: APP })).status, 401)
    t.equal((await send(base, 'POST', '/auth/refresh', { origin: APP })).body.code, 'INVALID_REFRESH_TOKEN', 'no cookie and no body token')
  })

  t.test(`${provider}: CSRF: cookie requests from other origins are refused and change nothing`, { skip }, async (t) => {
    const { base, app } = await server(t, provider)
    await send(base, 'POST', '/auth/register', { body: { email: 'csrf@example.com', password: PASSWORD } })
    const session = await send(base, 'POST', '/auth/login', { body: { email: 'csrf@example.com', password: PASSWORD, session: 'cookie' } })
    const cookie = session.cookie!.value
    const before = await app.store.prisma.refreshToken.findMany({ orderBy: { createdAt: 'asc' } })

    for (const origin of [undefined, 'https://evil.example', 'null', 'http://localhost:5174', `${APP}/`]) {
      for (const path of ['/auth/refresh', '/auth/logout']) {
        const res = await send(base, 'POST', path, { cookie, origin })
        t.equal(res.status, 403, `${path} from ${origin ?? 'no Origin'} is refused`)
        t.equal(res.body.code, 'ORIGIN_NOT_ALLOWED')
        t.equal(res.cookie, undefined, 'and sets no cookie')
        t.equal(res.headers.get('access-control-allow-origin'), null, 'an unlisted origin gets no CORS grant')
      }
    }
    const after = await app.store.prisma.refreshToken.findMany({ orderBy: { createdAt: 'asc' } })
    t.same(after, before, 'no refresh token was used, rotated or revoked')
    t.equal((await send(base, 'GET', '/auth/me', { token: session.body.access_token })).status, 200, 'the session is alive')
    const ok = await send(base, 'POST', '/auth/refresh', { cookie, origin: APP })
    t.equal(ok.status, 200, 'and the cookie still works from the app')

    // A form post or a text body (what a cross-site page can send without a preflight) is 415.
    const form = await send(base, 'POST', '/auth/refresh', { raw: 'refresh_token=x', type: 'application/x-www-form-urlencoded', cookie: ok.cookie!.value, origin: APP })
    t.equal(form.status, 415)
    const text = await send(base, 'POST', '/auth/login', { raw: JSON.stringify({ email: 'csrf@example.com', password: PASSWORD }), type: 'text/plain' })
    t.equal(text.status, 415, 'a JSON endpoint under /auth refuses text/plain')
    const formLogin = await send(base, 'POST', '/auth/login', { raw: 'email=csrf%40example.com&password=x', type: 'application/x-www-form-urlencoded' })
    t.equal(formLogin.status, 415)
    const oauthForm = await send(base, 'POST', '/oauth/token', { raw: `grant_type=password&username=csrf%40example.com&password=${encodeURIComponent(PASSWORD)}`, type: 'application/x-www-form-urlencoded' })
    t.equal(oauthForm.status, 200, '/oauth keeps its form-encoded bodies')
    t.equal(oauthForm.headers.get('cache-control'), 'no-store')
  })

  t.test(`${provider}: CORS for the listed origins only`, { skip }, async (t) => {
    const { base } = await server(t, provider)
    const preflight = async (origin: string) => fetch(`${base}/auth/refresh`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
    const listed = await preflight(APP)
    t.equal(listed.headers.get('access-control-allow-origin'), APP)
    t.equal(listed.headers.get('access-control-allow-credentials'), 'true')
    t.match(listed.headers.get('vary') ?? '', /Origin/)
    const other = await preflight('https://evil.example')
    t.equal(other.headers.get('access-control-allow-origin'), null)
    const simple = await fetch(`${base}/health`, { headers: { origin: 'https://app.example.test' } })
    t.equal(simple.headers.get('access-control-allow-origin'), 'https://app.example.test')
    t.match(simple.headers.get('vary') ?? '', /Origin/)
    const unlisted = await fetch(`${base}/health`, { headers: { origin: 'https://evil.example' } })
    t.equal(unlisted.headers.get('access-control-allow-origin'), null)
  })

  t.test(`${provider}: the sessions list`, { skip }, async (t) => {
    const { base } = await server(t, provider)
    await send(base, 'POST', '/auth/register', { body: { email: 'devices@example.com', password: PASSWORD } })
    const a = await send(base, 'POST', '/auth/login', { body: { email: 'devices@example.com', password: PASSWORD } })
    const b = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'Phone/1.0' }, body: JSON.stringify({ email: 'devices@example.com', password: PASSWORD }) }).then((r) => r.json()) as { access_token: string, refresh_token: string }
    const refreshed = await fetch(`${base}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'Phone/1.1' }, body: JSON.stringify({ refresh_token: b.refresh_token }) })
    t.equal(refreshed.status, 200)

    const list = await send(base, 'GET', '/auth/sessions', { token: a.body.access_token })
    t.equal(list.status, 200)
    t.equal(list.body.length, 3, 'the register session and both logins')
    const mine = list.body.find((s: { current: boolean }) => s.current)
    t.ok(mine !== undefined && mine.last_used_at === null && mine.ip === '127.0.0.1', 'the current session, never refreshed, from loopback')
    const phone = list.body.find((s: { user_agent: string }) => s.user_agent === 'Phone/1.1')
    t.ok(phone !== undefined && phone.last_used_at !== null && phone.client_id === 'gatehouse', 'the refreshed one shows its last use and client')
    t.ok(list.body.every((s: { created_at: string }) => !Number.isNaN(Date.parse(s.created_at))))

    const end = await send(base, 'DELETE', `/auth/sessions/${phone.id}`, { token: a.body.access_token })
    t.equal(end.status, 204)
    const after = await send(base, 'GET', '/auth/sessions', { token: a.body.access_token })
    t.equal(after.body.length, 2)
    t.equal((await send(base, 'DELETE', `/auth/sessions/${phone.id}`, { token: a.body.access_token })).status, 204, 'ending it again is harmless')
    t.equal((await send(base, 'DELETE', '/auth/sessions/00000000-0000-4000-8000-000000000000', { token: a.body.access_token })).status, 404)

    await send(base, 'POST', '/auth/register', { body: { email: 'someone-else@example.com', password: PASSWORD } })
    const other = await send(base, 'POST', '/auth/login', { body: { email: 'someone-else@example.com', password: PASSWORD } })
    t.equal((await send(base, 'DELETE', `/auth/sessions/${mine.id}`, { token: other.body.access_token })).status, 404, 'another user\'s session is not found')
    t.equal((await send(base, 'GET', '/auth/me', { token: a.body.access_token })).status, 200)
  })
}
