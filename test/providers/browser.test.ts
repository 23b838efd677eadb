// Sign-in with an OpenID provider in a real browser: headless Chromium (Debian's, through
// playwright-core) opens a small web app on its own origin, clicks "Sign in with Acme ID", goes
// through the loopback oidc-provider's own login page, comes back to the app with a one-time
// login code and the app's page exchanges it (cookie session, CORS) and shows the signed-in user.
// The flow is bound to the browser that started it: the same callback URL opened in another
// browser (a login CSRF victim, or someone who copied the URL) signs no one in, before and after
// the real browser has used it; and the app page, as docs/providers.md shows it, exchanges only a
// code of a sign-in its own tab started. Then the GitHub-shaped OAuth 2.0 provider's authorize page,
// in fresh browsers: a verified primary address links to the existing verified account, an
// unverified one ends with ACCOUNT_EXISTS.
import t from 'tap'
import { existsSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildGatehouse, GITHUB_PROVIDER_ID, OIDC_PROVIDER_ID, startGithubProvider, startOidcProvider } from './helpers.ts'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP localhost 127.0.0.1']
const WAIT = { timeout: 30_000 }

/**
 * The auth server's public address: a plain HTTP hop in front of the app (which listens on any
 * port), so AUTH_ISSUER is known before the app is built. `hold` runs before a request is passed
 * on, which lets the test keep the real browser's callback waiting while another browser tries it.
 */
async function frontDoor (t: { teardown: (fn: () => unknown) => void }): Promise<{ origin: string, target: (port: number) => void, hold: (fn: ((url: URL) => Promise<void>) | null) => void }> {
  let targetPort = 0
  let holder: ((url: URL) => Promise<void>) | null = null
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://front.invalid')
    const pass = (): void => {
      const upstream = request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders)
        answer.pipe(res)
      })
      upstream.on('error', () => { res.writeHead(502).end() })
      req.pipe(upstream)
    }
    const held = holder
    if (held === null) { pass(); return }
    held(url).then(pass, () => { res.writeHead(500).end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return {
    origin: `http://localhost:${(server.address() as AddressInfo).port}`,
    target: (port) => { targetPort = port },
    hold: (fn) => { holder = fn }
  }
}

// The app's home page: one "Sign in with <name>" link per provider GET /auth/providers lists.
const HOME = (api: string, redirectUri: string) => `<!doctype html>
<meta charset="utf-8">
<title>Example app</title>
<body><h1>Example app</h1><ul id="providers"></ul></body>
<script type="module">
  const api = ${JSON.stringify(api)}
  const redirectUri = ${JSON.stringify(redirectUri)}
  const list = await (await fetch(api + '/auth/providers')).json()
  for (const provider of list) {
    const link = document.createElement('a')
    link.id = 'sign-in-' + provider.id
    link.textContent = 'Sign in with ' + provider.name
    link.href = api + '/auth/providers/' + encodeURIComponent(provider.id) + '/authorize?redirect_uri=' + encodeURIComponent(redirectUri)
    // docs/providers.md: the redirect page exchanges only a code of a sign-in this tab started.
    link.addEventListener('click', () => sessionStorage.setItem('gatehouse-sign-in', provider.id))
    const item = document.createElement('li')
    item.append(link)
    document.getElementById('providers').append(item)
  }
  document.body.dataset.ready = 'yes'
</script>`

// The app's redirect page: takes ?code= (or ?error=) off the URL, exchanges the code for a
// cookie session and shows who is signed in. The access token stays in memory.
const CALLBACK = (api: string) => `<!doctype html>
<meta charset="utf-8">
<title>Signing in</title>
<body><p id="status">Signing in…</p></body>
<script type="module">
  const api = ${JSON.stringify(api)}
  const params = new URLSearchParams(location.search)
  history.replaceState(null, '', location.pathname)
  const status = document.getElementById('status')
  let accessToken = null
  window.refresh = async () => {
    const res = await fetch(api + '/auth/refresh', { method: 'POST', credentials: 'include' })
    const body = await res.json()
    if (res.ok) accessToken = body.access_token
    return { status: res.status, refresh_token_in_body: 'refresh_token' in body }
  }
  window.accessToken = () => accessToken
  window.me = async () => (await fetch(api + '/auth/me', { headers: { authorization: 'Bearer ' + accessToken } })).json()
  const started = sessionStorage.getItem('gatehouse-sign-in')
  sessionStorage.removeItem('gatehouse-sign-in')
  try {
    if (params.has('error')) throw new Error(params.get('error'))
    if (started === null) throw new Error('not_started')
    const res = await fetch(api + '/auth/providers/exchange', {
      method: 'POST',
      credentials: 'include',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: params.get('code'), session: 'cookie' })
    })
    const login = await res.json()
    if (!res.ok) throw new Error(login.code)
    accessToken = login.access_token
    window.login = { status: res.status, token_type: login.token_type, refresh_token_in_body: 'refresh_token' in login, user: login.user }
    const me = await window.me()
    status.textContent = 'Signed in as ' + me.email
    document.body.dataset.state = 'signed-in'
  } catch (err) {
    status.textContent = 'Sign-in failed: ' + err.message
    document.body.dataset.state = 'failed'
  }
</script>`

function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>
}

