// pino options shared by the server and the tests: secrets are redacted wherever they sit.
import type { FastifyServerOptions } from 'fastify'

/** Paths pino censors in every log line. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password', '*.new_password', '*.current_password', '*.passwordHash', '*.password_hash',
  '*.access_token', '*.refresh_token', '*.token', '*.accessToken', '*.refreshToken',
  '*.client_secret', '*.clientSecret', '*.secret', '*.key', '*.privateKey', '*.private_key', '*.apiKey', '*.api_key',
  '*.authorization', '*.hash', '*.d', '*.p', '*.q', '*.dp', '*.dq', '*.qi'
]

export function loggerOptions (level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
}
