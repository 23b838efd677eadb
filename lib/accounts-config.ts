// The account-mail and browser settings of the standalone server (CONTRACT §9, §10): SMTP_URL,
// MAIL_FROM, APP_URL, APP_NAME, MAIL_OUTBOX_DIR, EMAIL_VERIFICATION_TTL, PASSWORD_RESET_TTL,
// REQUIRE_VERIFIED_EMAIL and CORS_ORIGINS. loadConfig() merges them into GatehouseConfig.

export interface AccountsConfig {
  /** smtp:// or smtps:// URL of the mail server; unset = mails are written to mailOutboxDir. */
  smtpUrl?: string
  mailFrom: string
  /** Where the links in mails point (`<appUrl>/verify-email?token=...`). */
  appUrl: string
  /** The product name mails speak of. */
  appName: string
  mailOutboxDir: string
  /** Seconds a verification (or email-change) link stays valid. */
  emailVerificationTtl: number
  /** Seconds a password-reset link stays valid. */
  passwordResetTtl: number
  requireVerifiedEmail: boolean
  /** Exact origins allowed to call the API from a browser with credentials. */
  corsOrigins: string[]
}

type Fail = (variable: string, message: string) => Error
type IntegerReader = (name: string, fallback: number, min: number, max: number) => number

function absoluteHttpUrl (raw: string, variable: string, fail: Fail): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw fail(variable, `must be an absolute URL, got ${JSON.stringify(raw)}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fail(variable, 'must be an http:// or https:// URL')
  return raw.replace(/\/+$/, '')
}

/** One exact origin: scheme, host and optional port, nothing else (no path, no wildcard). */
export function parseOrigin (raw: string): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return null
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null
  // A host name or an IP literal: no wildcard, no other character a URL parser lets through.
  if (!/^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/i.test(url.hostname)) return null
  return url.origin === raw ? raw : null
}

export function loadAccountsConfig (env: NodeJS.ProcessEnv, issuer: string, integer: IntegerReader, fail: Fail): AccountsConfig {
  const smtpUrl = env.SMTP_URL?.trim() || undefined
  if (smtpUrl !== undefined) {
    let url: URL | undefined
    try { url = new URL(smtpUrl) } catch {}
    if (url === undefined || (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || url.hostname === '') {
      throw fail('SMTP_URL', 'must be an smtp:// or smtps:// URL with a host (smtp://user:pass@host:port)')
    }
  }
  const mailFrom = env.MAIL_FROM?.trim() || 'Gatehouse <no-reply@localhost>'
  if (!/@/.test(mailFrom) || /[\r\n]/.test(mailFrom)) throw fail('MAIL_FROM', 'must be an address such as "Gatehouse <no-reply@example.com>"')
  const appUrl = absoluteHttpUrl(env.APP_URL?.trim() || issuer, 'APP_URL', fail)
  const appName = env.APP_NAME?.trim() || 'Gatehouse'
  if (appName.length > 100 || /[\r\n<>]/.test(appName)) throw fail('APP_NAME', 'must be at most 100 characters, without line breaks or angle brackets')
  const mailOutboxDir = env.MAIL_OUTBOX_DIR?.trim() || './data/outbox'

  const emailVerificationTtl = integer('EMAIL_VERIFICATION_TTL', 86_400, 60, 30 * 86_400)
  const passwordResetTtl = integer('PASSWORD_RESET_TTL', 1800, 60, 86_400)

  const rawRequire = env.REQUIRE_VERIFIED_EMAIL?.trim().toLowerCase() || 'false'
  if (rawRequire !== 'true' && rawRequire !== 'false') throw fail('REQUIRE_VERIFIED_EMAIL', 'must be true or false')

  const corsOrigins: string[] = []
  for (const entry of (env.CORS_ORIGINS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const origin = parseOrigin(entry)
    if (origin === null) {
      throw fail('CORS_ORIGINS', `${JSON.stringify(entry)} is not an exact origin (scheme://host[:port], no path, no wildcard)`)
    }
    if (!corsOrigins.includes(origin)) corsOrigins.push(origin)
  }

  return {
    smtpUrl,
    mailFrom,
    appUrl,
    appName,
    mailOutboxDir,
    emailVerificationTtl,
    passwordResetTtl,
    requireVerifiedEmail: rawRequire === 'true',
    corsOrigins
  }
}
