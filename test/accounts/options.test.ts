// The options of gatehouse-accounts, -mailer and -browser are checked at registration and a bad
// one is a coded OptionsError naming the plugin and the option (docs/errors.md).
import t from 'tap'
import Fastify from 'fastify'
import { resolveAccountsOptions } from '../../plugins/accounts/index.ts'
import { mailer, type MailerOptions } from '../../plugins/mailer/index.ts'
import { browser, type BrowserOptions } from '../../plugins/browser/index.ts'

const nowhere = { description: 'nowhere', send: async () => {}, close: () => {} }

t.test('gatehouse-accounts', async (t) => {
  const bad: Array<[Record<string, unknown>, string]> = [
    [{}, 'appUrl'],
    [{ appUrl: 'ftp://example.com' }, 'appUrl'],
    [{ appUrl: 'https://example.com', passwordResetTtl: 0 }, 'passwordResetTtl'],
    [{ appUrl: 'https://example.com', emailVerificationTtl: 1.5 }, 'emailVerificationTtl'],
    [{ appUrl: 'https://example.com', requireVerifiedEmail: 'yes' }, 'requireVerifiedEmail'],
    [{ appUrl: 'https://example.com', verifiedEmails: 'a@example.com' }, 'verifiedEmails'],
    [{ appUrl: 'https://example.com', concurrency: 0 }, 'concurrency']
  ]
  for (const [input, option] of bad) {
    t.throws(() => resolveAccountsOptions(input as never), { name: 'OptionsError', code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-accounts', option }, option)
  }
  const resolved = resolveAccountsOptions({ appUrl: 'https://example.com/' })
  t.equal(resolved.appUrl, 'https://example.com')
  t.equal(resolved.passwordResetTtl, 1800)
  t.equal(resolved.requireVerifiedEmail, false)
})

t.test('gatehouse-mailer', async (t) => {
  const bad: Array<[Partial<MailerOptions>, string]> = [
    [{ appUrl: '' }, 'appUrl'],
    [{ appUrl: 'https://example.com', attempts: 0 }, 'attempts'],
    [{ appUrl: 'https://example.com', retryDelayMs: -1 }, 'retryDelayMs'],
    [{ appUrl: 'https://example.com', from: '' }, 'from'],
    [{ appUrl: 'https://example.com', templates: { nope: () => ({ subject: '', text: '', html: '' }) } as never }, 'templates.nope']
  ]
  for (const [options, option] of bad) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(mailer, { transport: nowhere, ...options } as MailerOptions)
    await t.rejects(Promise.resolve(app.ready()), { name: 'OptionsError', code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-mailer', option }, option)
  }
})

t.test('gatehouse-browser', async (t) => {
  const bad: Array<[Partial<BrowserOptions>, string]> = [
    [{}, 'ownOrigin'],
    [{ ownOrigin: 'https://auth.example.com', corsOrigins: 'https://app.example.com' as never }, 'corsOrigins']
  ]
  for (const [options, option] of bad) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(browser, options as BrowserOptions)
    await t.rejects(Promise.resolve(app.ready()), { name: 'OptionsError', code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-browser', option }, option)
  }
})
