// pino options shared by the server and the tests: secrets are redacted wherever they sit.
import type { FastifyServerOptions, FastifyRequest } from 'fastify'

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

/**
 * The request as logged: Fastify's default fields, but the URL without its query string, where a
 * client may have put a token (`?access_token=`, `?refresh_token=`) that no route reads.
 */
export function serializeRequest (request: FastifyRequest): Record<string, unknown> {
  const url = request.url
  const query = url.indexOf('?')
  return {
    method: request.method,
    url: query === -1 ? url : `${url.slice(0, query)}?[redacted]`,
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

export function loggerOptions (level: string, stream?: { write: (line: string) => void }): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { req: serializeRequest as never },
    ...(stream === undefined ? {} : { stream })
  }
}
