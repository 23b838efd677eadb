// A real browser renders the Swagger UI at /docs and lists the routes (issue: docs a user can
// follow). Uses Debian's Chromium through playwright-core; .ci/run installs it when missing.
import t from 'tap'
import { existsSync } from 'node:fs'
import { build } from './helpers/build.ts'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))

t.test('Swagger UI renders in headless Chromium', { skip: CHROMIUM === undefined ? 'no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does this)' : false, timeout: 120_000 }, async (t) => {
  const { chromium } = await import('playwright-core')
  const { app } = await build(t)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  const response = await page.goto(`${address}/docs`, { waitUntil: 'networkidle' })
  t.equal(response?.status(), 200)
  await page.waitForSelector('.swagger-ui .opblock', { timeout: 30_000 })
  const title = await page.textContent('.swagger-ui .info .title')
  t.match(title ?? '', /Gatehouse/, 'the document title is shown')
  const paths = await page.$$eval('.opblock-summary-path', (nodes) => nodes.map((n) => n.getAttribute('data-path') ?? n.textContent ?? ''))
  t.ok(paths.includes('/health'), 'the health route is listed')
  const hasLogin = paths.includes('/auth/login')
  t.ok(hasLogin, 'POST /auth/login is listed')
  await page.screenshot({ path: `${process.env.TMPDIR ?? '/tmp'}/gatehouse-docs.png`, fullPage: false })
  t.same(errors, [], 'no script errors on the page')
})
