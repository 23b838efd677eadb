// Options of gatehouse-providers: the sign-in providers (CONTRACT §12, the JSON of
// LOGIN_PROVIDERS), the app URLs a flow may return to (LOGIN_REDIRECT_URIS) and the lifetimes.
// resolveOptions() checks everything once; a bad provider entry throws a ConfigError naming
// LOGIN_PROVIDERS with one line that says which entry and what is wrong.
import { ConfigError, optionChecks, OptionsError } from '../../lib/options.ts'
import { isLoopbackHost } from '../../lib/loopback.ts'

export const PLUGIN = 'gatehouse-providers'
export const DEFAULT_OIDC_SCOPES: readonly string[] = Object.freeze(['openid', 'email', 'profile'])
export const TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const
export type TokenEndpointAuthMethod = typeof TOKEN_ENDPOINT_AUTH_METHODS[number]
export const DEFAULT_FLOW_TTL_SECONDS = 600
export const DEFAULT_LOGIN_CODE_TTL_SECONDS = 60
export const DEFAULT_TIMEOUT_MS = 5_000
/** Provider ids appear in URLs (`/auth/providers/<id>/callback`): a short slug. */
const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/

/** One entry of LOGIN_PROVIDERS, as written by the operator. */
export interface ProviderInput {
  /** Slug in the URLs (`[a-z0-9][a-z0-9_-]*`, at most 32 characters). */
  id: string
  /** Shown to users (GET /auth/providers). @default the id */
  name?: string
  /** `oidc` (endpoints from discovery, ID token validated) or `oauth2` (explicit endpoints, a userinfo call). @default 'oidc' */
  type?: 'oidc' | 'oauth2'
  /**
   * OIDC: the issuer (discovery at `<issuer>/.well-known/openid-configuration`; the ID token's
   * `iss` must equal it). oauth2: the namespace of the provider's user ids. @default (oauth2) the
   * origin of authorizationEndpoint
   */
  issuer?: string
  clientId: string
  clientSecret: string
  /** @default ['openid', 'email', 'profile'] (oidc), [] (oauth2) */
  scopes?: readonly string[]
  /** RFC 6749 §2.3.1. @default 'client_secret_basic' */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod
  /** oauth2 only. */
  authorizationEndpoint?: string
  tokenEndpoint?: string
  /** oauth2: the user endpoint (JSON with `sub` or `id`, and `email`/`email_verified` unless emailsEndpoint is set). */
  userinfoEndpoint?: string
  /** oauth2: a GitHub-shaped emails endpoint (`[{email, primary, verified}]`) giving the verified primary address. */
  emailsEndpoint?: string
  /** Keep the provider's access and refresh tokens, sealed with the TOTP sealing key. @default false */
  storeTokens?: boolean
}

export interface ProvidersOptions {
  /** The providers; values straight from JSON are checked again here. @default [] */
  providers?: readonly unknown[]
  /** Exact app URLs a flow may return to (LOGIN_REDIRECT_URIS). @default [] */
  redirectUris?: readonly string[]
  /** Where the provider sends the browser back: `<callbackBase>/<id>/callback`, e.g. `<AUTH_ISSUER>/auth/providers`. */
  callbackBase: string
  /** Seconds a started flow may take at the provider. @default 600 */
  flowTtl?: number
  /** Seconds the one-time login code lives. @default 60 */
  loginCodeTtl?: number
  /** Abort a request to a provider after this many ms. @default 5000 */
  timeoutMs?: number
  /** Where the TOTP sealing key lives (AUTH_KEYS_DIR); needed only by entries with storeTokens. */
  keysDir?: string
  /** Milliseconds since the epoch. @default Date.now */
  clock?: () => number
}

interface ProviderBase {
  id: string
  name: string
  issuer: string
  clientId: string
  clientSecret: string
  scopes: readonly string[]
  tokenEndpointAuthMethod: TokenEndpointAuthMethod
  storeTokens: boolean
  /** Plain http: on a loopback host somewhere: openid-client must be told it may. */
  insecureLoopback: boolean
}

export interface OidcProviderEntry extends ProviderBase { type: 'oidc' }
export interface OAuth2ProviderEntry extends ProviderBase {
  type: 'oauth2'
  authorizationEndpoint: string
  tokenEndpoint: string
  userinfoEndpoint: string
  emailsEndpoint: string | null
}
export type ProviderEntry = OidcProviderEntry | OAuth2ProviderEntry

