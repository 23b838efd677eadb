// A single-page app in headless Chromium (playwright-core) on a second origin listed in
// CORS_ORIGINS, using the client's browser mode: register, log in with the cookie session, call a
// protected route, reload and stay signed in through a refresh, log out. Pages on unlisted origins
// (same-site on another port, and cross-site) cannot refresh or log out the session.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../server/app.ts'
import { captureLogs, testConfig } from '../helpers/build.ts'
import { createTestDatabase } from '../helpers/databases.ts'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))
const ROOT = resolve(import.meta.dirname, '..', '..')

const SPA = (api: string) => `<!doctype html>
<meta charset="utf-8">
<title>App</title>
<script type="module">
  import { createClient } from './js/index.js'
  const client = createClient({ baseUrl: ${JSON.stringify(api)}, session: 'cookie' })
  window.app = {
    register: async (email, password) => (await client.register(email, password)).email,
    login: async (email, password) => (await client.login(email, password)).email,
    me: async () => (await client.me()).email,
    sessions: async () => (await client.json('/auth/sessions')).length,
    authenticated: () => client.isAuthenticated(),
    refresh: () => client.refresh(),
    logout: () => client.logout(),
    // What script on the page can see of the refresh token: nothing.
    exposed: () => JSON.stringify({ cookie: document.cookie, local: { ...localStorage }, session: { ...sessionStorage }, client: String(client) })
  }
  document.body.dataset.ready = 'yes'
</script>
<body></body>`

const ATTACKER = (api: string) => `<!doctype html>
<meta charset="utf-8">
<title>Elsewhere</title>
<body></body>
<script>
  window.attack = async (path) => {
    // A credentialed call, and a no-cors one that cannot be read but still reaches the server.
    let read = 'unreadable'
    try { const r = await fetch(${JSON.stringify(api)} + path, { method: 'POST', credentials: 'include' }); read = String(r.status) } catch (err) { read = 'blocked' }
    await fetch(${JSON.stringify(api)} + path, { method: 'POST', credentials: 'include', mode: 'no-cors' }).catch(() => {})
    return read
  }
  document.body.dataset.ready = 'yes'
</script>`

async function serve (handler: (path: string) => { type: string, body: string } | null): Promise<{ server: Server, port: number }> {
  const server = createServer((req, res) => {
    const found = handler(new URL(req.url ?? '/', 'http://x').pathname)
    if (found === null) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'content-type': found.type }).end(found.body)
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  return { server, port: (server.address() as AddressInfo).port }
}

