// Shared tools of the security suite: a real listening server with one account, and a
// token factory that signs anything (any header, any payload) with the server's own key.
import { createHmac, createPrivateKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { build, type BuildOptions, type TestContext } from '../helpers/build.ts'
import { loadKeyRing } from '../../plugins/tokens/keys.ts'

export const PASSWORD = 'correct horse battery staple 42'

export const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

export interface Target {
  app: FastifyInstance
  url: string
  logs: string[]
  keysDir: string
  databaseUrl: string
  issuer: string
  audience: string
  /** The registered account. */
  email: string
  userId: string
  accessToken: string
  refreshToken: string
  /** Header and claims of a real access token, to derive forgeries from. */
  header: Record<string, unknown>
  claims: Record<string, unknown>
  /** Signs `header.payload` with the server's current private key (RS256/ES256/EdDSA as configured). */
  signWithServerKey: (header: Record<string, unknown>, payload: unknown, options?: { dsaEncoding?: 'der' | 'ieee-p1363' }) => string
  /** GET /auth/me with `Authorization: Bearer <token>`. */
  me: (token: string) => Promise<{ status: number, body: any, headers: Headers }>
}

export async function target (t: TestContext, options: BuildOptions = {}): Promise<Target> {
  const { app, config, logs, databaseUrl } = await build(t, options)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const email = `victim-${Math.random().toString(36).slice(2)}@example.com`
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  const body = res.json()
  const [h, p] = body.access_token.split('.')
  const ring = loadKeyRing(config.keysDir)
  const key = ring.active[0]
  const privateKey: KeyObject = createPrivateKey(key.privatePem)
  function signWithServerKey (header: Record<string, unknown>, payload: unknown, opts: { dsaEncoding?: 'der' | 'ieee-p1363' } = {}): string {
    const input = `${b64(header)}.${typeof payload === 'string' && payload.startsWith('raw:') ? Buffer.from(payload.slice(4)).toString('base64url') : b64(payload)}`
    const alg = header.alg as string
    const digest = alg === 'EdDSA' ? null : 'sha256'
    const signature = cryptoSign(digest, Buffer.from(input), alg === 'ES256' ? { key: privateKey, dsaEncoding: opts.dsaEncoding ?? 'ieee-p1363' } : privateKey)
    return `${input}.${signature.toString('base64url')}`
  }
  return {
    app,
    url,
    logs,
    keysDir: config.keysDir,
    databaseUrl,
    issuer: config.issuer,
    audience: config.audience,
    email,
    userId: body.user.id,
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    claims: JSON.parse(Buffer.from(p, 'base64url').toString()),
    signWithServerKey,
    me: async (token: string) => {
      const r = await fetch(`${url}/auth/me`, { headers: { authorization: `Bearer ${token}` } })
      const text = await r.text()
      let parsed: unknown = text
      try { parsed = JSON.parse(text) } catch {}
      return { status: r.status, body: parsed, headers: r.headers }
    }
  }
}

export function hs256 (header: Record<string, unknown>, payload: unknown, secret: string | Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** An attacker's own RSA key pair. */
export function attackerKey (): { privateKey: KeyObject, publicJwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { privateKey, publicJwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown> }
}

export function rs256With (privateKey: KeyObject, header: Record<string, unknown>, payload: unknown): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${cryptoSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`
}

/** Every row of every table, as JSON lines (for secret scans). */
export async function allRows (app: FastifyInstance): Promise<string[]> {
  const prisma = app.store.prisma
  const tables = await Promise.all([
    prisma.user.findMany(), prisma.organization.findMany(), prisma.membership.findMany(),
    prisma.refreshFamily.findMany(), prisma.refreshToken.findMany(), prisma.apiKey.findMany(),
    prisma.oAuthClient.findMany(), prisma.auditEvent.findMany()
  ])
  return tables.flat().map((row) => JSON.stringify(row))
}

/**
 * Fails when any secret appears in a log line or a stored row. Private key material is looked
 * for by its PEM header and by the private JWK members.
 */
export async function assertNoSecrets (t: { ok: (v: unknown, m: string) => void, same: (a: unknown, b: unknown, m: string) => void }, app: FastifyInstance, logs: string[], secrets: string[]): Promise<void> {
  if ('audit' in app) await app.audit.flush()
  const rows = await allRows(app)
  const leaks: string[] = []
  for (const secret of secrets.filter((s) => s.length >= 8)) {
    for (const line of logs) if (line.includes(secret)) leaks.push(`log: ${secret.slice(0, 6)}... in ${line.slice(0, 160)}`)
    for (const row of rows) if (row.includes(secret)) leaks.push(`db: ${secret.slice(0, 6)}... in ${row.slice(0, 160)}`)
  }
  for (const line of logs) {
    if (/PRIVATE KEY-----|"d":"[A-Za-z0-9_-]{20,}"/.test(line)) leaks.push(`log: private key material in ${line.slice(0, 160)}`)
  }
  t.ok(logs.length > 0 && rows.length > 0, `scanned ${logs.length} log lines and ${rows.length} rows`)
  t.same(leaks.slice(0, 10), [], 'no password, token, refresh token, API key or key material in logs or the database')
}
