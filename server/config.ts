// The standalone server's configuration, read from the environment of CONTRACT §2.
// A bad value stops start-up with one line that names the variable (ConfigError).
import { isIP } from 'node:net'
import { parseDatabaseUrl, DatabaseUrlError } from '../plugins/store/database-url.ts'
import { isSigningAlgorithm, SIGNING_ALGORITHMS, DEFAULT_SIGNING_ALGORITHM, type SigningAlgorithm } from '../lib/algorithms.ts'
import { isLoopbackHost } from '../lib/loopback.ts'
import { ConfigError } from '../lib/options.ts'
import { checkWebAuthn, MfaOptionsError } from '../plugins/mfa/options.ts'
import { redirectUriProblem } from '../plugins/providers/options.ts'

export { ConfigError }
export type { SigningAlgorithm }

export interface GatehouseConfig extends AccountsConfig {
  port: number
  host: string
  databaseUrl: string
  redisUrl?: string
  /** `iss` of issued tokens and of the discovery document. */
  issuer: string
  /** `aud` of issued access tokens. */
  audience: string
  keysDir: string
  signingAlgorithm: SigningAlgorithm
  /** Seconds. */
  accessTokenTtl: number
  /** Seconds of idle lifetime of a refresh token (rotation slides it). */
  refreshTokenTtl: number
  /** Seconds: absolute cap of a refresh family, however often it is rotated. */
  refreshTokenMaxTtl: number
  /**
   * Seconds during which a rotated refresh token presented again returns the same, still unused
   * successor instead of revoking the family (a client that lost the response). 0 to 5.
   */
  refreshReuseGrace: number
  /** Raw entries of TRUSTED_ISSUERS; validated by the trusted-issuers plugin. */
  trustedIssuers: unknown[]
  adminEmail?: string
  adminPassword?: string
  trustProxy?: boolean | number | string[]
  logLevel: string
  /** ADMIN_REQUIRE_MFA: /admin/* needs a token with a second factor. */
  adminRequireMfa: boolean
  /** STEP_UP_MAX_AGE: seconds a multi-factor login stays recent enough for a sensitive self-service action. */
  stepUpMaxAge: number
  /** WEBAUTHN_RP_ID; undefined when passkeys are off (AUTH_ISSUER's host is an IP address and nothing was set). */
  webauthnRpId?: string
  /** WEBAUTHN_ORIGINS. */
  webauthnOrigins: string[]
  /** Raw entries of LOGIN_PROVIDERS; validated by the providers plugin. */
  loginProviders: unknown[]
  /** LOGIN_REDIRECT_URIS: the exact app URLs a provider sign-in may return to. */
  loginRedirectUris: string[]
}

/** The account-mail and browser settings (CONTRACT §9, §10). */
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
  /** Seconds an organization invitation stays valid. */
  orgInvitationTtl: number
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

function integer (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(raw)}`)
  const value = Number(raw.trim())
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

function boolean (env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase()
  if (raw === undefined || raw === '') return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(env[name])}`)
}

function list (raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
}

/**
 * WEBAUTHN_RP_ID (default: AUTH_ISSUER's host) and WEBAUTHN_ORIGINS (default: AUTH_ISSUER's origin
 * plus those of CORS_ORIGINS that belong to the RP id). Explicit values that break the WebAuthn
 * rules stop start-up; defaults that cannot work (an IP address) turn passkeys off.
 */
function webauthnSettings (env: NodeJS.ProcessEnv, issuerUrl: URL): { rpId?: string, origins: string[] } {
  const explicitRpId = env.WEBAUTHN_RP_ID?.trim() || undefined
  const explicitOrigins = list(env.WEBAUTHN_ORIGINS)
  const rpId = explicitRpId ?? issuerUrl.hostname
  const belongs = (origin: string): boolean => {
    try {
      const host = new URL(origin).hostname
      return host === rpId || host.endsWith(`.${rpId}`)
    } catch {
      return false
    }
  }
  const origins = explicitOrigins ?? [issuerUrl.origin, ...(list(env.CORS_ORIGINS) ?? []).filter(belongs)]
  try {
    checkWebAuthn(rpId, [...new Set(origins)])
  } catch (err) {
    if (!(err instanceof MfaOptionsError)) throw err
    if (explicitRpId === undefined && explicitOrigins === undefined) return { origins: [] }
    if (err.option === 'webauthn.rpId') throw new ConfigError('WEBAUTHN_RP_ID', err.message)
    throw new ConfigError('WEBAUTHN_ORIGINS', explicitOrigins === undefined ? `${err.message} (set WEBAUTHN_ORIGINS to the origins of the pages that use passkeys)` : err.message)
  }
  return { rpId, origins: [...new Set(origins)] }
}

