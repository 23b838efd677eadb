// gatehouse-authenticate: `fastify.authenticate`, the onRequest hook that turns the Authorization
// header into `request.user` (or a coded error with its WWW-Authenticate challenge).
//
//   Bearer  -> our issuer: fastify.tokens; an allowlisted issuer: fastify.trustedIssuers; else UNTRUSTED_ISSUER
//   Basic   -> fastify.credentials.verifyBasic, then the user's current state (fastify.tokens.userState)
//   ApiKey  -> fastify.credentials.verifyApiKey, then the same state check
//
// Every collaborator is optional: registered with only gatehouse-trusted-issuers it is the whole
// authentication of a resource server with no database. The hook is callback-style so that a
// repeated bearer token whose state is in memory is accepted without a single await.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { AuthScheme, AuthUser } from '../../lib/auth-user.ts'
import { basicError, bearerError, gatehouseError, isGatehouseError, missingAuthorization, REALM, type GatehouseError } from '../../lib/errors.ts'
import { userLoader } from '../tokens/index.ts'
import { peekIssuer } from '../../lib/jwt.ts'
import { optionChecks } from '../../lib/options.ts'
import { AUTH_SCHEMES, decodeBasic, hasDuplicateAuthorization, malformed, MAX_BEARER_LENGTH, parseAuthorization } from './parse.ts'

export interface AuthenticateOptions {
  /**
   * Schemes `fastify.authenticate` accepts. A scheme outside the list is answered like an unknown
   * one (400 MALFORMED_AUTHORIZATION).
   * @default every scheme whose verifier is registered: 'bearer' (gatehouse-tokens or
   * gatehouse-trusted-issuers), 'basic' and 'apikey' (gatehouse-credentials)
   */
  schemes?: AuthScheme[]
  /**
   * `iss` put on users authenticated by Basic or ApiKey when gatehouse-tokens is not registered.
   * @default fastify.tokens.issuer, else 'gatehouse'
   */
  issuer?: string
}

export type AuthenticateHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: authenticates the request with the plugin's schemes and sets `request.user`. */
    authenticate: AuthenticateHook
    /** A hook like `authenticate` that accepts only `schemes` (e.g. `['bearer']` for a token-only route). */
    createAuthenticate: (options?: AuthenticateOptions) => AuthenticateHook
  }
}

/**
 * What authenticate needs from gatehouse-tokens. Structural, like the two below, so that this
 * plugin's types (and a resource server's build) never reach the store, Redis or Prisma.
 */
interface TokenVerifier {
  readonly issuer: string
  verifyFast: (token: string) => AuthUser | Promise<AuthUser>
  /** verifyFast, but undefined instead of UNTRUSTED_ISSUER for another issuer's token. */
  verifyOwn?: (token: string) => AuthUser | Promise<AuthUser> | undefined
  userState: (userId: string) => Promise<PrincipalState | null>
}

/** The current state of a user (gatehouse-tokens' UserState). */
interface PrincipalState {
  id: string
  email: string
  status: string
  deleted: boolean
  roles: readonly string[]
}

/** What authenticate needs from gatehouse-credentials. */
interface CredentialVerifier {
  verifyBasic: (email: string, password: string) => Promise<{ userId: string }>
  verifyApiKey: (key: string) => Promise<{ userId: string, apiKeyId?: string }>
}

/** What authenticate needs from gatehouse-trusted-issuers. */
interface ExternalVerifier {
  has: (iss: unknown) => boolean
  verify: (token: string) => Promise<AuthUser>
  /** A token of its verified-token cache, synchronously (undefined when not cached). */
  cached?: (token: string) => AuthUser | undefined
}

interface Collaborators {
  tokens: TokenVerifier | null
  /** Current state of a user: fastify.tokens.userState, or a direct read when only the store is registered. */
  userState: ((userId: string) => Promise<PrincipalState | null>) | null
  /** `iss` of this server's own credentials. */
  issuer: string
  credentials: CredentialVerifier | null
  trusted: ExternalVerifier | null
}

/** Answers with a 401 carrying the challenge of the scheme that failed. */
function challengeFor (scheme: AuthScheme, err: unknown): unknown {
  if (!isGatehouseError(err) || err.statusCode !== 401) return err
  if (scheme === 'basic') {
    if (err.headers?.['www-authenticate']?.startsWith('Basic') === true) return err
    return basicError(err.code, err.message)
  }
  if (scheme === 'apikey') {
    if (err.headers?.['www-authenticate'] !== undefined) return err
    return gatehouseError(err.code, err.message, { headers: { 'www-authenticate': `ApiKey realm="${REALM}"` } })
  }
  if (err.headers?.['www-authenticate'] !== undefined) return err
  return bearerError(err.code, err.message)
}

