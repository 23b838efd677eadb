// Test fixtures shared by the rbac, orgs and admin tests: accounts created in the database and
// real access tokens for them (through gatehouse-sessions when registered, else a refresh
// family row and gatehouse-tokens' signer), so requests go through the real authenticate hook.
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'

export interface Account {
  id: string
  email: string
  token: string
  refreshToken?: string
}

let counter = 0

export async function account (app: FastifyInstance, options: { email?: string, roles?: string[], name?: string } = {}): Promise<Account> {
  const email = options.email ?? `user${++counter}-${Math.random().toString(36).slice(2, 8)}@example.com`
  const roles = options.roles ?? ['user']
  const user = await app.store.prisma.user.create({ data: { email, name: options.name ?? null, roles: JSON.stringify(roles) } })
  return { id: user.id, email, ...await login(app, user.id) }
}

/** A new session (access token, and a refresh token when gatehouse-sessions is registered). */
export async function login (app: FastifyInstance, userId: string): Promise<{ token: string, refreshToken?: string }> {
  const user = await app.store.prisma.user.findUniqueOrThrow({ where: { id: userId } })
  const signable = { id: user.id, roles: JSON.parse(user.roles) as string[], tokenVersion: user.tokenVersion }
  if (app.hasDecorator('sessions')) {
    const response = await app.sessions.start(signable, {})
    return { token: response.access_token, refreshToken: response.refresh_token }
  }
  const family = await app.store.prisma.refreshFamily.create({ data: { userId, clientId: 'gatehouse', absoluteExpiresAt: new Date(Date.now() + 3_600_000) } })
  const signed = await app.tokens.sign(signable, { sid: family.id })
  return { token: signed.access_token }
}

export interface Call {
  status: number
  code?: string
  body: any
  res: LightMyRequestResponse
}

export async function call (app: FastifyInstance, method: string, url: string, who?: Account | string | null, payload?: unknown): Promise<Call> {
  const token = typeof who === 'string' ? who : who?.token
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as object })
  })
  const body = res.body === '' ? null : res.json()
  return { status: res.statusCode, code: body?.code, body, res }
}