t.test('a web app signs in with an OpenID provider and a GitHub-shaped one in headless Chromium; the callback works only in the browser that started it', {
  skip: CHROMIUM === undefined ? 'no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does this)' : false,
  timeout: 240_000
}, async (t) => {
  // The app: its own origin on localhost (same site as the auth server, another origin: CORS).
  const appHits: string[] = []
  let api = ''
  let appOrigin = ''
  const appServer: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app.invalid')
    appHits.push(url.pathname + url.search)
    const body = url.pathname === '/' ? HOME(api, `${appOrigin}/auth/callback`) : url.pathname === '/auth/callback' ? CALLBACK(api) : null
    if (body === null) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body)
  })
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { appServer.closeAllConnections(); appServer.close(() => resolve()) }))
  appOrigin = `http://localhost:${(appServer.address() as AddressInfo).port}`
  const redirectUri = `${appOrigin}/auth/callback`

  // The provider: oidc-provider on loopback, with its development login page.
  const op = await startOidcProvider(t)
  const email = `ada-${Date.now()}@example.test`
  op.users.set('ada', { email, email_verified: true, name: 'Ada Lovelace' })

  // Gatehouse, listening at its AUTH_ISSUER (the callback URL registered at the provider is derived from it).
  const front = await frontDoor(t)
  api = front.origin
  // And a GitHub-shaped OAuth 2.0 provider with its own authorize page.
  const github = await startGithubProvider(t)
  const gatehouse = await buildGatehouse(t, { oidc: op, github, redirectUris: [redirectUri], env: { AUTH_ISSUER: api, CORS_ORIGINS: appOrigin } })
  front.target(Number(new URL(await gatehouse.app.listen({ port: 0, host: '127.0.0.1' })).port))
  const callbackUrl = gatehouse.callbackUrl(OIDC_PROVIDER_ID)
  t.equal(callbackUrl, `${api}/auth/providers/${OIDC_PROVIDER_ID}/callback`)
  const prisma = gatehouse.app.store.prisma

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS })
  t.teardown(() => browser.close())
  const loopbackOnly = async (context: import('playwright-core').BrowserContext) => {
    // The provider's page imports a web font: nothing may leave the machine.
    await context.route((url) => !['localhost', '127.0.0.1'].includes(url.hostname), (route) => route.abort())
  }
  const context = await browser.newContext()
  await loopbackOnly(context)
  const other = await browser.newContext()
  await loopbackOnly(other)
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))

  // The browser that did not start the flow opens the callback URL: an error page of the auth
  // server, no redirect to the app, no cookie.
  const replay = async (url: string, label: string): Promise<void> => {
    const stranger = await other.newPage()
    const response = await stranger.goto(url)
    t.equal(response?.status(), 400, `${label}: the callback answers 400`)
    t.equal((await response?.json() as { code?: string })?.code, 'INVALID_PROVIDER_STATE', `${label}: INVALID_PROVIDER_STATE`)
    t.equal(new URL(stranger.url()).origin, api, `${label}: the other browser stays on the auth server (no redirect to the app)`)
    await stranger.close()
  }

  await page.goto(`${appOrigin}/`)
  await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', ...WAIT })
  const button = page.locator(`#sign-in-${OIDC_PROVIDER_ID}`)
  t.equal(await button.textContent(), 'Sign in with Acme ID', 'the app lists the provider from GET /auth/providers')

  // The first hop, to the provider: PKCE S256, state and nonce, the registered callback.
  const toProvider = page.waitForRequest((request) => request.url().startsWith(`${op.issuer}/auth?`), WAIT)
  // The provider's answer, held while another browser tries it first.
  let callback: string | null = null
  front.hold(async (url) => {
    if (url.pathname !== new URL(callbackUrl).pathname) return
    front.hold(null)
    callback = `${api}${url.pathname}${url.search}`
    await replay(callback, 'replayed before the real browser')
  })

  await button.click()
  const authorize = new URL((await toProvider).url())
  const q = authorize.searchParams
  t.equal(q.get('response_type'), 'code')
  t.equal(q.get('client_id'), op.clientId)
  t.equal(q.get('redirect_uri'), callbackUrl, 'the provider sends the browser back to the auth server, never straight to the app')
  t.equal(q.get('code_challenge_method'), 'S256', 'PKCE S256')
  t.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
  t.match(q.get('state'), /^[A-Za-z0-9_-]{43,}$/, 'a random state')
  t.match(q.get('nonce'), /^[A-Za-z0-9_-]{43,}$/, 'a nonce (OpenID Connect)')
  t.match(q.get('scope') ?? '', /\bopenid\b/)
  t.equal(q.get('code_verifier'), null, 'the PKCE verifier never leaves the server')
  const flowCookie = (await context.cookies(`${api}/auth/providers/${OIDC_PROVIDER_ID}/callback`)).find((c) => c.name === 'gatehouse_provider_flow')
  t.ok(flowCookie?.httpOnly === true && flowCookie.sameSite === 'Lax' && flowCookie.path === '/auth/providers', 'the flow is bound to this browser by an HttpOnly SameSite=Lax cookie on /auth/providers')
  t.same(await other.cookies(), [], 'the other browser has no cookie at all')

  // The provider's real login page.
  await page.waitForSelector('input[name="login"]', WAIT)
  t.equal(new URL(page.url()).origin, op.issuer, 'the login page is the provider\'s')
  await page.fill('input[name="login"]', 'ada')
  await page.fill('input[name="password"]', 'any password')
  await page.click('button[type="submit"]')
  // A consent page, when the provider asks for one.
  await page.waitForURL((url) => url.origin === appOrigin || (url.origin === op.issuer && url.pathname.startsWith('/interaction/') && url.pathname.split('/').length === 3), WAIT)
  if (new URL(page.url()).origin === op.issuer) {
    await page.waitForSelector('input[name="prompt"][value="consent"]', { state: 'attached', ...WAIT })
    await page.click('button[type="submit"]')
  }

  // Back at the app, signed in.
  await page.waitForSelector('body[data-state]', { state: 'attached', ...WAIT })
  t.equal(await page.getAttribute('body', 'data-state'), 'signed-in', `the app signed in: ${await page.textContent('#status')}`)
  t.equal(await page.textContent('#status'), `Signed in as ${email}`)
  t.ok(callback !== null, 'the provider answered at the callback')
  const answer = new URL(callback ?? 'http://x.invalid')
  t.ok(answer.searchParams.has('code') && answer.searchParams.get('state') === q.get('state'), 'the provider\'s answer carries its code and our state')
  t.equal(answer.searchParams.get('iss'), op.issuer, 'and its issuer (RFC 9207)')

  const arrivals = appHits.filter((hit) => hit.startsWith('/auth/callback'))
  t.equal(arrivals.length, 1, 'the app was reached once, by the browser that started the flow')
  const arrived = new URL(arrivals[0] ?? '/', appOrigin).searchParams
  t.same([...arrived.keys()], ['code'], 'the app gets a login code and nothing else: no token, no provider code, no state')
  t.not(arrived.get('code'), answer.searchParams.get('code'), 'the login code is Gatehouse\'s own, not the provider\'s authorization code')
  t.equal(new URL(page.url()).search, '', 'the page took the code off its URL')

  const login = await page.evaluate(() => (window as any).login) as { status: number, token_type: string, refresh_token_in_body: boolean, user: { email: string } }
  t.equal(login.status, 200)
  t.equal(login.token_type, 'Bearer')
  t.equal(login.user.email, email)
  t.equal(login.refresh_token_in_body, false, 'session: cookie: no refresh token in the body')
  const me = await page.evaluate(() => (window as any).me()) as { email: string, email_verified: boolean, providers: Array<{ id: string, name: string, email: string | null }> }
  t.equal(me.email, email)
  t.equal(me.email_verified, true, 'the provider asserted the address as verified')
  t.same(me.providers.map((p) => ({ id: p.id, name: p.name, email: p.email })), [{ id: OIDC_PROVIDER_ID, name: 'Acme ID', email }], 'GET /auth/me lists the provider identity')
  const refresh = (await context.cookies(`${api}/auth/refresh`)).find((c) => c.name === 'gatehouse_refresh')
  t.ok(refresh?.httpOnly === true && refresh.secure && refresh.sameSite === 'Strict' && refresh.path === '/auth', 'the refresh token is an HttpOnly, Secure, SameSite=Strict cookie on /auth')
  t.equal((await context.cookies(callbackUrl)).find((c) => c.name === 'gatehouse_provider_flow'), undefined, 'the flow cookie is gone')
  t.same(await page.evaluate(() => (window as any).refresh()), { status: 200, refresh_token_in_body: false }, 'the cookie session refreshes')
  t.equal((await page.evaluate(() => (window as any).me()) as { email: string }).email, email, 'with the new access token')

  // The same callback URL again: in the other browser, and in this one (the flow is used up).
  const used = callback ?? ''
  await replay(used, 'replayed after the sign-in')
  const again = await context.newPage()
  const second = await again.goto(used)
  t.equal(second?.status(), 400, 'the same browser cannot use the callback twice')
  t.equal((await second?.json() as { code?: string })?.code, 'INVALID_PROVIDER_STATE')
  await again.close()
  t.equal(appHits.filter((hit) => hit.startsWith('/auth/callback')).length, 1, 'no replay reached the app')
  // The app's own check: its redirect page, given a code by a link, exchanges only after a sign-in this tab started.
  const lured = await other.newPage()
  await lured.goto(`${redirectUri}?code=${encodeURIComponent(arrived.get('code') ?? '')}`)
  await lured.waitForSelector('body[data-state]', { state: 'attached', ...WAIT })
  t.equal(await lured.textContent('#status'), 'Sign-in failed: not_started', 'the app page refuses a code it did not ask for')
  await lured.close()
  t.same((await other.cookies()).filter((c) => c.domain === 'localhost').map((c) => c.name), [], 'the other browser holds no cookie of the auth server: no session')

  // In the database: one user, one identity, one login code (used), one session.
  const user = await prisma.user.findUniqueOrThrow({ where: { email } })
  t.equal(await prisma.providerIdentity.count({ where: { userId: user.id } }), 1)
  t.equal(await prisma.providerLoginCode.count(), 1, 'one login code was ever issued')
  t.equal(await prisma.providerLoginCode.count({ where: { usedAt: null } }), 0, 'and it is used')
  const exchanged = await gatehouse.app.inject({ method: 'POST', url: '/auth/providers/exchange', payload: { code: arrived.get('code') } })
  t.equal(exchanged.statusCode, 401, 'the login code works once')
  t.equal(exchanged.json().code, 'INVALID_LOGIN_CODE')
  const tokens = await prisma.refreshToken.findMany({ where: { userId: user.id } })
  t.equal(new Set(tokens.map((r) => r.familyId)).size, 1, 'one session was started')
  const access = claimsOf(await page.evaluate(() => (window as any).accessToken()) as string)
  t.equal(access.sub, user.id, 'the access token is for that user')
  t.same(access.amr, ['fed'], 'and says it came from a federated sign-in')

  // Plain OAuth 2.0 (GitHub-shaped) in a fresh browser: its verified primary address is Ada's, and
  // her account's address is verified, so the identity is linked to her account automatically.
  github.users.set('ada-gh', { id: 4242, login: 'ada-gh', name: 'Ada', emails: [{ email, primary: true, verified: true }] })
  // Someone else at that provider with the same address, unverified there: never linked.
  github.users.set('mallory', { id: 6666, login: 'mallory', name: null, emails: [{ email, primary: true, verified: false }] })
  const viaGithub = async (login: string): Promise<{ status: string, me: { email: string, providers: Array<{ id: string }> } | null }> => {
    const fresh = await browser.newContext()
    await loopbackOnly(fresh)
    const tab = await fresh.newPage()
    tab.on('pageerror', (err) => errors.push(err.message))
    await tab.goto(`${appOrigin}/`)
    await tab.waitForSelector('body[data-ready="yes"]', { state: 'attached', ...WAIT })
    t.equal(await tab.locator(`#sign-in-${GITHUB_PROVIDER_ID}`).textContent(), 'Sign in with GitHub')
    await tab.click(`#sign-in-${GITHUB_PROVIDER_ID}`)
    await tab.waitForSelector('#login', WAIT)
    t.equal(new URL(tab.url()).origin, github.url, `${login}: the authorize page is the provider's`)
    t.equal(new URL(tab.url()).searchParams.get('code_challenge_method'), 'S256', `${login}: PKCE S256 with plain OAuth 2.0 too`)
    await tab.fill('#login', login)
    await tab.click('#allow')
    await tab.waitForSelector('body[data-state]', { state: 'attached', ...WAIT })
    const status = await tab.textContent('#status') ?? ''
    const me = await tab.getAttribute('body', 'data-state') === 'signed-in' ? await tab.evaluate(() => (window as any).me()) : null
    await fresh.close()
    return { status, me }
  }
  const linked = await viaGithub('ada-gh')
  t.equal(linked.status, `Signed in as ${email}`, 'signed in with GitHub')
  t.same(linked.me?.providers.map((p) => p.id), [OIDC_PROVIDER_ID, GITHUB_PROVIDER_ID], 'into the same account, which now lists both providers')
  const refused = await viaGithub('mallory')
  t.equal(refused.status, 'Sign-in failed: ACCOUNT_EXISTS', 'an unverified provider address is not linked to the account: ACCOUNT_EXISTS')
  t.equal(await prisma.providerIdentity.count({ where: { userId: user.id } }), 2, 'the account still has its two identities')
  t.equal(await prisma.user.count({ where: { email } }), 1, 'and no second account was made')

  t.same(errors, [], 'no script errors on the pages')
})
