// createClient's options, resolved once: defaults from named constants, validation with a coded
// GatehouseConfigError, a new frozen object. The caller's object is never mutated.
import { configError, type GatehouseHttpError } from './errors.ts'
import type { ClientEvents } from './events.ts'
import type { ClientLogger } from './redact.ts'
import { memoryStorage, type TokenStorage } from './storage.ts'

export const DEFAULT_REFRESH_SKEW_SECONDS = 30
export const DEFAULT_REFRESH_JITTER_SECONDS = 5

export interface Credentials {
  email: string
  password: string
}

/** What the `mfa` callback is told when a login needs a second factor. */
export interface MfaPrompt {
  /** The second factors the account has: 'totp', 'recovery_code', 'webauthn'. */
  methods: string[]
  /** 1 for the first answer; higher after a wrong answer. */
  attempt: number
  /** Why the previous answer was refused (INVALID_MFA_CODE). */
  previousError?: GatehouseHttpError
}

/** A TOTP code or one recovery code; null (or undefined) gives up the login. */
export type MfaAnswer = { code: string } | { recoveryCode: string }

export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface ClientOptions {
  /**
   * The Gatehouse server, e.g. `https://auth.example.com` (a path prefix is kept:
   * `https://example.com/gatehouse`). Must be `https:`, or `http:` to a loopback host
   * (`localhost`, `127.0.0.0/8`, `[::1]`).
   */
  baseUrl: string | URL
  /** @default globalThis.fetch */
  fetch?: FetchFunction
  /** Where tokens are kept. @default memoryStorage() (tokens live only in this client) */
  storage?: TokenStorage
  /**
   * Called (at most once per failed refresh) to log in again when the refresh token is rejected,
   * and on the first authenticated call when there is no session yet.
   */
  credentials?: () => Credentials | Promise<Credentials>
  /**
   * Asked for a second factor when a login answers MFA_REQUIRED (the account has TOTP or passkeys):
   * return a code (or a recovery code) and the client completes the login at /auth/mfa/verify.
   * Asked again after a wrong answer, up to the server's limit of 5. Without it such a login
   * throws GatehouseHttpError with code MFA_REQUIRED.
   */
  mfa?: (prompt: MfaPrompt) => MfaAnswer | null | undefined | Promise<MfaAnswer | null | undefined>
  /** Refresh this long before the access token expires. @default 30 */
  refreshSkewSeconds?: number
  /** A random extra lead of up to this many seconds, so many clients do not refresh in step. @default 5 */
  refreshJitterSeconds?: number
  /**
   * Refresh ahead of expiry (a timer plus a check before each request). When false, the client
   * refreshes only after the server answers 401 TOKEN_EXPIRED or TOKEN_REVOKED. @default true
   */
  proactiveRefresh?: boolean
  /** Receives redacted information only. @default undefined (silent) */
  logger?: ClientLogger
  /** Shorthand for `client.on('sessionExpired', fn)`. */
  onSessionExpired?: (event: ClientEvents['sessionExpired']) => void
  /** API-key mode: every request carries `Authorization: ApiKey <key>`; no login, no refresh. */
  apiKey?: string
  /**
   * Browser mode (`'cookie'`): the server keeps the refresh token in an HttpOnly cookie, so it is
   * never in JavaScript memory or storage; the client holds the access token in memory only and,
   * after a page reload, gets a new one by refreshing with the cookie. The server must list the
   * page's origin in CORS_ORIGINS (or be the same origin). Not combinable with `storage` or
   * `apiKey`. @default 'body'
   */
  session?: 'body' | 'cookie'
  /**
   * Other origins (e.g. a resource server, `https://api.example.com`) the Authorization header may
   * be sent to; the base URL's origin is always allowed. @default []
   */
  allowedOrigins?: Array<string | URL>
  /** The clock, in epoch milliseconds (tests). @default Date.now */
  now?: () => number
  /** Random numbers in [0, 1) for the jitter (tests). @default Math.random */
  random?: () => number
}

export interface ResolvedOptions {
  /** Origin plus path prefix, without a trailing slash. */
  readonly base: string
  readonly origins: ReadonlySet<string>
  readonly fetch: FetchFunction
  readonly storage: TokenStorage
  /** True when the tokens live only in this client (nothing else can rotate them). */
  readonly storageIsDefault: boolean
  readonly credentials: (() => Credentials | Promise<Credentials>) | undefined
  readonly mfa: ClientOptions['mfa']
  readonly skewMs: number
  readonly jitterMs: number
  readonly proactiveRefresh: boolean
  readonly logger: ClientLogger | undefined
  readonly onSessionExpired: ClientOptions['onSessionExpired']
  readonly apiKey: string | undefined
  /** Browser mode: the refresh token is the server's HttpOnly cookie. */
  readonly cookieSession: boolean
  readonly now: () => number
  readonly random: () => number
}