t.test('a browser app on a listed origin with a cookie session; other origins cannot use the cookie', {
  skip: CHROMIUM === undefined ? 'no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does this)' : false,
  timeout: 180_000
}, async (t) => {
  // The client, built for the browser as `npm run build` does.
  const out = mkdtempSync(join(tmpdir(), 'gatehouse-spa-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  writeFileSync(join(out, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      outDir: join(out, 'js'), rootDir: join(ROOT, 'client'), target: 'ES2022', module: 'ES2022', moduleResolution: 'bundler',
      lib: ['ES2023', 'DOM', 'DOM.Iterable', 'DOM.AsyncIterable'], types: [], strict: true, skipLibCheck: true,
      rewriteRelativeImportExtensions: true, allowImportingTsExtensions: true
    },
    files: [join(ROOT, 'client', 'index.ts')]
  }))
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(out, 'tsconfig.json')], { encoding: 'utf8' })
  t.equal(tsc.status, 0, `client/ compiles for the browser ${tsc.stdout}${tsc.stderr}`)

  let apiBase = ''
  const spa = await serve((path) => {
    if (path === '/') return { type: 'text/html', body: SPA(apiBase) }
    const file = /^\/js\/([a-z-]+\.js)$/.exec(path)?.[1]
    if (file === undefined || !existsSync(join(out, 'js', file))) return null
    return { type: 'text/javascript', body: readFileSync(join(out, 'js', file), 'utf8') }
  })
  const elsewhere = await serve((path) => path === '/' ? { type: 'text/html', body: ATTACKER(apiBase) } : null)
  t.teardown(() => { spa.server.close(); elsewhere.server.close() })
  const appOrigin = `http://localhost:${spa.port}`

  const db = await createTestDatabase('sqlite')
  const config = testConfig({ DATABASE_URL: db.url, CORS_ORIGINS: appOrigin })
  const app = await buildApp(config, {
    logger: captureLogs().logger,
    rateLimit: { classes: { login: { max: 1000 }, register: { max: 1000 }, refresh: { max: 1000 } } }
  })
  t.teardown(async () => {
    await app.close()
    await db.drop()
    rmSync(config.keysDir, { recursive: true, force: true })
  })
  const seen: Array<{ path: string, origin: string, status: number }> = []
  app.addHook('onResponse', async (request, reply) => {
    const path = request.url.split('?')[0]
    if (request.method === 'POST' && (path === '/auth/refresh' || path === '/auth/logout')) {
      seen.push({ path, origin: String(request.headers.origin ?? ''), status: reply.statusCode })
    }
  })
  const apiPort = (new URL(await app.listen({ port: 0, host: '127.0.0.1' }))).port
  // The API and the app are two ports of one host: same site (SameSite=Strict lets the cookie go), two origins (CORS).
  apiBase = `http://localhost:${apiPort}`

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP localhost 127.0.0.1']
  })
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  const open = async (url: string) => {
    await page.goto(url)
    await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', timeout: 30_000 })
  }
  const run = <T>(fn: string, ...args: unknown[]): Promise<T> => page.evaluate(([name, rest]) => (window as any).app[name as string](...(rest as unknown[])), [fn, args] as const) as Promise<T>

  await open(`${appOrigin}/`)
  const email = `spa-${Date.now()}@example.com`
  const password = 'a single page app passphrase'
  t.equal(await run('register', email, password), email, 'registers from the app origin')
  t.equal(await run('login', email, password), email, 'logs in with a cookie session')
  t.equal(await run('me'), email, 'calls a protected route with the access token')
  t.ok(await run<number>('sessions') >= 1, 'and another one')
  const exposed = await run<string>('exposed')
  t.notMatch(exposed, /gatehouse_refresh|[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}/, 'no refresh token in document.cookie, storage or the client')
  const cookies = await context.cookies(`${apiBase}/auth/refresh`)
  const refresh = cookies.find((c) => c.name === 'gatehouse_refresh')
  t.ok(refresh !== undefined && refresh.httpOnly && refresh.secure && refresh.sameSite === 'Strict' && refresh.path === '/auth', 'the browser holds an HttpOnly, Secure, SameSite=Strict cookie for /auth')

  const before = seen.filter((s) => s.path === '/auth/refresh' && s.status === 200).length
  await page.reload()
  await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', timeout: 30_000 })
  t.equal(await run('authenticated'), true, 'after a reload the session comes back')
  t.equal(await run('me'), email)
  t.equal(seen.filter((s) => s.path === '/auth/refresh' && s.status === 200).length, before + 1, 'through one refresh with the cookie')
  const rotated = (await context.cookies(`${apiBase}/auth/refresh`)).find((c) => c.name === 'gatehouse_refresh')
  t.not(rotated?.value, refresh?.value, 'the refresh rotated the cookie')

  // Pages elsewhere: same site on an unlisted port (the browser sends the cookie, the Origin check
  // refuses), and another site (the browser does not even send it).
  for (const origin of [`http://localhost:${elsewhere.port}`, `http://127.0.0.1:${elsewhere.port}`]) {
    await open(`${origin}/`)
    for (const path of ['/auth/refresh', '/auth/logout']) {
      const read = await page.evaluate((p) => (window as any).attack(p), path)
      t.equal(read, 'blocked', `${origin} cannot read ${path} (no CORS grant)`)
    }
    const refused = seen.filter((s) => s.origin === origin)
    t.equal(refused.length, 4, `every attempt from ${origin} reached the server`)
    t.ok(refused.every((s) => s.status === 403 || s.status === 401), `and was refused: ${refused.map((s) => s.status).join(',')}`)
    if (origin.includes('localhost')) t.ok(refused.every((s) => s.status === 403), 'same-site: ORIGIN_NOT_ALLOWED (the browser sent the cookie: without it these answer 401)')
  }
  t.equal((await context.cookies(`${apiBase}/auth/refresh`)).find((c) => c.name === 'gatehouse_refresh')?.value, rotated?.value, 'the cookie is unchanged')

  await open(`${appOrigin}/`)
  t.equal(await run('authenticated'), true, 'the session survived the attempts')
  t.equal(await run('me'), email)
  await run('logout')
  t.equal(await run('authenticated'), false, 'logged out')
  t.equal((await context.cookies(`${apiBase}/auth/refresh`)).find((c) => c.name === 'gatehouse_refresh'), undefined, 'the cookie is gone')
  await page.reload()
  await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', timeout: 30_000 })
  t.equal(await run('authenticated'), false, 'and stays gone after a reload')
  t.same(errors, [], 'no script errors')
})
