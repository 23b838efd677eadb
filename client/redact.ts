// Redaction helpers. The client knows every secret it holds (access and refresh tokens, the API
// key, a password while it is being sent), so text that leaves the client through a log line, an
// error message or util.inspect is scrubbed of those exact strings, and of anything shaped like a
// JWT, before it is shown.

/** Node's util.inspect hook; a plain registered symbol, so no Node built-in is imported. */
export const INSPECT = Symbol.for('nodejs.util.inspect.custom')

export const REDACTED = '[redacted]'

// A compact JWS (RFC 7515 §7.1): three base64url parts, the header starting with `{"` = `eyJ`.
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g
// Authorization header values: whatever follows a known scheme.
const AUTH_SCHEME = /\b(Bearer|ApiKey|Basic)\s+[^\s"',;]+/gi

/** Replaces every occurrence of the given secrets, JWT-shaped strings and Authorization values. */
export function scrub (text: string, secrets: Iterable<string | undefined> = []): string {
  let out = text
  for (const secret of secrets) {
    // Short strings would blank out ordinary words; real secrets are long.
    if (typeof secret === 'string' && secret.length >= 8) out = out.split(secret).join(REDACTED)
  }
  return out.replace(JWT_SHAPE, REDACTED).replace(AUTH_SCHEME, (_m, scheme: string) => `${scheme} ${REDACTED}`)
}

export type LogValue = string | number | boolean | undefined

/** What the optional logger receives: a fixed message and a few scalar, non-secret fields. */
export type LogInfo = Readonly<Record<string, LogValue>>

/**
 * A console-like logger: `console` itself fits. Messages are fixed strings; `info` holds only
 * method, path (no query string), status, code and timings.
 */
export interface ClientLogger {
  debug?: (message: string, info?: LogInfo) => void
  info?: (message: string, info?: LogInfo) => void
  warn?: (message: string, info?: LogInfo) => void
  error?: (message: string, info?: LogInfo) => void
}

export type LogLevel = keyof ClientLogger

/** Builds the log function the client uses: scalar fields only, strings scrubbed, never throws. */
export function createLog (logger: ClientLogger | undefined, secrets: () => Iterable<string | undefined>): (level: LogLevel, message: string, info?: Record<string, unknown>) => void {
  if (logger === undefined) return () => {}
  return (level, message, info) => {
    const fn = logger[level]
    if (typeof fn !== 'function') return
    const known = [...secrets()]
    const safe: Record<string, LogValue> = {}
    if (info !== undefined) {
      for (const [key, value] of Object.entries(info)) {
        if (typeof value === 'string') safe[key] = scrub(value, known)
        else if (typeof value === 'number' || typeof value === 'boolean') safe[key] = value
      }
    }
    try {
      fn.call(logger, scrub(message, known), Object.freeze(safe))
    } catch {
      // A failing logger must not break authentication.
    }
  }
}

/** The path of a URL for logs: no origin credentials, no query string, no fragment. */
export function pathOf (url: string | URL): string {
  try {
    return new URL(url).pathname
  } catch {
    return '[unparsable url]'
  }
}