/**
 * localhost, 127.0.0.0/8 and ::1: traffic that never leaves the machine. The same rule as
 * lib/loopback.ts, kept here because client/ compiles alone for the browser.
 */
export function isLoopbackHost (hostname: string): boolean {
  const host = hostname.toLowerCase()
  if (host === 'localhost' || host === '[::1]' || host === '::1') return true
  const parts = host.split('.')
  return parts.length === 4 && parts[0] === '127' && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)
}

/** Parses and checks a URL that tokens will be sent to: https, or http to a loopback host. */
export function secureUrl (value: string | URL, option: string): URL {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw configError('INVALID_OPTION', `${option} is not an absolute URL`)
  }
  if (url.username !== '' || url.password !== '') throw configError('INVALID_OPTION', `${option} must not contain credentials`)
  if (url.protocol === 'https:') return url
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return url
  throw configError('INSECURE_BASE_URL', `${option} must use https: (http: is accepted only for localhost, 127.0.0.0/8 and [::1]); got ${url.protocol}//${url.host}`)
}

function seconds (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw configError('INVALID_OPTION', `${name} must be a number of seconds >= 0`)
  return value
}

function optionalFunction<T> (value: T | undefined, name: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw configError('INVALID_OPTION', `${name} must be a function`)
  return value
}

export function resolveOptions (input: ClientOptions): ResolvedOptions {
  if (input === null || typeof input !== 'object') throw configError('INVALID_OPTION', 'createClient needs an options object with baseUrl')
  const baseUrl = secureUrl(input.baseUrl, 'baseUrl')
  if (baseUrl.search !== '' || baseUrl.hash !== '') throw configError('INVALID_OPTION', 'baseUrl must not have a query or a fragment')
  const base = baseUrl.origin + baseUrl.pathname.replace(/\/+$/, '')
  const origins = new Set([baseUrl.origin])
  for (const origin of input.allowedOrigins ?? []) origins.add(secureUrl(origin, 'allowedOrigins').origin)

  const apiKey = input.apiKey
  if (apiKey !== undefined) {
    if (typeof apiKey !== 'string' || apiKey === '' || /[\s\u0000-\u001f\u007f]/.test(apiKey)) throw configError('INVALID_OPTION', 'apiKey must be a non-empty string without spaces or control characters')
    if (input.credentials !== undefined || input.storage !== undefined) throw configError('INVALID_OPTION', 'apiKey cannot be combined with credentials or storage')
  }

  if (input.session !== undefined && input.session !== 'body' && input.session !== 'cookie') throw configError('INVALID_OPTION', "session must be 'body' or 'cookie'")
  const cookieSession = input.session === 'cookie'
  if (cookieSession && (apiKey !== undefined || input.storage !== undefined)) {
    throw configError('INVALID_OPTION', "session: 'cookie' cannot be combined with apiKey or storage (the refresh token stays in the browser's cookie)")
  }

  const globalFetch = (globalThis as { fetch?: FetchFunction }).fetch
  const fetchFn = optionalFunction(input.fetch, 'fetch') ??
    (typeof globalFetch === 'function' ? (resource: string | URL | Request, init?: RequestInit) => globalFetch(resource, init) : undefined)
  if (fetchFn === undefined) throw configError('INVALID_OPTION', 'no global fetch: pass the fetch option')

  const storage = input.storage ?? memoryStorage()
  for (const method of ['get', 'set', 'clear'] as const) {
    if (typeof storage[method] !== 'function') throw configError('INVALID_OPTION', `storage.${method} must be a function`)
  }

  return Object.freeze({
    base,
    origins,
    fetch: fetchFn,
    storage,
    storageIsDefault: input.storage === undefined,
    credentials: optionalFunction(input.credentials, 'credentials'),
    mfa: optionalFunction(input.mfa, 'mfa'),
    skewMs: seconds(input.refreshSkewSeconds, 'refreshSkewSeconds', DEFAULT_REFRESH_SKEW_SECONDS) * 1000,
    jitterMs: seconds(input.refreshJitterSeconds, 'refreshJitterSeconds', DEFAULT_REFRESH_JITTER_SECONDS) * 1000,
    proactiveRefresh: input.proactiveRefresh ?? true,
    logger: input.logger,
    onSessionExpired: optionalFunction(input.onSessionExpired, 'onSessionExpired'),
    apiKey,
    cookieSession,
    now: optionalFunction(input.now, 'now') ?? Date.now,
    random: optionalFunction(input.random, 'random') ?? Math.random
  })
}
