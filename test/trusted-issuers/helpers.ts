// Real servers for the trusted-issuers tests: key servers on port 0 whose answers the test
// controls (and whose requests it counts), test keys and signed tokens (jose), and a real OpenID
// provider (oidc-provider) issuing JWT access tokens for a resource through client_credentials.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'
import Fastify, { type FastifyInstance } from 'fastify'
import { errorHandler } from '../../lib/error-handler.ts'
import { trustedIssuers, type TrustedIssuersOptions } from '../../plugins/trusted-issuers/index.ts'

export interface TestContext {
  teardown: (fn: () => unknown) => void
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface KeyServer {
  url: string
  /** Requests seen, by path. */
  readonly hits: Map<string, number>
  /** Every request, any path. */
  total: () => number
  count: (path: string) => number
  /** Replaces the answer of the server from now on. */
  handle: (handler: Handler) => void
  /** Answers `doc` as JSON on every path. */
  serve: (doc: unknown) => void
  server: Server
}

/** A node:http server on 127.0.0.1:0, closed at teardown (open connections included). */
export async function keyServer (t: TestContext, initial?: unknown): Promise<KeyServer> {
  const hits = new Map<string, number>()
  let handler: Handler = (_req, res) => { res.statusCode = 404; res.end() }
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    hits.set(path, (hits.get(path) ?? 0) + 1)
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const { port } = server.address() as AddressInfo
  const ks: KeyServer = {
    url: `http://127.0.0.1:${port}`,
    hits,
    server,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    count: (path) => hits.get(path) ?? 0,
    handle: (h) => { handler = h },
    serve: (doc) => {
      handler = (_req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(doc))
      }
    }
  }
  if (initial !== undefined) ks.serve(initial)
  return ks
}

export interface TestKey {
  kid: string
  alg: string
  /** Public JWK with kid, alg and use: sig. */
  jwk: JWK
  privateKey: CryptoKey
}

export async function testKey (alg = 'RS256', kid = `k-${Math.random().toString(36).slice(2, 10)}`, options: { modulusLength?: number, crv?: string } = {}): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...options })
  const jwk = { ...await exportJWK(publicKey), kid, alg, use: 'sig' }
  return { kid, alg, jwk, privateKey }
}

export function jwks (...keys: Array<TestKey | JWK>): { keys: JWK[] } {
  return { keys: keys.map((k) => ('jwk' in k ? (k as TestKey).jwk : k as JWK)) }
}

export interface SignOptions {
  header?: Record<string, unknown>
  /** Seconds from now; default 300. */
  expiresIn?: number
}

/** Signs claims (iat and exp filled unless given) with the key's alg and kid. */
export async function sign (key: TestKey, claims: JWTPayload, options: SignOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload: JWTPayload = { iat: now, exp: now + (options.expiresIn ?? 300), ...claims }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...options.header })
    .sign(key.privateKey)
}

/** The bare three-segment form of arbitrary header/payload JSON with a given signature segment. */
export function rawToken (header: unknown, payload: unknown, signature = 'c2ln'): string {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${enc(header)}.${enc(payload)}.${signature}`
}

/**
 * A Fastify app with only the trusted-issuers plugin (no database) and one route that verifies
 * the bearer token itself: the plugin's own HTTP surface before `authenticate` exists.
 */
export async function verifierApp (t: TestContext, options: TrustedIssuersOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  app.setErrorHandler(errorHandler)
  await app.register(trustedIssuers, options)
  app.get('/whoami', async (request) => {
    const token = (request.headers.authorization ?? '').replace(/^Bearer /, '')
    const user = await app.trustedIssuers.verify(token)
    return { sub: user.sub, iss: user.iss, roles: user.roles, external: user.external }
  })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** Expects `promise` to reject with a coded error; returns it. */
export async function rejection (promise: Promise<unknown>): Promise<{ code: string, statusCode: number, headers?: Record<string, string> }> {
  try {
    await promise
  } catch (err) {
    return err as { code: string, statusCode: number, headers?: Record<string, string> }
  }
  return { code: 'RESOLVED', statusCode: 200 }
}

export interface OidcProvider {
  issuer: string
  server: KeyServer
  /** A JWT access token for `resource` through the client_credentials grant. */
  token: (resource?: string) => Promise<string>
  /** Replaces the provider's signing keys (a new Provider instance behind the same URL). */
  rotate: (keys: JWK[]) => Promise<void>
}

interface OidcProviderInstance {
  callback: () => (req: IncomingMessage, res: ServerResponse) => void
  on: (event: string, listener: (...args: unknown[]) => void) => void
}

export const RESOURCE = 'https://api.example.test'
const CLIENT_ID = 'service-a'
const CLIENT_SECRET = 'a-client-secret-that-is-long-enough-0123456789'

/** Private JWKs of `alg` for oidc-provider's keystore. */
export async function providerKeys (alg = 'RS256', kid?: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true })
  return { ...await exportJWK(privateKey), kid: kid ?? `op-${Math.random().toString(36).slice(2, 10)}`, alg, use: 'sig' }
}

/**
 * A real oidc-provider (v9) on 127.0.0.1:0: client_credentials enabled, resource indicators
 * enabled with JWT access tokens for RESOURCE (audience = RESOURCE), signed with `alg`.
 */
export async function oidcProvider (t: TestContext, options: { alg?: string, keys?: JWK[] } = {}): Promise<OidcProvider> {
  // oidc-provider ships no type declarations: describe the little used here.
  const moduleName = 'oidc-provider'
  const { default: Provider } = await import(moduleName) as { default: new (issuer: string, configuration: unknown) => OidcProviderInstance }
  const alg = options.alg ?? 'RS256'
  const server = await keyServer(t)
  const issuer = server.url
  const make = (keys: JWK[]): OidcProviderInstance => {
    const provider = new Provider(issuer, {
      clients: [{
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: alg
      }],
      jwks: { keys: keys as never },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => ({
            scope: 'api:read',
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 300,
            jwt: { sign: { alg } }
          })
        }
      }
    } as never)
    provider.on('server_error', () => {})
    return provider
  }
  let callback = make(options.keys ?? [await providerKeys(alg)]).callback()
  server.handle((req, res) => { callback(req, res) })
  return {
    issuer,
    server,
    async token (resource = RESOURCE) {
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded'
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'api:read' })
      })
      const body = await response.json() as { access_token?: string, error?: string, error_description?: string }
      if (typeof body.access_token !== 'string') throw new Error(`token endpoint: ${response.status} ${body.error ?? ''} ${body.error_description ?? ''}`)
      return body.access_token
    },
    async rotate (keys) {
      callback = make(keys).callback()
    }
  }
}

export function decodePart (token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index], 'base64url').toString('utf8')) as Record<string, unknown>
}

/** A clock for the key cache that moves only when told to (no sleeping in tests). */
export function manualClock (start = Date.now()): { now: () => number, advance: (ms: number) => void } {
  let now = start
  return { now: () => now, advance: (ms) => { now += ms } }
}
