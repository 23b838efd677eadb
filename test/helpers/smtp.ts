// A real SMTP server on loopback (nodemailer's smtp-server) that keeps every mail it receives,
// parsed by mailparser, so tests read back what Gatehouse sent the way a mail client would.
import { SMTPServer } from 'smtp-server'
import { simpleParser, type ParsedMail } from 'mailparser'
import type { AddressInfo } from 'node:net'

export interface ReceivedMail {
  to: string[]
  from: string
  subject: string
  text: string
  html: string
}

export interface TestSmtp {
  url: string
  mails: ReceivedMail[]
  /** The first mail (not yet taken) matching `match`; waits for it up to `timeoutMs`. */
  next: (match: (mail: ReceivedMail) => boolean, timeoutMs?: number) => Promise<ReceivedMail>
  /** Refuses the next `count` messages with a temporary failure (451). */
  failNext: (count: number) => void
  close: () => Promise<void>
}

export async function startSmtp (): Promise<TestSmtp> {
  const mails: ReceivedMail[] = []
  const taken = new Set<ReceivedMail>()
  const waiters: Array<() => void> = []
  let failures = 0
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData (stream, session, callback) {
      if (failures > 0) {
        failures--
        stream.resume()
        stream.on('end', () => callback(Object.assign(new Error('try again later'), { responseCode: 451 })))
        return
      }
      simpleParser(stream).then((parsed: ParsedMail) => {
        const to = session.envelope.rcptTo.map((r) => r.address.toLowerCase())
        mails.push({ to, from: parsed.from?.text ?? '', subject: parsed.subject ?? '', text: parsed.text ?? '', html: typeof parsed.html === 'string' ? parsed.html : '' })
        for (const wake of waiters.splice(0)) wake()
        callback()
      }, (err: Error) => callback(err))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    async next (match, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = mails.find((m) => !taken.has(m) && match(m))
        if (found !== undefined) {
          taken.add(found)
          return found
        }
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`no matching mail within ${timeoutMs} ms (received: ${mails.map((m) => `${m.to.join(',')}: ${m.subject}`).join('; ') || 'none'})`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left)
          waiters.push(() => { clearTimeout(timer); resolve() })
        })
      }
    },
    failNext (count) {
      failures = count
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** The token of the link to `<page>?token=` in a mail's plain-text body. */
export function linkToken (mail: ReceivedMail, page: 'verify-email' | 'reset-password' | 'accept-invite'): string {
  const match = new RegExp(`/${page}\\?token=([A-Za-z0-9_%-]+)`).exec(mail.text)
  if (match === null) throw new Error(`no ${page} link in the mail "${mail.subject}"`)
  return decodeURIComponent(match[1])
}