function parseTrustProxy (raw: string | undefined): GatehouseConfig['trustProxy'] {
  if (raw === undefined || raw.trim() === '') return undefined
  const value = raw.trim()
  if (value === 'true') return true
  if (value === 'false') return false
  if (/^\d+$/.test(value)) return Number(value)
  const entries = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split('/')
    const family = isIP(address)
    const maxPrefix = family === 6 ? 128 : 32
    if (family === 0 || rest.length > 0 || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= maxPrefix))) {
      throw new ConfigError('TRUST_PROXY', `must be true, a hop count, or a comma-separated list of addresses/CIDRs; ${JSON.stringify(entry)} is none of these`)
    }
  }
  return entries
}

function absoluteHttpUrl (raw: string, variable: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new ConfigError(variable, `must be an absolute URL, got ${JSON.stringify(raw)}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(variable, 'must be an http:// or https:// URL')
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

/** SMTP_URL, MAIL_FROM, APP_URL, APP_NAME, MAIL_OUTBOX_DIR, EMAIL_VERIFICATION_TTL, PASSWORD_RESET_TTL,
 * ORG_INVITATION_TTL, REQUIRE_VERIFIED_EMAIL and CORS_ORIGINS. */
function loadAccountsConfig (env: NodeJS.ProcessEnv, issuer: string): AccountsConfig {
  const smtpUrl = env.SMTP_URL?.trim() || undefined
  if (smtpUrl !== undefined) {
    let url: URL | undefined
    try { url = new URL(smtpUrl) } catch {}
    if (url === undefined || (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || url.hostname === '') {
      throw new ConfigError('SMTP_URL', 'must be an smtp:// or smtps:// URL with a host (smtp://user:pass@host:port)')
    }
  }
  const mailFrom = env.MAIL_FROM?.trim() || 'Gatehouse <no-reply@localhost>'
  if (!/@/.test(mailFrom) || /[\r\n]/.test(mailFrom)) throw new ConfigError('MAIL_FROM', 'must be an address such as "Gatehouse <no-reply@example.com>"')
  const appUrl = absoluteHttpUrl(env.APP_URL?.trim() || issuer, 'APP_URL')
  const appName = env.APP_NAME?.trim() || 'Gatehouse'
  if (appName.length > 100 || /[\r\n<>]/.test(appName)) throw new ConfigError('APP_NAME', 'must be at most 100 characters, without line breaks or angle brackets')
  const mailOutboxDir = env.MAIL_OUTBOX_DIR?.trim() || './data/outbox'

  const emailVerificationTtl = integer(env, 'EMAIL_VERIFICATION_TTL', 86_400, 60, 30 * 86_400)
  const passwordResetTtl = integer(env, 'PASSWORD_RESET_TTL', 1800, 60, 86_400)
  const orgInvitationTtl = integer(env, 'ORG_INVITATION_TTL', 7 * 86_400, 60, 30 * 86_400)

  const rawRequire = env.REQUIRE_VERIFIED_EMAIL?.trim().toLowerCase() || 'false'
  if (rawRequire !== 'true' && rawRequire !== 'false') throw new ConfigError('REQUIRE_VERIFIED_EMAIL', 'must be true or false')

  const corsOrigins: string[] = []
  for (const entry of (env.CORS_ORIGINS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const origin = parseOrigin(entry)
    if (origin === null) {
      throw new ConfigError('CORS_ORIGINS', `${JSON.stringify(entry)} is not an exact origin (scheme://host[:port], no path, no wildcard)`)
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
    corsOrigins,
    orgInvitationTtl
  }
}

/** Reads and validates the configuration. Throws ConfigError naming the bad variable. */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  const port = integer(env, 'PORT', 3000, 0, 65535)
  const host = env.HOST?.trim() || '127.0.0.1'

  const databaseUrl = env.DATABASE_URL?.trim() || 'file:./data/gatehouse.db'
  try {
    parseDatabaseUrl(databaseUrl)
  } catch (err) {
    if (err instanceof DatabaseUrlError) throw new ConfigError('DATABASE_URL', err.message.replace(/^DATABASE_URL /, ''))
    throw err
  }

  const redisUrl = env.REDIS_URL?.trim() || undefined
  if (redisUrl !== undefined && !/^rediss?:\/\/[^/]/.test(redisUrl)) {
    throw new ConfigError('REDIS_URL', 'must be a redis:// or rediss:// URL')
  }

  const issuer = (env.AUTH_ISSUER?.trim() || `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '')
  let issuerUrl: URL
  try {
    issuerUrl = new URL(issuer)
  } catch {
    throw new ConfigError('AUTH_ISSUER', `must be an absolute URL, got ${JSON.stringify(issuer)}`)
  }
  if (issuerUrl.protocol !== 'https:' && !(issuerUrl.protocol === 'http:' && (isLoopbackHost(issuerUrl.hostname) || env.AUTH_ISSUER === undefined))) {
    throw new ConfigError('AUTH_ISSUER', 'must be an https:// URL (http:// only for a loopback host)')
  }

  const audience = env.AUTH_AUDIENCE?.trim() || 'gatehouse'
  const keysDir = env.AUTH_KEYS_DIR?.trim() || './data/keys'
  const signingAlgorithm = env.AUTH_SIGNING_ALG?.trim() || DEFAULT_SIGNING_ALGORITHM
  if (!isSigningAlgorithm(signingAlgorithm)) {
    throw new ConfigError('AUTH_SIGNING_ALG', `unknown algorithm ${JSON.stringify(signingAlgorithm)}: use one of ${SIGNING_ALGORITHMS.join(', ')}`)
  }

  const accessTokenTtl = integer(env, 'ACCESS_TOKEN_TTL', 900, 30, 86_400)
  const refreshTokenMaxTtl = integer(env, 'REFRESH_TOKEN_MAX_TTL', 30 * 86_400, 60, 365 * 86_400)
  const refreshTokenTtl = integer(env, 'REFRESH_TOKEN_TTL', 604_800, 60, 365 * 86_400)
  const refreshReuseGrace = integer(env, 'REFRESH_REUSE_GRACE', 0, 0, 5)
  if (refreshTokenTtl > refreshTokenMaxTtl) {
    throw new ConfigError('REFRESH_TOKEN_TTL', `(${refreshTokenTtl} s) must not exceed REFRESH_TOKEN_MAX_TTL (${refreshTokenMaxTtl} s)`)
  }

  let trustedIssuers: unknown[] = []
  const rawIssuers = env.TRUSTED_ISSUERS?.trim()
  if (rawIssuers !== undefined && rawIssuers !== '') {
    let parsed: unknown
    try {
      parsed = JSON.parse(rawIssuers)
    } catch (err) {
      throw new ConfigError('TRUSTED_ISSUERS', `is not valid JSON (${(err as Error).message})`)
    }
    if (!Array.isArray(parsed)) throw new ConfigError('TRUSTED_ISSUERS', 'must be a JSON array of issuer objects')
    trustedIssuers = parsed
  }

  let loginProviders: unknown[] = []
  const rawProviders = env.LOGIN_PROVIDERS?.trim()
  if (rawProviders !== undefined && rawProviders !== '') {
    let parsed: unknown
    try {
      parsed = JSON.parse(rawProviders)
    } catch (err) {
      throw new ConfigError('LOGIN_PROVIDERS', `is not valid JSON (${(err as Error).message})`)
    }
    if (!Array.isArray(parsed)) throw new ConfigError('LOGIN_PROVIDERS', 'must be a JSON array of provider objects')
    loginProviders = parsed
  }
  const loginRedirectUris: string[] = []
  for (const entry of list(env.LOGIN_REDIRECT_URIS) ?? []) {
    const problem = redirectUriProblem(entry)
    if (problem !== null) throw new ConfigError('LOGIN_REDIRECT_URIS', `${JSON.stringify(entry)} ${problem}`)
    if (!loginRedirectUris.includes(entry)) loginRedirectUris.push(entry)
  }

  const adminEmail = env.ADMIN_EMAIL?.trim() || undefined
  const adminPassword = env.ADMIN_PASSWORD || undefined
  if ((adminEmail === undefined) !== (adminPassword === undefined)) {
    throw new ConfigError(adminEmail === undefined ? 'ADMIN_EMAIL' : 'ADMIN_PASSWORD', 'ADMIN_EMAIL and ADMIN_PASSWORD must be set together')
  }

  const webauthn = webauthnSettings(env, issuerUrl)

  const logLevel = env.LOG_LEVEL?.trim() || 'info'
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${[...LOG_LEVELS].join(', ')}`)

  const accounts = loadAccountsConfig(env, issuer)

  return Object.freeze({
    ...accounts,
    port,
    host,
    databaseUrl,
    redisUrl,
    issuer,
    audience,
    keysDir,
    signingAlgorithm,
    accessTokenTtl,
    refreshTokenTtl,
    refreshTokenMaxTtl,
    refreshReuseGrace,
    trustedIssuers,
    adminEmail,
    adminPassword,
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    logLevel,
    adminRequireMfa: boolean(env, 'ADMIN_REQUIRE_MFA', false),
    stepUpMaxAge: integer(env, 'STEP_UP_MAX_AGE', 300, 30, 86_400),
    webauthnRpId: webauthn.rpId,
    webauthnOrigins: webauthn.origins,
    loginProviders,
    loginRedirectUris
  })
}
