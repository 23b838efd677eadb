// The mailer through the running server: retries against a real SMTP server that refuses at
// first, a clear log line (without the link) when a mail cannot be delivered, requests and /ready
// unaffected by a dead mail server, the .eml outbox of the embedded default, replaceable templates.
import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { build } from '../helpers/build.ts'
import { call } from '../helpers/server-process.ts'
import { startSmtp, linkToken } from '../helpers/smtp.ts'

const PASSWORD = 'correct horse battery staple'
const limits = { rateLimit: { classes: { register: { max: 1000 }, mail: { max: 1000 }, mail_target: { max: 1000 } } } }

async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

t.test('a refused mail is retried and then delivered', async (t) => {
  const smtp = await startSmtp()
  t.teardown(() => smtp.close())
  smtp.failNext(2)
  const { app, logs } = await build(t, { env: { SMTP_URL: smtp.url }, app: { ...limits, mailer: { retryDelayMs: 20, attempts: 4 } } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal((await call(base, 'POST', '/auth/register', { body: { email: 'retry@example.com', password: PASSWORD } })).status, 201)
  const mail = await smtp.next((m) => m.to.includes('retry@example.com'))
  const token = linkToken(mail, 'verify-email')
  t.equal(logs.filter((l) => l.includes('sending failed; will retry')).length, 2, 'two retries were logged')
  await app.mailer.idle()
  t.equal(app.mailer.stats().sent, 1, 'delivered once')
  t.notOk(logs.join('\n').includes(token), 'no log line carries the link')
})

t.test('an undeliverable mail is logged once, without its link; requests and /ready do not depend on SMTP', async (t) => {
  const port = await closedPort()
  const { app, logs } = await build(t, { env: { SMTP_URL: `smtp://user:secret-password@127.0.0.1:${port}` }, app: { ...limits, mailer: { retryDelayMs: 10, attempts: 3 } } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const reg = await call(base, 'POST', '/auth/register', { body: { email: 'lost@example.com', password: PASSWORD } })
  t.equal(reg.status, 201, 'register answers although the mail server is down')
  const forgot = await call(base, 'POST', '/auth/password/forgot', { body: { email: 'lost@example.com' } })
  t.equal(forgot.status, 202)
  t.equal((await call(base, 'GET', '/ready')).status, 200, '/ready does not depend on SMTP')
  await app.accounts.idle()
  await app.mailer.idle()
  const failures = logs.filter((l) => l.includes('could not be delivered')).map((l) => JSON.parse(l))
  t.equal(failures.length, 2, 'one line per lost mail (verification and reset)')
  t.ok(failures.every((f) => f.level === 50 && f.mail.attempts === 3 && f.mail.to === 'l***@example.com'), 'at error level, with template, attempts and a masked recipient')
  t.same(failures.map((f) => f.mail.template).sort(), ['resetPassword', 'verifyEmail'])
  const rows = await app.store.prisma.emailToken.findMany()
  t.equal(rows.length, 2, 'the tokens exist (so the link would have worked)')
  const all = logs.join('\n')
  t.notMatch(all, /token=/, 'no link in any log line')
  t.notMatch(all, /secret-password/, 'nor the SMTP password')
})

t.test('without SMTP_URL each mail is an .eml file in MAIL_OUTBOX_DIR; templates are replaceable', async (t) => {
  const { app, config, logs } = await build(t, {
    app: {
      ...limits,
      mailer: {
        templates: {
          verifyEmail: (data) => ({ subject: `Welcome to ${data.appName}`, text: `Hello ${data.email}, confirm here: ${data.link}`, html: `<p>${data.link}</p>` })
        }
      }
    },
    env: { APP_NAME: 'Acme Cloud', APP_URL: 'https://acme.example' }
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.ok(logs.some((l) => l.includes('SMTP_URL is not set') && l.includes(config.mailOutboxDir)), 'start-up says where mails go')
  t.equal((await call(base, 'POST', '/auth/register', { body: { email: 'outbox@example.com', password: PASSWORD } })).status, 201)
  await app.accounts.idle()
  await app.mailer.idle()
  const files = readdirSync(config.mailOutboxDir).filter((f) => f.endsWith('.eml'))
  t.equal(files.length, 1)
  const eml = readFileSync(join(config.mailOutboxDir, files[0]), 'utf8')
  t.match(eml, /Subject: Welcome to Acme Cloud/)
  t.match(eml, /To: outbox@example\.com/)
  t.match(eml.replace(/=\r?\n/g, '').replace(/=3D/g, '='), /https:\/\/acme\.example\/verify-email\?token=[A-Za-z0-9_-]{43}/, 'the link points at APP_URL')
})
