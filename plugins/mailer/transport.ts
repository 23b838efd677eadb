// Where mails go: an SMTP server (nodemailer's SMTP transport, SMTP_URL) or, with none configured,
// one .eml file per mail in an outbox folder, so a development setup shows every mail it would send.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import nodemailer from 'nodemailer'

export interface OutgoingMail {
  from: string
  to: string
  subject: string
  text: string
  html: string
}

export interface MailTransport {
  /** Where mails go, for the start-up log line (no credentials). */
  readonly description: string
  send: (mail: OutgoingMail) => Promise<void>
  close: () => void
}

export interface SmtpTransportOptions {
  /** Milliseconds for connecting, the greeting and each socket read. @default 10000 */
  timeoutMs?: number
}

/** SMTP_URL without its password, for logs. */
export function describeSmtpUrl (url: string): string {
  const parsed = new URL(url)
  if (parsed.password !== '') parsed.password = '***'
  return parsed.toString()
}

export function smtpTransport (url: string, options: SmtpTransportOptions = {}): MailTransport {
  const timeout = options.timeoutMs ?? 10_000
  const transporter = nodemailer.createTransport(url, {
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout
  } as never)
  return {
    description: describeSmtpUrl(url),
    async send (mail) {
      await transporter.sendMail(mail)
    },
    close () {
      transporter.close()
    }
  }
}

/** Writes each mail as `<time>-<random>.eml` (readable by the owner only: it carries live links). */
export function outboxTransport (dir: string): MailTransport {
  const folder = resolve(dir)
  const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
  return {
    description: `.eml files in ${folder}`,
    async send (mail) {
      const info = await composer.sendMail(mail) as unknown as { message: Buffer }
      mkdirSync(folder, { recursive: true, mode: 0o700 })
      const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`
      writeFileSync(join(folder, name), info.message, { mode: 0o600 })
    },
    close () {
      composer.close()
    }
  }
}
