// createTokens: Gatehouse's own access tokens as a service, composed of the key ring
// (key-ring.ts), the verifier of signatures and claims (access-token-verifier.ts) and the
// principal behind a token (principal.ts). gatehouse-tokens decorates `fastify.tokens` with it;
// tests and tools can build one without Fastify.
import { randomUUID } from 'node:crypto'
import type { AuthUser } from '../../lib/auth-user.ts'
import { bearerError } from '../../lib/errors.ts'
import type { Bus } from '../redis/index.ts'
import type { Store } from '../store/index.ts'
import { createAccessTokenVerifier, FOREIGN } from './access-token-verifier.ts'
import { cacheKeyOf } from '../../lib/verified-cache.ts'
import { KEYS_CHANNEL, openKeyRing, type KeyRingLog } from './key-ring.ts'
import type { PublicJwk } from './keys.ts'
import type { ResolvedTokensOptions } from './options.ts'
import { createPrincipals, type Principals } from './principal.ts'
import type { UserState } from './state.ts'

export interface SignableUser {
  id: string
  roles: readonly string[]
  tokenVersion: number
}

export interface SignOptions {
  /** Refresh family (session) id: required for a user token. */
  sid?: string
  /** OAuth client of a client_credentials token (then `user.id` is the client id and there is no sid). */
  clientId?: string
  scope?: string
  /** RFC 8176 methods of the session's authentication. @default ['pwd'] for a user token, none for a client token */
  amr?: readonly string[]
  /**
   * When the user authenticated (seconds since the epoch), carried as `auth_time` (OIDC Core §2,
   * RFC 9470): a session's tokens keep the time of its login across refreshes.
   * @default the token's `iat` for a user token, none for a client token
   */
  authTime?: number
}

export interface SignedAccessToken {
  access_token: string
  expires_in: number
}

export interface TokensStats {
  keys: number
  verifiedCacheSize: number
  revokedSessions: number
  keyReloads: number
}

export interface TokensDeps {
  store: Store
  bus: Bus
  log: KeyRingLog
}

function checkSignable (user: SignableUser, { sid, clientId, scope, amr, authTime }: SignOptions): void {
  if (user === null || typeof user !== 'object' || typeof user.id !== 'string' || user.id === '') throw new TypeError('tokens.sign: user.id must be a non-empty string')
  if (!Array.isArray(user.roles) || !user.roles.every((r) => typeof r === 'string')) throw new TypeError('tokens.sign: user.roles must be an array of strings')
  if (!Number.isSafeInteger(user.tokenVersion) || user.tokenVersion < 0) throw new TypeError('tokens.sign: user.tokenVersion must be a non-negative integer')
  if (clientId !== undefined) {
    if (clientId !== user.id) throw new TypeError('tokens.sign: a client token is signed for { id: clientId }')
    if (sid !== undefined) throw new TypeError('tokens.sign: a client token has no sid')
  } else if (typeof sid !== 'string' || sid === '') {
    throw new TypeError('tokens.sign: a user token needs options.sid (its refresh family id)')
  }
  if (scope !== undefined && typeof scope !== 'string') throw new TypeError('tokens.sign: scope must be a string')
  if (amr !== undefined && (!Array.isArray(amr) || amr.length === 0 || !amr.every((m) => typeof m === 'string' && m !== ''))) throw new TypeError('tokens.sign: amr must be a non-empty array of strings')
  if (authTime !== undefined && (!Number.isSafeInteger(authTime) || authTime < 0)) throw new TypeError('tokens.sign: authTime must be whole seconds since the epoch')
  if (authTime !== undefined && clientId !== undefined) throw new TypeError('tokens.sign: a client token has no authTime')
}