const check = optionChecks('gatehouse-authenticate')

function verifierOf (scheme: AuthScheme): string {
  return scheme === 'bearer' ? 'gatehouse-tokens or gatehouse-trusted-issuers' : 'gatehouse-credentials'
}

export function resolveOptions (options: AuthenticateOptions, available: ReadonlySet<AuthScheme>): ReadonlySet<AuthScheme> {
  if (options.schemes === undefined) return available
  if (!Array.isArray(options.schemes) || options.schemes.length === 0) check.fail('schemes', 'must be a non-empty array')
  for (const scheme of options.schemes) {
    if (!AUTH_SCHEMES.includes(scheme)) check.fail('schemes', `has an unknown scheme ${JSON.stringify(scheme)} (use ${AUTH_SCHEMES.join(', ')})`)
    if (!available.has(scheme)) check.fail('schemes', `has ${scheme}, which needs ${verifierOf(scheme)} registered first`)
  }
  return new Set(options.schemes)
}

/**
 * At onReady: a verifier registered after authenticate would be silently left out of the
 * default schemes (and of `request.user`'s sources). Fail instead, naming what to move.
 */
function checkComposition (fastify: FastifyInstance, collaborators: Collaborators): void {
  const late: string[] = []
  if (collaborators.tokens === null && fastify.hasDecorator('tokens')) late.push('gatehouse-tokens')
  if (collaborators.trusted === null && fastify.hasDecorator('trustedIssuers')) late.push('gatehouse-trusted-issuers')
  if (collaborators.credentials === null && fastify.hasDecorator('credentials')) late.push('gatehouse-credentials')
  if (late.length > 0) check.fail('schemes', `cannot use ${late.join(', ')}: register ${late.length === 1 ? 'it' : 'them'} before gatehouse-authenticate`)
}

/**
 * The hook factory, without Fastify: `collaborators` are whatever is registered. Exported for
 * apps that build their own hook around it.
 */
export function createAuthenticateHook (collaborators: Collaborators, schemes: ReadonlySet<AuthScheme>): AuthenticateHook {
  const { tokens, credentials, trusted, userState, issuer } = collaborators

  async function userFromState (userId: string, scheme: AuthScheme): Promise<AuthUser> {
    if (userState === null) throw new Error('gatehouse-authenticate: no user state source (register gatehouse-tokens or gatehouse-store)')
    const state = await userState(userId)
    if (state === null || state.deleted) throw gatehouseError('USER_NOT_FOUND')
    if (state.status !== 'active') throw gatehouseError('ACCOUNT_DISABLED')
    return { id: state.id, sub: state.id, iss: issuer, roles: state.roles as string[], scheme, external: false, email: state.email }
  }

  async function basic (credentialsText: string): Promise<AuthUser> {
    const { email, password } = decodeBasic(credentialsText)
    const { userId } = await (credentials as CredentialVerifier).verifyBasic(email, password)
    return await userFromState(userId, 'basic')
  }

  async function apiKey (key: string): Promise<AuthUser> {
    const { userId } = await (credentials as CredentialVerifier).verifyApiKey(key)
    return await userFromState(userId, 'apikey')
  }

  function external (token: string, iss: unknown): Promise<AuthUser> {
    if (trusted !== null && trusted.has(iss)) return trusted.verify(token)
    throw bearerError('UNTRUSTED_ISSUER')
  }

  /** A token that is not ours: an allowlisted issuer's goes to its verifier, any other is refused. */
  function foreign (token: string, err: unknown): Promise<AuthUser> {
    if (trusted === null) throw err
    const iss = peekIssuer(token)
    if (typeof iss === 'string' && trusted.has(iss)) return trusted.verify(token)
    throw err
  }

  function isUntrustedIssuer (err: unknown): boolean {
    return isGatehouseError(err) && err.code === 'UNTRUSTED_ISSUER'
  }

  /** AuthUser, or a Promise of one; throws coded errors synchronously. */
  function bearer (token: string): AuthUser | Promise<AuthUser> {
    if (token.length > MAX_BEARER_LENGTH) throw bearerError('INVALID_TOKEN', 'The token is too large')
    // A repeated external token comes straight from its verified cache (one Map lookup), without
    // going through our own verifier first only to be refused as another issuer's.
    const cachedExternal = trusted?.cached?.(token)
    if (cachedExternal !== undefined) return cachedExternal
    if (tokens === null) {
      const iss = peekIssuer(token)
      if (iss === undefined) throw bearerError('MISSING_CLAIM', 'The token lacks the iss claim')
      if (typeof iss !== 'string') throw bearerError('UNTRUSTED_ISSUER')
      if ((trusted as ExternalVerifier).has(iss)) return (trusted as ExternalVerifier).verify(token)
      throw bearerError('UNTRUSTED_ISSUER')
    }
    // Our tokens first (the hot path). Another issuer's token (verifyOwn: undefined, no error made)
    // goes to the trusted issuers, which refuse one they do not list with UNTRUSTED_ISSUER.
    let result: AuthUser | Promise<AuthUser>
    try {
      if (trusted !== null && tokens.verifyOwn !== undefined) {
        const own = tokens.verifyOwn(token)
        if (own === undefined) return trusted.verify(token)
        result = own
      } else {
        result = tokens.verifyFast(token)
      }
    } catch (err) {
      if (isUntrustedIssuer(err)) return foreign(token, err)
      throw err
    }
    if (result instanceof Promise && trusted !== null) {
      return result.catch((err: unknown) => isUntrustedIssuer(err) ? foreign(token, err) : Promise.reject(err))
    }
    return result
  }

  return function authenticate (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const header = request.headers.authorization
    if (header === undefined || header === '') {
      done(missingAuthorization())
      return
    }
    let scheme: AuthScheme = 'bearer'
    let result: AuthUser | Promise<AuthUser>
    try {
      if (hasDuplicateAuthorization(request.raw.rawHeaders)) throw malformed('More than one Authorization header')
      const parsed = parseAuthorization(header)
      scheme = parsed.scheme
      if (!schemes.has(scheme)) throw malformed(`The ${scheme === 'apikey' ? 'ApiKey' : scheme === 'basic' ? 'Basic' : 'Bearer'} scheme is not accepted here`)
      if (scheme === 'bearer') result = bearer(parsed.credentials)
      else if (scheme === 'basic') result = basic(parsed.credentials)
      else result = apiKey(parsed.credentials)
    } catch (err) {
      done(challengeFor(scheme, err) as GatehouseError)
      return
    }
    if (result instanceof Promise) {
      result.then((user) => {
        request.user = user
        done()
      }, (err: unknown) => {
        done(challengeFor(scheme, err) as GatehouseError)
      })
      return
    }
    request.user = result
    done()
  }
}

