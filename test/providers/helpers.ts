import type { IncomingMessage, ServerResponse } from 'node:http'
import { createHash, randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import formbody from '@fastify/formbody'
import type { JWK } from 'jose'
import { build, type TestApp } from '../helpers/build.ts'
import { keyServer, providerKeys, type KeyServer } from '../trusted-issuers/helpers.ts'
import type { Provider as DatabaseProvider } from '../../plugins/store/database-url.ts'
import type { AppOptions } from '../../server/app.ts'

export interface TestContext {
  teardown: (fn: () => unknown) => void
}

export interface OidcClaims {
  email?: string
  email_verified?: boolean
  name?: string
}

export interface LoopbackOidc {
  issuer: string
  server: KeyServer
  clientId: string
  clientSecret: string
  users: Map<string, OidcClaims>
  allowRedirect: (uri: string) => void
  outage: (down: boolean) => void
  rewriteTokenResponse: ((body: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>) | null
  tokenRequests: () => number
  lastClientAuth: () => 'client_secret_basic' | 'client_secret_post' | null
}

export interface OidcOptions {
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post'
  alg?: string
  keys?: JWK[]
}

interface OidcProviderInstance {
  callback: () => (req: IncomingMessage, res: ServerResponse) => void
  on: (event: string, listener: (...args: unknown[]) => void) => void
  Grant: new (input: { clientId: string, accountId: string }) => { addOIDCScope: (scope: string) => void, addOIDCClaims: (claims: string[]) => void, save: () => Promise<string> }
}

export async function startOidcProvider (t: TestContext, options: OidcOptions = {}): Promise<LoopbackOidc> {
  const moduleName = 'oidc-provider'
  const { default: Provider } = await import(moduleName) as { default: new (issuer: string, configuration: unknown) => OidcProviderInstance }
  const alg = options.alg ?? 'RS256'
  const keys = options.keys ?? [await providerKeys(alg)]
  const server = await keyServer(t)
  const issuer = server.url
  const clientId = 'gatehouse-test'
  const clientSecret = randomBytes(24).toString('base64url')
  const users = new Map<string, OidcClaims>()
  const redirects = new Set<string>()
  let down = false
  let tokenRequests = 0
  let lastAuth: 'client_secret_basic' | 'client_secret_post' | null = null
  const make = (): (req: IncomingMessage, res: ServerResponse) => void => {
    const provider = new Provider(issuer, {
      clients: [{
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirects.size === 0 ? ['http://127.0.0.1:1/unused'] : [...redirects],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
        id_token_signed_response_alg: alg
      }],
      jwks: { keys },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      pkce: { required: () => true },
      features: { devInteractions: { enabled: true } },
      findAccount: async (_ctx: unknown, id: string) => ({
        accountId: id,
        claims: async () => {
          const claims = users.get(id) ?? { email: `${id}@example.test`, email_verified: true }
          return { sub: id, ...claims }
        }
      }),
      loadExistingGrant: async (ctx: { oidc: { client: { clientId: string }, session: { accountId: string } } }) => {
        const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId })
        grant.addOIDCScope('openid email profile')
        grant.addOIDCClaims(['email', 'email_verified', 'name'])
        await grant.save()
        return grant
      }
    } as never)
    provider.on('server_error', () => {})
    return provider.callback()
  }
  let callback = make()
  const op: LoopbackOidc = {
    issuer,
    server,
    clientId,
    clientSecret,
    users,
    rewriteTokenResponse: null,
    allowRedirect (uri) {
      if (redirects.has(uri)) return
      redirects.add(uri)
      callback = make()
    },
    outage (value) { down = value },
    tokenRequests: () => tokenRequests,
    lastClientAuth: () => lastAuth
  }
  server.handle((req, res) => {
    if (down) {
      res.statusCode = 503
      res.end()
      return
    }
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/token') {
      tokenRequests++
      lastAuth = req.headers.authorization?.startsWith('Basic ') === true ? 'client_secret_basic' : 'client_secret_post'
      const rewrite = op.rewriteTokenResponse
      if (rewrite !== null) {
        const chunks: Buffer[] = []
        const write = res.write.bind(res)
        const end = res.end.bind(res)
        res.write = ((chunk: unknown) => { if (chunk !== undefined && chunk !== null) chunks.push(Buffer.from(chunk as string)); return true }) as typeof res.write
        res.end = ((chunk?: unknown) => {
          if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') chunks.push(Buffer.from(chunk as string))
          const original = Buffer.concat(chunks).toString('utf8')
          const rewritten = res.statusCode === 200 ? Promise.resolve(rewrite(JSON.parse(original) as Record<string, unknown>)).then((b) => JSON.stringify(b)) : Promise.resolve(original)
          rewritten.then((body) => {
            if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(body))
            write(body)
            end()
          }, () => { res.destroy() })
          return res
        }) as typeof res.end
      }
    }
    callback(req, res)
  })
  return op
}

