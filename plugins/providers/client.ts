// The relying-party side of a sign-in, through openid-client: the authorization URL (PKCE S256,
// state, nonce for OIDC) and the callback (code exchange, full ID token validation for OIDC:
// issuer, audience, signature from the provider's JWKS, exp/iat, nonce; a userinfo call when
// the ID token has no email; for plain OAuth 2.0 the user endpoint and the emails endpoint).
//
// The provider metadata (OIDC discovery) is fetched on first use and kept for an hour; a
// failure is not kept: for 5 s the answer is 503 without asking again, then the next request
// tries again (a provider outage answers 503 and recovers by itself).
import * as oidc from 'openid-client'
import type { OAuth2ProviderEntry, ProviderEntry } from './options.ts'

/** Why a provider step failed: it could not be reached (503 / temporarily_unavailable) or its answer did not validate. */
export class ProviderError extends Error {
  override name = 'ProviderError'
  readonly kind: 'unavailable' | 'invalid'
  constructor (kind: 'unavailable' | 'invalid', message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.kind = kind
  }
}

/** What Gatehouse learns about the person from the provider. */
export interface ProviderProfile {
  issuer: string
  subject: string
  /** As the provider gave it (not normalised); null when it gave none. */
  email: string | null
  /** True only when the provider asserted the address as verified. */
  emailVerified: boolean
  name: string | null
  accessToken: string
  refreshToken: string | null
}

export interface AuthorizationRequest {
  state: string
  /** OIDC only. */
  nonce: string
  codeVerifier: string
}

export interface ProviderClient {
  /** The provider URL to send the browser to. Throws ProviderError('unavailable') when discovery fails. */
  authorizationUrl: (entry: ProviderEntry, request: AuthorizationRequest) => Promise<URL>
  /** Validates the callback and exchanges the code. `callbackUrl` is the callback URL with the query the provider sent. */
  complete: (entry: ProviderEntry, callbackUrl: URL, request: AuthorizationRequest) => Promise<ProviderProfile>
  /** The redirect URI registered at the provider for this entry. */
  callbackUrl: (entry: ProviderEntry) => string
}

export interface ClientOptions {
  callbackBase: string
  timeoutMs: number
  clock: () => number
  /** Seconds successful discovery metadata is kept. @default 3600 */
  metadataMaxAge?: number
}

/** Clock skew allowed for an ID token's iat, seconds (the trusted issuers' default tolerance). */
const IAT_TOLERANCE_SECONDS = 30
/** After a failed discovery, the provider is not asked again for this long (ms). */
const FAILURE_BACKOFF_MS = 5_000

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

function* causes (err: unknown): Generator<Record<string, unknown>> {
  let current: unknown = err
  for (let depth = 0; depth < 6 && current !== null && typeof current === 'object'; depth++) {
    yield current as Record<string, unknown>
    current = (current as { cause?: unknown }).cause
  }
}

/** A fault of the network or of the provider itself (5xx), as opposed to an answer that does not validate. */
export function isUnavailable (err: unknown): boolean {
  for (const e of causes(err)) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return true
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true
    if (e instanceof TypeError && e.message === 'fetch failed') return true
    if (typeof e.status === 'number' && e.status >= 500) return true
    if (typeof Response !== 'undefined' && e instanceof Response && e.status >= 500) return true
  }
  return false
}

function classify (err: unknown, step: string): ProviderError {
  if (err instanceof ProviderError) return err
  const reason = (err as Error)?.message ?? String(err)
  return new ProviderError(isUnavailable(err) ? 'unavailable' : 'invalid', `${step}: ${reason}`, { cause: err })
}

function clientAuth (entry: ProviderEntry): oidc.ClientAuth {
  return entry.tokenEndpointAuthMethod === 'client_secret_post' ? oidc.ClientSecretPost(entry.clientSecret) : oidc.ClientSecretBasic(entry.clientSecret)
}

