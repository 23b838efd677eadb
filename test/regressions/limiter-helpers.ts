// Shared by the regression tests of the limiter: a listening server that believes X-Forwarded-For
// from loopback (so one test can speak from many addresses), a fetch client, forged credentials.
import { randomBytes } from 'node:crypto'
import type { RateLimitPluginOptions } from '../../plugins/rate-limit/index.ts'
import { build, type TestContext } from '../helpers/build.ts'

export const PASSWORD = 'a long and decent passphrase 9'
export const FAILED_MAX = 20

export interface Answer { status: number, code?: string, retryAfter: string | null, body: any }

export async function listening (t: TestContext, provider: 'sqlite' | 'postgresql', rateLimit: RateLimitPluginOptions = {}): Promise<{ base: string, app: Awaited<ReturnType<typeof build>>['app'] }> {
  const { app } = await build(t, { provider, env: { TRUST_PROXY: '127.0.0.1' }, app: { rateLimit } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return { base: `http://127.0.0.1:${address.port}`, app }
}

export function client (base: string) {
  return async function call (from: string, method: string, path: string, init: { authorization?: string, body?: unknown } = {}): Promise<Answer> {
    const headers: Record<string, string> = { 'x-forwarded-for': from }
    if (init.authorization !== undefined) headers.authorization = init.authorization
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(base + path, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) })
    const text = await res.text()
    const body = text === '' ? null : JSON.parse(text)
    return { status: res.status, code: body?.code, retryAfter: res.headers.get('retry-after'), body }
  }
}

export const basic = (email: string, password: string): string => `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`
export const forgedJwt = (): string => {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `Bearer ${part({ alg: 'RS256', typ: 'at+jwt', kid: 'nope' })}.${part({ iss: 'http://127.0.0.1:3000', sub: 'x', exp: 9999999999 })}.${randomBytes(256).toString('base64url')}`
}
export const forgedApiKey = (): string => `ApiKey gh_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`