export async function createTokens (options: ResolvedTokensOptions, { store, bus, log }: TokensDeps) {
  const { issuer, audience, accessTokenTtl } = options
  const ring = openKeyRing({
    keysDir: options.keysDir,
    signingAlgorithm: options.signingAlgorithm,
    generateKeys: options.generateKeys,
    keysReloadInterval: options.keysReloadInterval,
    verifier: { issuer, audience, accessTokenTtl, clockTolerance: options.clockTolerance }
  }, log)
  const verifier = createAccessTokenVerifier({ issuer, accessTokenTtl, verifiedCacheSize: options.verifiedCacheSize, offload: options.signatureCheck === 'pool' }, ring)
  let principals: Principals
  try {
    principals = await createPrincipals({
      issuer,
      revocationSpanSec: accessTokenTtl + options.clockTolerance,
      userStateTtl: options.userStateTtl,
      userStateCacheSize: options.userStateCacheSize
    }, { store, bus, log })
  } catch (err) {
    ring.close()
    throw err
  }
  // `gatehouse keys rotate|retire` announces a change on this channel.
  bus.subscribe(KEYS_CHANNEL, () => {
    ring.scheduleReload().catch(() => {})
  })

  /** verifyFast, but undefined (no error) for a token another issuer names. */
  function verifyOwn (token: string): AuthUser | Promise<AuthUser> | undefined {
    if (typeof token !== 'string') throw bearerError('INVALID_TOKEN')
    const now = Date.now()
    const key = cacheKeyOf(token)
    const cached = verifier.lookup(token, key, now)
    if (cached !== undefined) return principals.principal(cached, now)
    const entry = verifier.verify(token, key)
    if (entry === FOREIGN) return undefined
    if (entry instanceof Promise) return entry.then((e) => principals.principal(e, Date.now()))
    return principals.principal(entry, now)
  }

  function verifyFast (token: string): AuthUser | Promise<AuthUser> {
    const result = verifyOwn(token)
    if (result === undefined) throw bearerError('UNTRUSTED_ISSUER')
    return result
  }

  return {
    issuer,
    audience,
    accessTokenTtl,
    /** The current key ring: `signing` signs; every key in `active` verifies. */
    keys: ring.keys,

    async sign (user: SignableUser, signOptions: SignOptions = {}): Promise<SignedAccessToken> {
      checkSignable(user, signOptions)
      const { sid, clientId, scope, amr, authTime } = signOptions
      const iat = Math.floor(Date.now() / 1000)
      const payload: Record<string, unknown> = {
        iss: issuer,
        sub: user.id,
        aud: audience,
        exp: iat + accessTokenTtl,
        iat,
        jti: randomUUID(),
        roles: [...user.roles]
      }
      if (sid !== undefined) payload.sid = sid
      if (clientId === undefined) {
        payload.amr = [...(amr ?? ['pwd'])]
        payload.auth_time = authTime ?? iat
      }
      payload.ver = user.tokenVersion
      if (clientId !== undefined) {
        payload.client_id = clientId
        if (scope !== undefined) payload.scope = scope
      }
      return { access_token: ring.signerOf(ring.signing())(payload), expires_in: accessTokenTtl }
    },

    /** Full verification of one of our access tokens, then revocation and user state. */
    async verify (token: string): Promise<AuthUser> {
      return await verifyFast(token)
    },

    /**
     * Like verify, but answers synchronously when everything it needs is in memory (the hot path of
     * `authenticate`): returns an AuthUser, or a Promise when the database must be asked; throws
     * coded errors synchronously.
     */
    verifyFast,

    /**
     * `verifyFast` for a caller that has other issuers to ask: undefined, instead of an
     * UNTRUSTED_ISSUER error, for a token whose `iss` is not ours (authenticate's hot path for
     * the tokens of trusted issuers).
     */
    verifyOwn,

    /** `verifyFast` for a token already in the verified cache; undefined when it is not. */
    verifyCached (token: string): AuthUser | Promise<AuthUser> | undefined {
      if (typeof token !== 'string') return undefined
      const now = Date.now()
      const entry = verifier.lookup(token, cacheKeyOf(token), now)
      return entry === undefined ? undefined : principals.principal(entry, now)
    },

    userState: principals.userState as (userId: string) => Promise<UserState | null>,
    /** Every instance drops its cached state of `userId` (call after status/roles/deletion/tokenVersion changes). */
    userChanged: principals.userChanged,
    /** Every instance drops its cached state of OAuth client `clientId` (call after revoking it). */
    clientChanged: principals.clientChanged,
    /** Access tokens of these sessions fail from now on with TOKEN_REVOKED, on every instance. */
    revokeSids: principals.revokeSids,
    jwks: ring.jwks as () => { keys: PublicJwk[] },
    /** Re-reads the keys folder now. */
    async reloadKeys (): Promise<void> {
      ring.reloadNow()
    },
    stats: (): TokensStats => ({ keys: ring.size(), verifiedCacheSize: verifier.size(), revokedSessions: principals.revokedSessions(), keyReloads: ring.reloads() }),
    /** Stops the reload and prune timers (the plugin calls it when Fastify closes). */
    close (): void {
      ring.close()
      principals.close()
    }
  }
}

export type Tokens = Awaited<ReturnType<typeof createTokens>>