export interface GithubEmail {
  email: string
  primary: boolean
  verified: boolean
}

export interface GithubUser {
  id: number
  login: string
  name?: string | null
  email?: string | null
  emails: GithubEmail[]
}

export interface LoopbackGithub {
  url: string
  app: FastifyInstance
  clientId: string
  clientSecret: string
  users: Map<string, GithubUser>
  authorizationEndpoint: string
  tokenEndpoint: string
  userinfoEndpoint: string
  emailsEndpoint: string
  tokenRequests: () => number
  lastClientAuth: () => 'client_secret_basic' | 'client_secret_post' | null
}

export interface GithubOptions {
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post'
}

function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export async function startGithubProvider (t: TestContext, options: GithubOptions = {}): Promise<LoopbackGithub> {
  const app = Fastify({ logger: false })
  await app.register(formbody)
  const clientId = 'gh-client-test'
  const clientSecret = randomBytes(24).toString('base64url')
  const method = options.tokenEndpointAuthMethod ?? 'client_secret_basic'
  const users = new Map<string, GithubUser>()
  const codes = new Map<string, { login: string, redirectUri: string, challenge: string, used: boolean }>()
  const tokens = new Map<string, string>()
  let tokenRequests = 0
  let lastAuth: 'client_secret_basic' | 'client_secret_post' | null = null

  app.get('/login/oauth/authorize', async (request, reply) => {
    const q = request.query as Record<string, string>
    if (q.client_id !== clientId) return reply.code(400).send({ error: 'invalid_client' })
    const hidden = ['client_id', 'redirect_uri', 'state', 'scope', 'code_challenge', 'code_challenge_method']
      .map((k) => `<input type="hidden" name="${k}" value="${escapeHtml(q[k] ?? '')}">`).join('')
    reply.type('text/html').send(`<!doctype html><html><head><title>Sign in to GitHub-shaped</title></head><body><form method="post" action="/login/oauth/authorize">${hidden}<label>Login <input name="login" id="login"></label><button type="submit" name="decision" value="allow" id="allow">Authorize</button><button type="submit" name="decision" value="deny" id="deny">Cancel</button></form></body></html>`)
  })

  app.post('/login/oauth/authorize', async (request, reply) => {
    const b = request.body as Record<string, string>
    if (b.client_id !== clientId) return reply.code(400).send({ error: 'invalid_client' })
    const target = new URL(b.redirect_uri)
    if (b.decision !== 'allow') {
      target.searchParams.set('error', 'access_denied')
      target.searchParams.set('error_description', 'The user has denied your application access.')
    } else {
      if (!users.has(b.login)) return reply.code(400).send({ error: 'unknown_user' })
      if (b.code_challenge_method !== 'S256' || (b.code_challenge ?? '') === '') return reply.code(400).send({ error: 'invalid_request' })
      const code = randomBytes(16).toString('hex')
      codes.set(code, { login: b.login, redirectUri: b.redirect_uri, challenge: b.code_challenge, used: false })
      target.searchParams.set('code', code)
    }
    if (b.state !== undefined && b.state !== '') target.searchParams.set('state', b.state)
    return reply.redirect(target.href, 302)
  })

  app.post('/login/oauth/access_token', async (request, reply) => {
    tokenRequests++
    const b = request.body as Record<string, string>
    let id: string | undefined
    let secret: string | undefined
    const header = request.headers.authorization
    if (header?.startsWith('Basic ') === true) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8')
      const i = decoded.indexOf(':')
      id = decodeURIComponent(decoded.slice(0, i))
      secret = decodeURIComponent(decoded.slice(i + 1))
      lastAuth = 'client_secret_basic'
    } else if (b.client_secret !== undefined) {
      id = b.client_id
      secret = b.client_secret
      lastAuth = 'client_secret_post'
    }
    if (id !== clientId || secret !== clientSecret || lastAuth !== method) return reply.code(401).send({ error: 'invalid_client' })
    const entry = codes.get(b.code)
    if (b.grant_type !== 'authorization_code' || entry === undefined || entry.used || entry.redirectUri !== b.redirect_uri) return reply.code(400).send({ error: 'invalid_grant' })
    entry.used = true
    const expected = createHash('sha256').update(b.code_verifier ?? '').digest('base64url')
    if (expected !== entry.challenge) return reply.code(400).send({ error: 'invalid_grant', error_description: 'PKCE verification failed' })
    const accessToken = `gho_${randomBytes(18).toString('hex')}`
    tokens.set(accessToken, entry.login)
    return reply.header('cache-control', 'no-store').send({ access_token: accessToken, token_type: 'bearer', scope: 'read:user,user:email' })
  })

  function owner (authorization: string | undefined): GithubUser | undefined {
    const token = authorization?.replace(/^(Bearer|token) /i, '')
    const login = token === undefined ? undefined : tokens.get(token)
    return login === undefined ? undefined : users.get(login)
  }

  app.get('/user', async (request, reply) => {
    const user = owner(request.headers.authorization)
    if (user === undefined) return reply.code(401).send({ message: 'Bad credentials' })
    return { id: user.id, login: user.login, name: user.name ?? null, email: user.email ?? null }
  })

  app.get('/user/emails', async (request, reply) => {
    const user = owner(request.headers.authorization)
    if (user === undefined) return reply.code(401).send({ message: 'Bad credentials' })
    return user.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null }))
  })

  const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1')
  t.teardown(() => app.close())
  return {
    url,
    app,
    clientId,
    clientSecret,
    users,
    authorizationEndpoint: `${url}/login/oauth/authorize`,
    tokenEndpoint: `${url}/login/oauth/access_token`,
    userinfoEndpoint: `${url}/user`,
    emailsEndpoint: `${url}/user/emails`,
    tokenRequests: () => tokenRequests,
    lastClientAuth: () => lastAuth
  }
}

