// gatehouse-mailer: `fastify.mailer.send(template, to, data)`, the one way Gatehouse sends mail.
// Sending never blocks or fails the request that asks for it: mails are rendered from small
// replaceable templates, queued, and delivered with retries (queue.ts) over SMTP (`smtpUrl`) or,
// with none configured, into an outbox folder of .eml files (transport.ts). /ready does not
// depend on the mail server. See docs/mail.md.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createMailQueue, type MailQueueOptions, type MailQueueStats } from './queue.ts'
import { outboxTransport, smtpTransport, type MailTransport } from './transport.ts'
import { resolveTemplates, type MailTemplates, type TemplateData, type TemplateName } from './templates.ts'
import { optionChecks } from '../../lib/options.ts'

const check = optionChecks('gatehouse-mailer')

export { defaultTemplates, escapeHtml, type MailContent, type MailTemplate, type MailTemplates, type TemplateData, type TemplateName } from './templates.ts'
export { outboxTransport, smtpTransport, type MailTransport, type OutgoingMail } from './transport.ts'
export { maskAddress } from './queue.ts'

export interface MailerOptions extends Partial<MailQueueOptions> {
  /** smtp:// or smtps:// URL; unset = mails are written to `outboxDir`. */
  smtpUrl?: string
  /** @default 'Gatehouse <no-reply@localhost>' */
  from?: string
  /** @default './data/outbox' */
  outboxDir?: string
  /** Where links point; the templates show it too. */
  appUrl: string
  /** @default 'Gatehouse' */
  appName?: string
  /** Replacements for any of the default templates. */
  templates?: Partial<MailTemplates>
  /** A transport of your own (overrides smtpUrl and outboxDir). */
  transport?: MailTransport
}

export interface Mailer {
  /** Renders `template` for `to` and queues it. Never throws: a problem is logged. */
  send: (template: TemplateName, to: string, data?: Omit<TemplateData, 'appName' | 'appUrl' | 'email'>) => void
  /** Where mails go (no credentials). */
  readonly description: string
  readonly appUrl: string
  /** Resolves when every queued mail was sent or given up. */
  idle: () => Promise<void>
  stats: () => MailQueueStats
}

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
  }
}

async function mailerPlugin (fastify: FastifyInstance, options: MailerOptions): Promise<void> {
  const templates = resolveTemplates(options.templates)
  const appUrl = check.string('appUrl', options.appUrl)
  const appName = check.string('appName', options.appName, 'Gatehouse')
  const from = check.string('from', options.from, 'Gatehouse <no-reply@localhost>')
  if (options.smtpUrl !== undefined) check.string('smtpUrl', options.smtpUrl)
  const transport = options.transport ??
    (options.smtpUrl !== undefined ? smtpTransport(options.smtpUrl) : outboxTransport(check.string('outboxDir', options.outboxDir, './data/outbox')))
  if (options.transport === undefined && options.smtpUrl === undefined) {
    fastify.addHook('onListen', async () => {
      fastify.log.warn(`mailer: SMTP_URL is not set, so mails are not sent: each one is written to ${transport.description.replace(/^\.eml files in /, '')} as an .eml file (set SMTP_URL for real delivery)`)
    })
  }
  const queue = createMailQueue(transport, fastify.log, {
    attempts: check.integer('attempts', options.attempts, 4, { min: 1 }),
    retryDelayMs: check.integer('retryDelayMs', options.retryDelayMs, 1000),
    concurrency: check.integer('concurrency', options.concurrency, 2, { min: 1 }),
    maxQueued: check.integer('maxQueued', options.maxQueued, 10_000, { min: 1 })
  })

  const mailer: Mailer = {
    description: transport.description,
    appUrl,
    send (template, to, data = {}) {
      let content
      try {
        content = templates[template]({ ...data, appName, appUrl, email: to })
      } catch (err) {
        fastify.log.error({ mail: { template }, err: { message: (err as Error).message } }, `mailer: the ${template} template failed; the mail is not sent`)
        return
      }
      queue.enqueue({ template, mail: { from, to, subject: content.subject, text: content.text, html: content.html } })
    },
    idle: () => queue.idle(),
    stats: () => queue.stats()
  }
  fastify.decorate('mailer', mailer)
  fastify.addHook('onClose', async () => { await queue.close() })
}

export const mailer = fp(mailerPlugin, { name: 'gatehouse-mailer', fastify: '5.x' })
export default mailer