function oauth2Configuration (entry: OAuth2ProviderEntry, timeoutSeconds: number): oidc.Configuration {
  const config = new oidc.Configuration({
    issuer: entry.issuer,
    authorization_endpoint: entry.authorizationEndpoint,
    token_endpoint: entry.tokenEndpoint,
    userinfo_endpoint: entry.userinfoEndpoint
  }, entry.clientId, { client_secret: entry.clientSecret, token_endpoint_auth_method: entry.tokenEndpointAuthMethod }, clientAuth(entry))
  // Plain http: is accepted only for loopback hosts (options.ts refuses any other).
  if (entry.insecureLoopback) oidc.allowInsecureRequests(config)
  config.timeout = timeoutSeconds
  return config
}

function text (value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null
}

async function json (response: Response, step: string): Promise<unknown> {
  if (!response.ok) {
    throw new ProviderError(response.status >= 500 ? 'unavailable' : 'invalid', `${step}: HTTP ${response.status}`)
  }
  try {
    return await response.json()
  } catch (err) {
    throw new ProviderError('invalid', `${step}: the answer is not JSON`, { cause: err })
  }
}

export function createProviderClient (options: ClientOptions): ProviderClient {
  const timeoutSeconds = Math.max(1, Math.ceil(options.timeoutMs / 1000))
  const maxAgeMs = (options.metadataMaxAge ?? 3600) * 1000
  const configs = new Map<string, { config: Promise<oidc.Configuration>, at: number }>()
  const failures = new Map<string, number>()

  function callbackUrl (entry: ProviderEntry): string {
    return `${options.callbackBase}/${entry.id}/callback`
  }

  async function configuration (entry: ProviderEntry): Promise<oidc.Configuration> {
    const cached = configs.get(entry.id)
    if (cached !== undefined && options.clock() - cached.at < maxAgeMs) return await cached.config
    // Shortly after a failed discovery the answer is the same 503, without asking the provider again.
    const failed = failures.get(entry.id)
    if (failed !== undefined && options.clock() - failed < FAILURE_BACKOFF_MS) throw new ProviderError('unavailable', `discovery of ${entry.issuer} failed less than ${FAILURE_BACKOFF_MS / 1000} s ago`)
    let pending: Promise<oidc.Configuration>
    if (entry.type === 'oauth2') {
      pending = Promise.resolve(oauth2Configuration(entry, timeoutSeconds))
    } else {
      pending = oidc.discovery(new URL(entry.issuer), entry.clientId, { client_secret: entry.clientSecret, token_endpoint_auth_method: entry.tokenEndpointAuthMethod }, clientAuth(entry), {
        // The ID token's signature is checked against the provider's JWKS even though it came
        // straight from the token endpoint (openid-client skips that by default).
        execute: entry.insecureLoopback ? [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks] : [oidc.enableNonRepudiationChecks],
        timeout: timeoutSeconds
      }).then((config) => {
        config.timeout = timeoutSeconds
        return config
      })
    }
    const slot = { config: pending, at: options.clock() }
    configs.set(entry.id, slot)
    try {
      return await pending
    } catch (err) {
      // Not kept: a request after the back-off tries again.
      if (configs.get(entry.id) === slot) configs.delete(entry.id)
      failures.set(entry.id, options.clock())
      throw new ProviderError('unavailable', `discovery of ${entry.issuer}: ${(err as Error).message}`, { cause: err })
    }
  }

  async function oauth2Profile (entry: OAuth2ProviderEntry, config: oidc.Configuration, accessToken: string): Promise<Omit<ProviderProfile, 'accessToken' | 'refreshToken'>> {
    const headers = () => new Headers({ accept: 'application/json', 'user-agent': 'gatehouse' })
    let user: unknown
    try {
      user = await json(await oidc.fetchProtectedResource(config, accessToken, new URL(entry.userinfoEndpoint), 'GET', undefined, headers()), 'user endpoint')
    } catch (err) {
      throw classify(err, 'user endpoint')
    }
    if (user === null || typeof user !== 'object' || Array.isArray(user)) throw new ProviderError('invalid', 'user endpoint: not a JSON object')
    const u = user as Record<string, unknown>
    const rawSubject = u.sub ?? u.id
    const subject = typeof rawSubject === 'number' && Number.isSafeInteger(rawSubject) ? String(rawSubject) : text(rawSubject)
    if (subject === null || subject.length > 255) throw new ProviderError('invalid', 'user endpoint: no usable "sub" or "id"')
    let email = text(u.email)
    let emailVerified = email !== null && u.email_verified === true
    if (entry.emailsEndpoint !== null) {
      let list: unknown
      try {
        list = await json(await oidc.fetchProtectedResource(config, accessToken, new URL(entry.emailsEndpoint), 'GET', undefined, headers()), 'emails endpoint')
      } catch (err) {
        throw classify(err, 'emails endpoint')
      }
      if (!Array.isArray(list)) throw new ProviderError('invalid', 'emails endpoint: not a JSON array')
      const entries = list.filter((e): e is Record<string, unknown> => e !== null && typeof e === 'object' && text((e as Record<string, unknown>).email) !== null)
      // The primary address if it is verified; else none is asserted (an unverified primary is only a hint).
      const primary = entries.find((e) => e.primary === true)
      if (primary !== undefined) {
        email = primary.email as string
        emailVerified = primary.verified === true
      } else {
        emailVerified = false
      }
    }
    return { issuer: entry.issuer, subject, email, emailVerified, name: text(u.name) ?? text(u.login) }
  }

  return {
    callbackUrl,

    async authorizationUrl (entry, request) {
      const config = await configuration(entry)
      const parameters: Record<string, string> = {
        redirect_uri: callbackUrl(entry),
        response_type: 'code',
        state: request.state,
        code_challenge: await oidc.calculatePKCECodeChallenge(request.codeVerifier),
        code_challenge_method: 'S256'
      }
      if (entry.scopes.length > 0) parameters.scope = entry.scopes.join(' ')
      if (entry.type === 'oidc') parameters.nonce = request.nonce
      return oidc.buildAuthorizationUrl(config, parameters)
    },

    async complete (entry, current, request) {
      const config = await configuration(entry)
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>
      try {
        tokens = await oidc.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: request.codeVerifier,
          expectedState: request.state,
          ...(entry.type === 'oidc' ? { expectedNonce: request.nonce, idTokenExpected: true } : {})
        })
      } catch (err) {
        throw classify(err, 'code exchange')
      }
      const accessToken = tokens.access_token
      const refreshToken = typeof tokens.refresh_token === 'string' ? tokens.refresh_token : null
      if (entry.type === 'oauth2') return { ...await oauth2Profile(entry, config, accessToken), accessToken, refreshToken }

      const claims = tokens.claims()
      if (claims === undefined) throw new ProviderError('invalid', 'code exchange: no ID token')
      // openid-client checks exp (and nbf) but lets an iat in the future through.
      if (typeof claims.iat !== 'number' || claims.iat > Date.now() / 1000 + IAT_TOLERANCE_SECONDS) throw new ProviderError('invalid', 'code exchange: the ID token is issued in the future')
      let email = text(claims.email)
      let emailVerified = email !== null && claims.email_verified === true
      let name = text(claims.name)
      // Many providers put the profile claims in the userinfo answer only (OIDC Core §5.4).
      if (email === null && config.serverMetadata().userinfo_endpoint !== undefined) {
        let info: oidc.UserInfoResponse
        try {
          info = await oidc.fetchUserInfo(config, accessToken, claims.sub)
        } catch (err) {
          throw classify(err, 'userinfo')
        }
        email = text(info.email)
        emailVerified = email !== null && info.email_verified === true
        name ??= text(info.name)
      }
      return { issuer: claims.iss, subject: claims.sub, email, emailVerified, name, accessToken, refreshToken }
    }
  }
}