async function authenticatePlugin (fastify: FastifyInstance, options: AuthenticateOptions): Promise<void> {
  const tokens: TokenVerifier | null = fastify.hasDecorator('tokens') ? fastify.tokens : null
  const collaborators: Collaborators = {
    tokens,
    userState: tokens !== null ? tokens.userState : fastify.hasDecorator('store') ? userLoader(fastify.store) : null,
    issuer: tokens?.issuer ?? options.issuer ?? 'gatehouse',
    credentials: fastify.hasDecorator('credentials') ? (fastify as unknown as { credentials: CredentialVerifier }).credentials : null,
    trusted: fastify.hasDecorator('trustedIssuers') ? (fastify as unknown as { trustedIssuers: ExternalVerifier }).trustedIssuers : null
  }
  const available = new Set<AuthScheme>()
  if (collaborators.tokens !== null || collaborators.trusted !== null) available.add('bearer')
  if (collaborators.credentials !== null) {
    available.add('basic')
    available.add('apikey')
  }
  if (available.size === 0) {
    check.fail('schemes', 'has no verifier: register gatehouse-tokens, gatehouse-trusted-issuers or gatehouse-credentials before it')
  }
  fastify.addHook('onReady', async () => { checkComposition(fastify, collaborators) })
  const defaults = resolveOptions(options, available)
  if (!fastify.hasRequestDecorator('user')) fastify.decorateRequest('user', null)
  fastify.decorate('authenticate', createAuthenticateHook(collaborators, defaults))
  fastify.decorate('createAuthenticate', (hookOptions: AuthenticateOptions = {}) => createAuthenticateHook(collaborators, resolveOptions(hookOptions, available)))
}

export const authenticate = fp(authenticatePlugin, { name: 'gatehouse-authenticate', fastify: '5.x' })
export default authenticate
export { parseAuthorization, decodeBasic, hasDuplicateAuthorization } from './parse.ts'
export { errorHandler, errorSchema } from '../../lib/error-handler.ts'
export { ERRORS, gatehouseError, isGatehouseError, missingAuthorization, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
export type { AuthUser, AuthScheme } from '../../lib/auth-user.ts'