export const APP_REDIRECT_URI = 'http://127.0.0.1:5173/auth/callback'
export const OIDC_PROVIDER_ID = 'acme'
export const GITHUB_PROVIDER_ID = 'github'

export interface GatehouseOptions {
  oidc?: LoopbackOidc
  github?: LoopbackGithub
  database?: DatabaseProvider
  env?: Record<string, string>
  redirectUris?: string[]
  oidcEntry?: Record<string, unknown>
  githubEntry?: Record<string, unknown>
  clock?: () => number
  app?: AppOptions
}

export interface GatehouseApp extends TestApp {
  issuer: string
  redirectUri: string
  callbackUrl: (providerId: string) => string
}

export function oidcEntry (op: LoopbackOidc, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: OIDC_PROVIDER_ID, name: 'Acme ID', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, ...extra }
}

export function githubEntry (gh: LoopbackGithub, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: GITHUB_PROVIDER_ID,
    name: 'GitHub',
    type: 'oauth2',
    authorizationEndpoint: gh.authorizationEndpoint,
    tokenEndpoint: gh.tokenEndpoint,
    userinfoEndpoint: gh.userinfoEndpoint,
    emailsEndpoint: gh.emailsEndpoint,
    clientId: gh.clientId,
    clientSecret: gh.clientSecret,
    scopes: ['read:user', 'user:email'],
    ...extra
  }
}

const HIGH = { max: 100_000, timeWindowMs: 60_000 }

