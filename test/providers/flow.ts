// Drives a provider sign-in over HTTP for the tests: the Gatehouse app through inject (with the
// flow cookie a browser would keep), the providers through real HTTP on loopback.
import type { LightMyRequestResponse } from 'fastify'
import { FLOW_COOKIE } from '../../routes/auth/providers.ts'
import { loginAtGithub, loginAtOidc, type GatehouseApp, type LoopbackOidc } from './helpers.ts'

export interface Started {
  /** Where the browser goes next (the provider's authorization endpoint). */
  location: string
  /** The flow cookie as a Cookie header value (`name=value`). */
  cookie: string
  setCookie: string
}

export async function start (gh: GatehouseApp, providerId: string, query: Record<string, string> = { redirect_uri: gh.redirectUri }): Promise<Started> {
  const res = await gh.app.inject({ url: `/auth/providers/${providerId}/authorize?${new URLSearchParams(query).toString()}` })
  if (res.statusCode !== 302) throw new Error(`authorize answered ${res.statusCode}: ${res.body}`)
  const setCookie = [res.headers['set-cookie']].flat().find((c) => typeof c === 'string' && c.startsWith(`${FLOW_COOKIE}=`))
  if (setCookie === undefined) throw new Error('authorize set no flow cookie')
  return { location: res.headers.location as string, cookie: setCookie.split(';')[0], setCookie }
}

/** The callback request as the browser makes it (its URL from the provider, the cookie if any). */
export async function callback (gh: GatehouseApp, callbackUrl: string, cookie?: string): Promise<LightMyRequestResponse> {
  const url = new URL(callbackUrl)
  if (url.origin !== new URL(gh.issuer).origin) throw new Error(`the provider sent the browser to ${url.origin}, not to Gatehouse`)
  return await gh.app.inject({ url: url.pathname + url.search, headers: cookie === undefined ? {} : { cookie } })
}

/** Where the callback sent the browser back to: the app URL and its query. */
export function returned (res: LightMyRequestResponse): URL {
  if (res.statusCode !== 302) throw new Error(`callback answered ${res.statusCode}: ${res.body}`)
  return new URL(res.headers.location as string)
}

export async function exchange (gh: GatehouseApp, code: string | null, extra: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
  return await gh.app.inject({ method: 'POST', url: '/auth/providers/exchange', payload: { code, ...extra } })
}

/** A whole OIDC sign-in as `login`: the app URL the browser lands on. */
export async function oidcSignIn (gh: GatehouseApp, op: LoopbackOidc, login: string, providerId = 'acme'): Promise<URL> {
  const flow = await start(gh, providerId)
  return returned(await callback(gh, await loginAtOidc(op, flow.location, login), flow.cookie))
}

/** A whole GitHub-shaped sign-in as `login`. */
export async function githubSignIn (gh: GatehouseApp, login: string, providerId = 'github'): Promise<URL> {
  const flow = await start(gh, providerId)
  return returned(await callback(gh, await loginAtGithub(flow.location, login), flow.cookie))
}

/** Signs in and exchanges the code: the login response body. */
export async function loginBody (gh: GatehouseApp, landed: URL): Promise<{ user: { id: string, email: string, email_verified: boolean }, access_token: string, refresh_token?: string }> {
  const code = landed.searchParams.get('code')
  if (code === null) throw new Error(`no code: ${landed.href}`)
  const res = await exchange(gh, code)
  if (res.statusCode !== 200) throw new Error(`exchange answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

export async function me (gh: GatehouseApp, token: string): Promise<Record<string, any>> {
  const res = await gh.app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
  if (res.statusCode !== 200) throw new Error(`me answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

export async function register (gh: GatehouseApp, email: string, password = 'correct horse battery staple'): Promise<{ id: string, token: string }> {
  const res = await gh.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } })
  if (res.statusCode !== 201) throw new Error(`register answered ${res.statusCode}: ${res.body}`)
  return { id: res.json().user.id, token: res.json().access_token }
}

export function claims (token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))
}