export interface ResolvedProvidersOptions {
  providers: ReadonlyMap<string, ProviderEntry>
  redirectUris: ReadonlySet<string>
  callbackBase: string
  flowTtl: number
  loginCodeTtl: number
  timeoutMs: number
  keysDir: string | null
  clock: () => number
}

const COMMON_KEYS = ['id', 'name', 'type', 'issuer', 'clientId', 'clientSecret', 'scopes', 'tokenEndpointAuthMethod', 'storeTokens']
const OAUTH2_KEYS = ['authorizationEndpoint', 'tokenEndpoint', 'userinfoEndpoint', 'emailsEndpoint']

function fail (message: string): never {
  throw new ConfigError('LOGIN_PROVIDERS', message, PLUGIN)
}

/** https:, or http: on a loopback host; null when it is neither (the reason). */
export function urlProblem (raw: string): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'must be an absolute URL'
  }
  if (url.username !== '' || url.password !== '') return 'must not carry credentials'
  if (url.hash !== '') return 'must not have a fragment'
  if (url.protocol === 'https:') return null
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return null
  return 'must be an https:// URL (http:// only for a loopback host)'
}

function isHttp (raw: string): boolean {
  return new URL(raw).protocol === 'http:'
}

function checkedUrl (entry: Record<string, unknown>, key: string, where: string): string {
  const value = entry[key]
  if (typeof value !== 'string' || value === '') fail(`${where}: ${key} is required (a URL)`)
  const problem = urlProblem(value)
  if (problem !== null) fail(`${where}: ${key} ${problem}`)
  return value
}

function resolveEntry (raw: unknown, index: number, seen: Set<string>): ProviderEntry {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`entry ${index} must be an object`)
  const entry = raw as Record<string, unknown>
  if (typeof entry.id !== 'string' || !ID_PATTERN.test(entry.id)) fail(`entry ${index}: id must be a slug of lower-case letters, digits, - and _ (at most 32 characters)`)
  const id = entry.id
  const where = `entry ${index} (${JSON.stringify(id)})`
  if (seen.has(id)) fail(`${where}: the id is used by an earlier entry`)
  seen.add(id)
  const type = entry.type ?? 'oidc'
  if (type !== 'oidc' && type !== 'oauth2') fail(`${where}: type must be "oidc" or "oauth2"`)
  const allowed = type === 'oauth2' ? [...COMMON_KEYS, ...OAUTH2_KEYS] : COMMON_KEYS
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) fail(`${where}: unknown property ${JSON.stringify(key)}${OAUTH2_KEYS.includes(key) ? ' (only for "type": "oauth2")' : ''}`)
  }
  if (entry.name !== undefined && (typeof entry.name !== 'string' || entry.name.trim() === '' || entry.name.length > 100)) fail(`${where}: name must be a non-empty string of at most 100 characters`)
  if (typeof entry.clientId !== 'string' || entry.clientId === '') fail(`${where}: clientId is required`)
  if (typeof entry.clientSecret !== 'string' || entry.clientSecret === '') fail(`${where}: clientSecret is required`)
  let scopes: string[]
  if (entry.scopes === undefined) {
    scopes = type === 'oidc' ? [...DEFAULT_OIDC_SCOPES] : []
  } else {
    if (!Array.isArray(entry.scopes) || !entry.scopes.every((s) => typeof s === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) fail(`${where}: scopes must be an array of scope tokens`)
    scopes = [...new Set(entry.scopes as string[])]
  }
  if (type === 'oidc' && !scopes.includes('openid')) fail(`${where}: scopes must include "openid" (or set "type": "oauth2")`)
  const method = entry.tokenEndpointAuthMethod ?? 'client_secret_basic'
  if (!(TOKEN_ENDPOINT_AUTH_METHODS as readonly unknown[]).includes(method)) fail(`${where}: tokenEndpointAuthMethod must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`)
  if (entry.storeTokens !== undefined && typeof entry.storeTokens !== 'boolean') fail(`${where}: storeTokens must be true or false`)
  const base = {
    id,
    name: typeof entry.name === 'string' ? entry.name.trim() : id,
    clientId: entry.clientId,
    clientSecret: entry.clientSecret,
    scopes: Object.freeze(scopes),
    tokenEndpointAuthMethod: method as TokenEndpointAuthMethod,
    storeTokens: entry.storeTokens === true
  }
  if (type === 'oidc') {
    const issuer = checkedUrl(entry, 'issuer', where)
    return Object.freeze({ ...base, type, issuer, insecureLoopback: isHttp(issuer) })
  }
  const authorizationEndpoint = checkedUrl(entry, 'authorizationEndpoint', where)
  const tokenEndpoint = checkedUrl(entry, 'tokenEndpoint', where)
  const userinfoEndpoint = checkedUrl(entry, 'userinfoEndpoint', where)
  const emailsEndpoint = entry.emailsEndpoint === undefined ? null : checkedUrl(entry, 'emailsEndpoint', where)
  let issuer: string
  if (entry.issuer === undefined) {
    issuer = new URL(authorizationEndpoint).origin
  } else {
    if (typeof entry.issuer !== 'string' || entry.issuer === '' || entry.issuer !== entry.issuer.trim() || entry.issuer.length > 200) fail(`${where}: issuer must be a non-empty string without surrounding spaces`)
    issuer = entry.issuer
  }
  const insecureLoopback = [authorizationEndpoint, tokenEndpoint, userinfoEndpoint, emailsEndpoint].some((u) => u !== null && isHttp(u))
  return Object.freeze({ ...base, type, issuer, authorizationEndpoint, tokenEndpoint, userinfoEndpoint, emailsEndpoint, insecureLoopback })
}

