// Typed errors of the client. Every error carries a `kind` (what went wrong on the client's side),
// the HTTP `status` when there was a response, and a `code`: the server's code (CONTRACT §4) for
// HTTP errors, or one of the client's own codes below. Errors never hold request headers, a
// request body, a token, a refresh token, an API key or a password; their toString, toJSON and
// util.inspect show only name, kind, status, code and message.
import { INSPECT, scrub } from './redact.ts'

export type ClientErrorKind =
  /** The server answered with an error status (the server's `code` and `message`). */
  | 'http'
  /** No usable answer: connection refused, DNS, TLS, a reset, a body that is not the expected JSON. */
  | 'network'
  /** The session ended (refresh rejected) and no credentials callback could start a new one. */
  | 'session_expired'
  /** A call that needs a session was made before login. */
  | 'not_authenticated'
  /** The client's options or the request are not acceptable (e.g. http to a non-loopback host). */
  | 'config'
  /** The method is not available in this mode (login/refresh in API-key mode). */
  | 'unsupported'

/** The client's own codes (HTTP errors carry the server's code instead). */
export const CLIENT_CODES = {
  NETWORK_ERROR: 'The server could not be reached',
  INVALID_RESPONSE: 'The server answered with an unexpected body',
  NOT_AUTHENTICATED: 'Not logged in',
  INSECURE_BASE_URL: 'Tokens are only sent over HTTPS (or http to a loopback host)',
  INVALID_OPTION: 'Invalid client option',
  UNTRUSTED_ORIGIN: 'The request URL is not on the base URL\'s origin nor on allowedOrigins; the token is not sent there',
  API_KEY_MODE: 'Not available in API-key mode'
} as const

export type ClientCode = keyof typeof CLIENT_CODES

export interface ClientErrorOptions {
  kind: ClientErrorKind
  code: string
  message?: string
  status?: number
  /** Seconds, from a Retry-After header (429, 503). */
  retryAfter?: number
  cause?: unknown
}

export class GatehouseClientError extends Error {
  override name = 'GatehouseClientError'
  readonly kind: ClientErrorKind
  /** The server's code (e.g. `TOKEN_EXPIRED`) or a client code (e.g. `NETWORK_ERROR`). */
  readonly code: string
  /** HTTP status of the server's answer; 0 when there was none. */
  readonly status: number
  readonly retryAfter: number | undefined

  constructor (options: ClientErrorOptions) {
    const fallback = (CLIENT_CODES as Record<string, string>)[options.code] ?? 'Request failed'
    super(scrub(options.message ?? fallback), options.cause === undefined ? undefined : { cause: options.cause })
    this.kind = options.kind
    this.code = options.code
    this.status = options.status ?? 0
    this.retryAfter = options.retryAfter
  }

  override toString (): string {
    const status = this.status === 0 ? '' : ` ${this.status}`
    return `${this.name} [${this.code}${status}]: ${this.message}`
  }

  toJSON (): { name: string, kind: ClientErrorKind, status: number, code: string, message: string } {
    return { name: this.name, kind: this.kind, status: this.status, code: this.code, message: this.message }
  }

  [INSPECT] (): string {
    return this.toString()
  }
}

/** The server answered with an error: `status`, `code` and `message` come from its body. */
export class GatehouseHttpError extends GatehouseClientError {
  override name = 'GatehouseHttpError'
}

/** The request did not get a usable answer (the original error is the `cause`). */
export class GatehouseNetworkError extends GatehouseClientError {
  override name = 'GatehouseNetworkError'
}

/** The refresh token was rejected and no new session could be started; log in again. */
export class GatehouseSessionExpiredError extends GatehouseClientError {
  override name = 'GatehouseSessionExpiredError'
}

/** Bad options, an insecure base URL, a URL outside the allowed origins, or a mode mismatch. */
export class GatehouseConfigError extends GatehouseClientError {
  override name = 'GatehouseConfigError'
}

export function configError (code: ClientCode, message?: string): GatehouseConfigError {
  return new GatehouseConfigError({ kind: 'config', code, message })
}

export function isGatehouseClientError (err: unknown): err is GatehouseClientError {
  return err instanceof GatehouseClientError
}
