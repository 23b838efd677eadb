// The client in a real browser (headless Chromium through playwright-core), as docs/client.md
// shows it: the ESM build of client/ loaded by a page served from the Gatehouse server's origin,
// register, /auth/me, a refresh, a reload that restores the session from localStorage, logout.
import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { buildApp } from '../../server/app.ts'
import { captureLogs, testConfig } from '../helpers/build.ts'
import { createTestDatabase } from '../helpers/databases.ts'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))
const ROOT = resolve(import.meta.dirname, '..', '..')

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Gatehouse client</title>
<script type="module">
  import { createClient, webStorage } from './index.js'

  const client = createClient({ baseUrl: location.origin, storage: webStorage(localStorage) })
  const events = []
  for (const name of ['loggedIn', 'refreshed', 'loggedOut', 'sessionExpired']) client.on(name, () => events.push(name))

  window.gatehouse = {
    async register (email, password) { return (await client.register(email, password, 'Browser')).email },
    async me () { return (await client.me()).email },
    async refresh () { await client.refresh() },
    async logout () { await client.logout() },
    authenticated: () => client.isAuthenticated(),
    stored: () => localStorage.getItem('gatehouse.tokens') !== null,
    shown: () => [String(client), JSON.stringify(client)].join(' '),
    insecure () {
      try { createClient({ baseUrl: 'http://gatehouse.example.com' }); return 'accepted' } catch (err) { return err.code }
    },
    events
  }
  document.body.dataset.ready = 'yes'
</script>
<body></body>`

t.test('the ESM build works in headless Chromium', { skip: CHROMIUM === undefined ? 'no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does this)' : false, timeout: 120_000 }, async (t) => {
  // Build client/ alone to browser ESM (what `npm run build` puts in dist/client/).
  const out = mkdtempSync(join(tmpdir(), 'gatehouse-client-build-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  // No Node types: the client must compile against the DOM library alone.
  const tsconfig = join(out, 'tsconfig.json')
  writeFileSync(tsconfig, JSON.stringify({
    compilerOptions: {
      outDir: join(out, 'js'), rootDir: join(ROOT, 'client'), target: 'ES2022', module: 'ES2022', moduleResolution: 'bundler',
      lib: ['ES2023', 'DOM', 'DOM.Iterable', 'DOM.AsyncIterable'], types: [], strict: true, skipLibCheck: true,
      rewriteRelativeImportExtensions: true, allowImportingTsExtensions: true
    },
    files: [join(ROOT, 'client', 'index.ts')]
  }))
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { encoding: 'utf8' })
  t.equal(tsc.status, 0, `client/ compiles for the browser alone ${tsc.stdout}${tsc.stderr}`)
  const js = join(out, 'js')
  const built = readFileSync(join(js, 'client.js'), 'utf8')
  t.notMatch(built, /from ['"]node:/, 'no Node built-in is imported')

  const db = await createTestDatabase('sqlite')
  const config = testConfig({ DATABASE_URL: db.url })
  const { logger, logs } = captureLogs()
  const app = await buildApp(config, { logger })
  let refreshes = 0
  app.addHook('onRequest', async (request) => { if (request.url === '/auth/refresh') refreshes++ })
  // The page and the module come from the server's own origin (no CORS needed).
  app.get('/app/', async (_request, reply) => reply.type('text/html').send(PAGE))
  app.get('/app/:file', async (request, reply) => {
    const file = (request.params as { file: string }).file
    if (!/^[a-z-]+\.js$/.test(file) || !existsSync(join(js, file))) return reply.code(404).send()
    return reply.type('text/javascript').send(readFileSync(join(js, file), 'utf8'))
  })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await app.close()
    await db.drop()
    rmSync(config.keysDir, { recursive: true, force: true })
  })

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${address}/app/`)
  await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', timeout: 30_000 })

  const email = `browser-${Date.now()}@example.com`
  const password = 'a browser test passphrase 42'
  t.equal(await page.evaluate(([e, p]) => (window as any).gatehouse.register(e, p), [email, password]), email)
  t.equal(await page.evaluate(() => (window as any).gatehouse.me()), email, '/auth/me with the Bearer token')
  await page.evaluate(() => (window as any).gatehouse.refresh())
  t.equal(refreshes, 1, 'one refresh')
  t.equal(await page.evaluate(() => (window as any).gatehouse.me()), email, 'the refreshed token works')
  t.same(await page.evaluate(() => (window as any).gatehouse.events), ['loggedIn', 'refreshed'])
  t.equal(await page.evaluate(() => (window as any).gatehouse.insecure()), 'INSECURE_BASE_URL', 'http to a non-loopback host is refused in the browser too')
  const shown = await page.evaluate(() => (window as any).gatehouse.shown()) as string
  t.notMatch(shown, /eyJ/, 'toString/toJSON show no token')

  await page.reload()
  await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', timeout: 30_000 })
  t.equal(await page.evaluate(() => (window as any).gatehouse.authenticated()), true, 'the session is restored from localStorage')
  t.equal(await page.evaluate(() => (window as any).gatehouse.me()), email)
  await page.evaluate(() => (window as any).gatehouse.logout())
  t.equal(await page.evaluate(() => (window as any).gatehouse.stored()), false, 'logout clears localStorage')
  t.equal(await page.evaluate(() => (window as any).gatehouse.authenticated()), false)
  t.same(errors, [], 'no script errors on the page')
  t.notMatch(logs.join('\n'), password, 'the password is not in the server log')
})
