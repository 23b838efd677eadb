// Hand-built compact JWS for attack tests: any header, any payload, any key or none.
import { createHmac, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { loadKeyRing, type SigningKey } from '../../plugins/tokens/keys.ts'

export function segment (value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

/** Signs `header.payload` with `key` under `alg` (raw R||S for ES256, or DER when asked). */
export function signWith (input: string, alg: string, key: KeyObject | Buffer | string, options: { der?: boolean } = {}): string {
  const data = Buffer.from(input)
  if (alg === 'RS256') return cryptoSign('sha256', data, key as KeyObject).toString('base64url')
  if (alg === 'ES256') return cryptoSign('sha256', data, { key: key as KeyObject, dsaEncoding: options.der === true ? 'der' : 'ieee-p1363' }).toString('base64url')
  if (alg === 'EdDSA') return cryptoSign(null, data, key as KeyObject).toString('base64url')
  if (alg.toUpperCase().startsWith('HS')) return createHmac('sha256', key as Buffer | string).update(data).digest('base64url')
  return ''
}

export function compact (header: unknown, payload: unknown, alg: string, key: KeyObject | Buffer | string | null, options: { der?: boolean } = {}): string {
  const input = `${segment(header)}.${segment(payload)}`
  return `${input}.${key === null ? '' : signWith(input, alg, key, options)}`
}

export function signingKey (keysDir: string): SigningKey {
  return loadKeyRing(keysDir).active[0]
}

export function nowSec (): number {
  return Math.floor(Date.now() / 1000)
}

/** The claims Gatehouse itself would issue for `userId`, with overrides (undefined removes a claim). */
export function claimsFor (app: FastifyInstance, userId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSec()
  const claims: Record<string, unknown> = {
    iss: app.tokens.issuer,
    sub: userId,
    aud: app.tokens.audience,
    exp: now + 600,
    iat: now,
    jti: randomUUID(),
    roles: ['user'],
    sid: 'sid-forged',
    ver: 0
  }
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete claims[name]
    else claims[name] = value
  }
  return claims
}

/** A token signed with our own key, with any header and claims changes. */
export function ourToken (app: FastifyInstance, keysDir: string, userId: string, options: { header?: Record<string, unknown>, claims?: Record<string, unknown>, payload?: unknown } = {}): string {
  const key = signingKey(keysDir)
  const header: Record<string, unknown> = { alg: key.alg, typ: 'at+jwt', kid: key.kid }
  for (const [name, value] of Object.entries(options.header ?? {})) {
    if (value === undefined) delete header[name]
    else header[name] = value
  }
  const payload = options.payload !== undefined ? options.payload : claimsFor(app, userId, options.claims)
  return compact(header, payload, key.alg, key.privateKey)
}
