// The access-token verifier of gatehouse-tokens: shape, header, signature with the one ring key
// the kid names, claims (jwt.ts, verify.ts), and the cache of verified tokens. What can change
// after issuance (revocation, the user's state) is principal.ts's concern.
import { bearerError } from '../../lib/errors.ts'
import { checkShape, peekIssuer } from '../../lib/jwt.ts'
import { Doorkeeper, ExpiringLru } from '../../lib/verified-cache.ts'
import { checkHeader, parseHeaderSegment, type AccessTokenClaims } from './jwt.ts'
import type { LiveKeyRing, RingKey } from './key-ring.ts'

export interface VerifiedToken {
  /** The whole token: a cache hit must equal it (the cache is keyed by its tail). */
  token: string
  claims: Readonly<AccessTokenClaims>
  sub: string
  sid: string | undefined
  ver: number
  clientId: string | undefined
}

export interface AccessTokenVerifierSettings {
  issuer: string
  accessTokenTtl: number
  verifiedCacheSize: number
  /** Check signatures on libuv's thread pool instead of the JavaScript thread. */
  offload: boolean
}

/** What `verify` answers, without an error, for a token another issuer names (not one of ours). */
export const FOREIGN: unique symbol = Symbol('gatehouse-tokens: another issuer\'s token')

/** Header segments already checked, each naming a key of the ring (a handful: one per key). */
const KNOWN_HEADERS_MAX = 32

export function createAccessTokenVerifier (settings: AccessTokenVerifierSettings, ring: Pick<LiveKeyRing, 'get' | 'scheduleReload' | 'onChange'>) {
  const { issuer, offload } = settings
  const ttlMs = settings.accessTokenTtl * 1000
  const verified = new ExpiringLru<VerifiedToken>(settings.verifiedCacheSize)
  const doorkeeper = new Doorkeeper(settings.verifiedCacheSize)
  /** Header segment -> the ring key it names, for headers that passed every header rule. */
  const knownHeaders = new Map<string, RingKey>()

  ring.onChange((removed) => {
    knownHeaders.clear()
    // A retired key's tokens must not survive in the cache.
    if (removed) verified.clear()
  })

  /** The entry of a verified token; it enters the cache on its second verification. */
  function remember (token: string, key: string, claims: AccessTokenClaims): VerifiedToken {
    const entry: VerifiedToken = { token, claims, sub: claims.sub, sid: claims.sid, ver: claims.ver, clientId: claims.client_id }
    if (!doorkeeper.admit(key)) return entry
    // Shared by every request that presents the token from now on.
    Object.freeze(claims.roles)
    Object.freeze(claims)
    const now = Date.now()
    // Never past exp (the tolerance only widens the full check) nor past iat + TTL (maxAge).
    const expiresAt = Math.min(claims.exp * 1000, claims.iat * 1000 + ttlMs, now + ttlMs)
    if (expiresAt > now) verified.set(key, entry, expiresAt)
    return entry
  }

  function learnHeader (segment: string, ringKey: RingKey): void {
    if (knownHeaders.size >= KNOWN_HEADERS_MAX) knownHeaders.clear()
    knownHeaders.set(segment, ringKey)
  }

  /**
   * The signature with `ringKey`, then the claims; then, for a header seen for the first time,
   * the header rules (so that a bad signature is reported as such whatever the header says).
   */
  function checkWith (token: string, key: string, ringKey: RingKey, header?: Record<string, unknown>, segment?: string): VerifiedToken | Promise<VerifiedToken> {
    const accept = (claims: AccessTokenClaims): VerifiedToken => {
      if (header !== undefined) {
        checkHeader(header)
        learnHeader(segment as string, ringKey)
      }
      return remember(token, key, claims)
    }
    if (offload) return ringKey.verifier.verifyAsync(token).then(accept)
    return accept(ringKey.verifier.verifySync(token))
  }

  return {
    /** The cached entry of exactly this token (`key` is its cacheKeyOf), or undefined. */
    lookup (token: string, key: string, now: number): VerifiedToken | undefined {
      const entry = verified.get(key, now)
      return entry !== undefined && entry.token === token ? entry : undefined
    },

    /**
     * Full verification of a token that is not cached. Throws coded bearer errors; a token whose
     * `iss` is not ours (and whose kid names no key of ours) is FOREIGN, so that authenticate can
     * hand it to the trusted issuers without an error made and thrown away on every request.
     */
    verify (token: string, key: string): VerifiedToken | Promise<VerifiedToken> | typeof FOREIGN {
      checkShape(token)
      const segment = token.slice(0, token.indexOf('.'))
      const known = knownHeaders.get(segment)
      if (known !== undefined) return checkWith(token, key, known)
      const header = parseHeaderSegment(segment)
      const kid = header.kid
      const ringKey = typeof kid === 'string' ? ring.get(kid) : undefined
      // One of our keys, in its own algorithm: the signature is checked before anything else.
      if (ringKey !== undefined && header.alg === ringKey.key.alg) return checkWith(token, key, ringKey, header, segment)
      // Not a token of a key we hold. Whose is it? Another issuer's goes elsewhere.
      const iss = peekIssuer(token)
      if (iss === undefined) throw bearerError('MISSING_CLAIM', 'The token lacks the iss claim')
      // Anything but our exact string (another string, an array that contains it, ...) is not us.
      if (iss !== issuer) return FOREIGN
      const checked = checkHeader(header)
      if (ringKey !== undefined) throw bearerError('INVALID_TOKEN', 'The token algorithm does not match its key')
      // An unknown kid that claims our issuer: another instance or the CLI may have rotated.
      return ring.scheduleReload().then(() => {
        const reloaded = ring.get(checked.kid)
        if (reloaded === undefined) throw bearerError('INVALID_TOKEN', 'The token was not signed by a known key')
        if (reloaded.key.alg !== checked.alg) throw bearerError('INVALID_TOKEN', 'The token algorithm does not match its key')
        return remember(token, key, reloaded.verifier.verifySync(token))
      })
    },

    /** Verified tokens cached. */
    size: (): number => verified.size
  }
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>