export async function buildGatehouse (t: TestContext, options: GatehouseOptions = {}): Promise<GatehouseApp> {
  const issuer = (options.env?.AUTH_ISSUER ?? 'http://127.0.0.1:3000').replace(/\/+$/, '')
  const entries: Array<Record<string, unknown>> = []
  if (options.oidc !== undefined) {
    const entry = oidcEntry(options.oidc, options.oidcEntry)
    options.oidc.allowRedirect(`${issuer}/auth/providers/${String(entry.id)}/callback`)
    entries.push(entry)
  }
  if (options.github !== undefined) entries.push(githubEntry(options.github, options.githubEntry))
  const redirectUris = options.redirectUris ?? [APP_REDIRECT_URI]
  const built = await build(t, {
    provider: options.database,
    env: { AUTH_ISSUER: issuer, LOGIN_PROVIDERS: JSON.stringify(entries), LOGIN_REDIRECT_URIS: redirectUris.join(','), ...options.env },
    app: {
      ...options.app,
      rateLimit: { classes: { login: HIGH, register: HIGH, refresh: HIGH, token: HIGH, default: HIGH }, failedCredentials: HIGH, ...options.app?.rateLimit },
      providers: { ...(options.clock === undefined ? {} : { clock: options.clock }), ...options.app?.providers }
    }
  })
  return { ...built, issuer, redirectUri: redirectUris[0], callbackUrl: (id) => `${issuer}/auth/providers/${id}/callback` }
}

export class CookieJar {
  readonly cookies = new Map<string, string>()

  store (setCookie: string | string[] | undefined): void {
    const list = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]
    for (const line of list) {
      const [pair, ...attributes] = line.split(';')
      const i = pair.indexOf('=')
      const name = pair.slice(0, i).trim()
      const value = pair.slice(i + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()))
      if (value === '' || expired) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  header (): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }
}

export async function browse (jar: CookieJar, url: string, init: { method?: string, form?: Record<string, string> } = {}): Promise<{ status: number, location: string | null, body: string }> {
  const headers: Record<string, string> = {}
  if (jar.cookies.size > 0) headers.cookie = jar.header()
  let body: string | undefined
  if (init.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(init.form).toString()
  }
  const response = await fetch(url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body, redirect: 'manual' })
  jar.store(response.headers.getSetCookie())
  const location = response.headers.get('location')
  return { status: response.status, location: location === null ? null : new URL(location, url).href, body: await response.text() }
}

export async function loginAtOidc (op: LoopbackOidc, authorizeUrl: string, login: string, jar: CookieJar = new CookieJar()): Promise<string> {
  let url = authorizeUrl
  for (let hop = 0; hop < 10; hop++) {
    if (!url.startsWith(op.issuer)) return url
    const page = await browse(jar, url)
    if (page.location !== null) {
      url = page.location
      continue
    }
    const uid = /\/interaction\/([^/?#]+)/.exec(url)?.[1]
    if (page.status !== 200 || uid === undefined) throw new Error(`oidc-provider answered ${page.status} at ${url}: ${page.body.slice(0, 300)}`)
    const prompt: Record<string, string> = page.body.includes('name="login"') ? { prompt: 'login', login, password: 'any' } : { prompt: 'consent' }
    const submitted = await browse(jar, `${op.issuer}/interaction/${uid}`, { form: prompt })
    if (submitted.location === null) throw new Error(`oidc-provider did not redirect after ${prompt.prompt}: ${submitted.status}`)
    url = submitted.location
  }
  throw new Error('oidc-provider: too many redirects')
}

export async function denyAtOidc (op: LoopbackOidc, authorizeUrl: string, jar: CookieJar = new CookieJar()): Promise<string> {
  const first = await browse(jar, authorizeUrl)
  const uid = first.location === null ? undefined : /\/interaction\/([^/?#]+)/.exec(first.location)?.[1]
  if (uid === undefined) throw new Error(`oidc-provider did not start an interaction: ${first.status}`)
  let url = `${op.issuer}/interaction/${uid}/abort`
  for (let hop = 0; hop < 10; hop++) {
    if (!url.startsWith(op.issuer)) return url
    const page = await browse(jar, url)
    if (page.location === null) throw new Error(`oidc-provider answered ${page.status} at ${url}`)
    url = page.location
  }
  throw new Error('oidc-provider: too many redirects')
}

export async function loginAtGithub (authorizeUrl: string, login: string, decision: 'allow' | 'deny' = 'allow'): Promise<string> {
  const q = new URL(authorizeUrl).searchParams
  const form: Record<string, string> = { login, decision }
  for (const k of ['client_id', 'redirect_uri', 'state', 'scope', 'code_challenge', 'code_challenge_method']) form[k] = q.get(k) ?? ''
  const answer = await browse(new CookieJar(), new URL('/login/oauth/authorize', authorizeUrl).href, { form })
  if (answer.location === null) throw new Error(`github-shaped authorize answered ${answer.status}: ${answer.body}`)
  return answer.location
}
