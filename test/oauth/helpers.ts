// Helpers of the OAuth endpoint tests: form posts, Basic client credentials, the §5.2 error check.
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'

export function form (fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

export function basic (id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`
}

export async function token (app: FastifyInstance, fields: Record<string, string>, headers: Record<string, string> = {}, url = '/oauth/token') {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: form(fields)
  })
}

export function isOAuthError (t: Test, res: Awaited<ReturnType<typeof token>>, status: number, error: string): void {
  t.equal(res.statusCode, status, `${error}: status ${status}`)
  const body = res.json()
  t.equal(body.error, error)
  t.same(Object.keys(body).sort(), ['error', 'error_description'], 'exactly the RFC 6749 §5.2 members')
  t.match(body.error_description, /^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/, 'error_description uses the RFC\'s character set')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers.pragma, 'no-cache')
}
