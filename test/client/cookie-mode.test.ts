// The client's browser mode against a listening server, with a fetch that behaves like a
// browser's for this purpose: it keeps the refresh cookie in its own jar (where script cannot read
// it), sends it back with `credentials: 'include'` only, and sets the page's Origin. Chromium runs
// the same flow in test/accounts/browser.test.ts.
import t from 'tap'
import { build } from '../helpers/build.ts'
import { createClient } from '../../client/index.ts'

const PASSWORD = 'correct horse battery staple'
const APP = 'http://localhost:5173'

function browserLikeFetch () {
  let jar: string | undefined
  const seen: Array<{ path: string, credentials?: string, body?: string }> = []
  const fetchFn = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input))
    const headers = new Headers(init.headers)
    headers.set('origin', APP)
    const include = init.credentials === 'include'
    if (include && jar !== undefined && url.pathname.startsWith('/auth')) headers.set('cookie', `gatehouse_refresh=${jar}`)
    seen.push({ path: url.pathname, credentials: init.credentials, body: typeof init.body === 'string' ? init.body : undefined })
    const res = await fetch(url, { ...init, headers })
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('gatehouse_refresh='))
    if (cookie !== undefined && include) {
      const value = decodeURIComponent(cookie.split(';')[0].slice('gatehouse_refresh='.length))
      jar = /max-age=0/i.test(cookie) || value === '' ? undefined : value
    }
    // Like a browser, the page never sees Set-Cookie.
    const visible = new Headers(res.headers)
    visible.delete('set-cookie')
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: visible })
  }
  return { fetchFn, seen, jar: () => jar }
}

t.test('browser mode: cookie login, restore after a reload, single-flight refresh, logout', async (t) => {
  const { app, logs } = await build(t, { env: { CORS_ORIGINS: APP }, app: { rateLimit: { classes: { login: { max: 1000 }, register: { max: 1000 }, refresh: { max: 1000 } } } } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = browserLikeFetch()
  const page = () => createClient({ baseUrl: base, fetch: browser.fetchFn, session: 'cookie', proactiveRefresh: false })

  t.throws(() => createClient({ baseUrl: base, session: 'cookie', storage: { get: () => null, set: () => {}, clear: () => {} } }), { code: 'INVALID_OPTION' }, 'no storage in browser mode')

  const first = page()
  await first.register('cookie-client@example.com', PASSWORD)
  t.ok(browser.jar() !== undefined, 'the browser holds the refresh cookie')
  t.equal((await first.me()).email, 'cookie-client@example.com')
  t.notMatch(JSON.stringify(first) + String(first), /\.[A-Za-z0-9_-]{43}/, 'the client shows no refresh token')
  t.ok(browser.seen.filter((s) => s.path.startsWith('/auth/') && s.path !== '/auth/me').every((s) => s.credentials === 'include'), 'session calls carry credentials')
  t.ok(browser.seen.every((s) => s.body === undefined || !s.body.includes('refresh_token')), 'no request body carries a refresh token')

  // A reload: a new client with nothing in memory, the same browser.
  const second = page()
  t.equal(await second.isAuthenticated(), true, 'restored by refreshing with the cookie')
  const cookieBefore = browser.jar()
  await Promise.all([second.refresh(), second.refresh(), second.me()])
  t.not(browser.jar(), cookieBefore, 'the cookie was rotated')
  t.equal((await second.me()).email, 'cookie-client@example.com', 'single-flight: no concurrent refresh tripped reuse detection')

  await second.logout()
  t.equal(browser.jar(), undefined, 'logout cleared the cookie')
  t.equal(await page().isAuthenticated(), false, 'after another reload there is no session')
  t.notOk(logs.some((l) => cookieBefore !== undefined && l.includes(cookieBefore)), 'the cookie value is in no log line')
})