/** The entries of LOGIN_PROVIDERS, checked; throws a ConfigError naming the entry at fault. */
export function resolveProviders (raw: readonly unknown[] | undefined): Map<string, ProviderEntry> {
  if (raw === undefined) return new Map()
  if (!Array.isArray(raw)) fail('must be a JSON array of provider objects')
  const seen = new Set<string>()
  const out = new Map<string, ProviderEntry>()
  raw.forEach((entry, index) => {
    const resolved = resolveEntry(entry, index, seen)
    out.set(resolved.id, resolved)
  })
  return out
}

/** One LOGIN_REDIRECT_URIS entry: an absolute https URL (http only on loopback), no fragment; null if fine. */
export function redirectUriProblem (raw: string): string | null {
  return urlProblem(raw)
}

export function resolveOptions (input: ProvidersOptions): ResolvedProvidersOptions {
  const check = optionChecks(PLUGIN, OptionsError)
  const providers = resolveProviders(input.providers)
  const redirectUris = new Set<string>()
  for (const uri of input.redirectUris ?? []) {
    const problem = typeof uri === 'string' ? redirectUriProblem(uri) : 'must be a string'
    if (problem !== null) throw new ConfigError('LOGIN_REDIRECT_URIS', `${JSON.stringify(uri)} ${problem}`, PLUGIN)
    redirectUris.add(uri)
  }
  const callbackBase = check.string('callbackBase', input.callbackBase).replace(/\/+$/, '')
  const problem = urlProblem(callbackBase)
  if (problem !== null) check.fail('callbackBase', problem)
  const storing = [...providers.values()].some((p) => p.storeTokens)
  if (storing && (input.keysDir === undefined || input.keysDir === '')) check.fail('keysDir', 'is required when a provider sets storeTokens (the sealing key lives there)')
  if (input.clock !== undefined && typeof input.clock !== 'function') check.fail('clock', 'must be a function')
  return Object.freeze({
    providers,
    redirectUris,
    callbackBase,
    flowTtl: check.integer('flowTtl', input.flowTtl, DEFAULT_FLOW_TTL_SECONDS, { min: 30, max: 3600 }),
    loginCodeTtl: check.integer('loginCodeTtl', input.loginCodeTtl, DEFAULT_LOGIN_CODE_TTL_SECONDS, { min: 5, max: 600 }),
    timeoutMs: check.integer('timeoutMs', input.timeoutMs, DEFAULT_TIMEOUT_MS, { min: 100, max: 60_000 }),
    keysDir: storing ? input.keysDir! : null,
    clock: input.clock ?? Date.now
  })
}
