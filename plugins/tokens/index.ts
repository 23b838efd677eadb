// gatehouse-tokens: the signing key ring and Gatehouse's own access tokens (CONTRACT §6).
//
//   fastify.tokens.sign(user, { sid | clientId, scope })  -> { access_token, expires_in }
//   fastify.tokens.verify(token)                          -> AuthUser (signature, claims, then
//                                                            revocation and current user state)
//   fastify.tokens.jwks()                                  -> the public keys
//
// A verified token is remembered (keyed by the whole token string, never past its exp) so a
// repeated token costs a map lookup; what can change after issuance (revoked sessions, user
// status, roles, token version) is checked on every request from in-memory state that the bus
// keeps current.
import { randomUUID } from 'node:crypto'
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { SigningAlgorithm } from '../../lib/config.ts'
import type { AuthUser } from '../../lib/auth-user.ts'
import { bearerError, serviceUnavailable } from '../../lib/errors.ts'
import type { Bus } from '../redis/index.ts'
import { cacheKeyOf, Doorkeeper, ExpiringLru } from './cache.ts'
import { KEY_ALGORITHMS, loadKeyRing, looseKeyFiles, rotateKey, type KeyRing, type PublicJwk, type SigningKey } from './keys.ts'
import { CLOCK_TOLERANCE_SECONDS, checkHeader, checkIssuer, checkShape, createKeySigner, parseHeaderSegment, type AccessTokenClaims, type KeySigner } from './jwt.ts'
import { createKeyVerifier, type KeyVerifier } from './verify.ts'
import { clientLoader, loadRevokedSessions, localBus, RevokedSessions, StateCache, userLoader, type ClientState, type UserState } from './state.ts'

export interface TokensOptions {
  /** `iss` of issued tokens; verified by exact string match. */
  issuer: string
  /** `aud` of issued tokens. @default 'gatehouse' */
  audience?: string
  /** Folder of the key ring (AUTH_KEYS_DIR). */
  keysDir: string
  /** Algorithm of a key generated at first start. @default 'RS256' */
  signingAlgorithm?: SigningAlgorithm
  /** Access-token lifetime and maximum age, in seconds (ACCESS_TOKEN_TTL). @default 900 */
  accessTokenTtl?: number
  /** Accepted clock skew for exp/nbf/iat, in seconds. @default 30 */
  clockTolerance?: number
  /** Generate a key when the folder holds none (with a loud warning). @default true */
  generateKeys?: boolean
  /**
   * Verified tokens remembered. A token is remembered the second time it is verified (the first
   * sighting only marks it), so a stream of tokens that never repeat does not churn the cache.
   * @default 10000
   */
  verifiedCacheSize?: number
  /**
   * Where the signature of a token that is not in the verified cache is checked: 'pool' on
   * libuv's thread pool (in parallel with the JavaScript thread, as jose does through WebCrypto),
   * 'inline' on the JavaScript thread (no thread hand-off: the better choice for a process
   * limited to one core).
   * @default 'pool' when os.availableParallelism() > 1, else 'inline'
   */
  signatureCheck?: 'pool' | 'inline'
  /** Users (and OAuth clients) whose state is cached. @default 10000 */
  userStateCacheSize?: number
  /** Seconds a cached user state is trusted without a change notice. @default 30 */
  userStateTtl?: number
  /**
   * Seconds between checks of the keys folder (a stat of each file; the keys are re-read only when
   * something changed), so rotations and retirements made elsewhere apply. 0 = only on an unknown
   * kid or a `keys` notice on the bus. @default 10
   */
  keysReloadInterval?: number
}

export interface ResolvedTokensOptions {
  readonly issuer: string
  readonly audience: string
  readonly keysDir: string
  readonly signingAlgorithm: SigningAlgorithm
  readonly accessTokenTtl: number
  readonly clockTolerance: number
  readonly generateKeys: boolean
  readonly verifiedCacheSize: number
  readonly signatureCheck: 'pool' | 'inline'
  readonly userStateCacheSize: number
  readonly userStateTtl: number
  readonly keysReloadInterval: number
}

export const DEFAULT_AUDIENCE = 'gatehouse'
export const DEFAULT_ACCESS_TOKEN_TTL = 900
export const DEFAULT_VERIFIED_CACHE_SIZE = 10_000
export const DEFAULT_USER_STATE_CACHE_SIZE = 10_000
export const DEFAULT_USER_STATE_TTL = 30
export const DEFAULT_KEYS_RELOAD_INTERVAL = 10
/** An unknown kid of our issuer re-reads the keys folder at most this often. */
export const KEY_RELOAD_MIN_INTERVAL_MS = 1000

function positiveInteger (name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || (value as number) < min) throw new TypeError(`gatehouse-tokens: ${name} must be an integer >= ${min}`)
  return value as number
}

export function resolveOptions (options: TokensOptions): ResolvedTokensOptions {
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('gatehouse-tokens: issuer is required')
  if (typeof options.keysDir !== 'string' || options.keysDir === '') throw new TypeError('gatehouse-tokens: keysDir is required')
  const audience = options.audience ?? DEFAULT_AUDIENCE
  if (typeof audience !== 'string' || audience === '') throw new TypeError('gatehouse-tokens: audience must be a non-empty string')
  const signingAlgorithm = options.signingAlgorithm ?? 'RS256'
  if (!KEY_ALGORITHMS.includes(signingAlgorithm)) throw new TypeError(`gatehouse-tokens: signingAlgorithm must be one of ${KEY_ALGORITHMS.join(', ')}`)
  const signatureCheck = options.signatureCheck ?? (availableParallelism() > 1 ? 'pool' : 'inline')
  if (signatureCheck !== 'pool' && signatureCheck !== 'inline') throw new TypeError("gatehouse-tokens: signatureCheck must be 'pool' or 'inline'")
  return Object.freeze({
    issuer: options.issuer,
    audience,
    keysDir: resolve(options.keysDir),
    signingAlgorithm,
    accessTokenTtl: positiveInteger('accessTokenTtl', options.accessTokenTtl, DEFAULT_ACCESS_TOKEN_TTL),
    clockTolerance: positiveInteger('clockTolerance', options.clockTolerance, CLOCK_TOLERANCE_SECONDS, 0),
    generateKeys: options.generateKeys ?? true,
    verifiedCacheSize: positiveInteger('verifiedCacheSize', options.verifiedCacheSize, DEFAULT_VERIFIED_CACHE_SIZE),
    signatureCheck,
    userStateCacheSize: positiveInteger('userStateCacheSize', options.userStateCacheSize, DEFAULT_USER_STATE_CACHE_SIZE),
    userStateTtl: positiveInteger('userStateTtl', options.userStateTtl, DEFAULT_USER_STATE_TTL, 0),
    keysReloadInterval: positiveInteger('keysReloadInterval', options.keysReloadInterval, DEFAULT_KEYS_RELOAD_INTERVAL, 0)
  })
}

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

export interface Tokens {
  readonly issuer: string
  readonly audience: string
  readonly accessTokenTtl: number
  /** The current key ring: `signing` signs; every key in `active` verifies. */
  keys: () => { signing: { kid: string, alg: SigningAlgorithm }, active: Array<{ kid: string, alg: SigningAlgorithm, createdAt: string }> }
  sign: (user: SignableUser, options?: SignOptions) => Promise<SignedAccessToken>
  /** Full verification of one of our access tokens, then revocation and user state. */
  verify: (token: string) => Promise<AuthUser>
  /**
   * Like verify, but answers synchronously when everything it needs is in memory (the hot path of
   * `authenticate`): returns an AuthUser, or a Promise when the database must be asked; throws
   * coded errors synchronously.
   */
  verifyFast: (token: string) => AuthUser | Promise<AuthUser>
  /** `verifyFast` for a token already in the verified cache; undefined when it is not. */
  verifyCached: (token: string) => AuthUser | Promise<AuthUser> | undefined
  userState: (userId: string) => Promise<UserState | null>
  /** Every instance drops its cached state of `userId` (call after status/roles/deletion/tokenVersion changes). */
  userChanged: (userId: string) => Promise<void>
  /** Every instance drops its cached state of OAuth client `clientId` (call after revoking it). */
  clientChanged: (clientId: string) => Promise<void>
  /** Access tokens of these sessions fail from now on with TOKEN_REVOKED, on every instance. */
  revokeSids: (sids: string[], untilEpochSec?: number) => Promise<void>
  jwks: () => { keys: PublicJwk[] }
  /** Re-reads the keys folder now. */
  reloadKeys: () => Promise<void>
  stats: () => TokensStats
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
  }
}

interface RingKey {
  key: SigningKey
  verifier: KeyVerifier
  sign?: KeySigner
}

interface VerifiedToken {
  /** The whole token: a cache hit must equal it (the cache is keyed by its tail). */
  token: string
  claims: Readonly<AccessTokenClaims>
  sub: string
  sid: string | undefined
  ver: number
  clientId: string | undefined
}

/** Header segments already checked, each naming a key of the ring (a handful: one per key). */
const KNOWN_HEADERS_MAX = 32

/** Names, sizes and modification times of the key files: a cheap test for "something changed". */
function folderSignature (dir: string): string {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.json') || n.endsWith('.pem')).sort().map((name) => {
      const stat = statSync(join(dir, name))
      return `${name}:${stat.size}:${stat.mtimeMs}`
    }).join('|')
  } catch {
    return ''
  }
}

function warnGenerated (fastify: FastifyInstance, dir: string, alg: SigningAlgorithm, kid: string): void {
  fastify.log.warn(
    { keysDir: dir, kid, alg },
    `AUTH_KEYS_DIR (${dir}) held no signing key, so a new ${alg} key (kid ${kid}) was generated there with mode 0600. ` +
    'This is for development only: a real deployment provides its own keys (generated once, kept in a secret store, ' +
    'mounted into every instance), because a key generated at start is lost with the container and differs between ' +
    'instances, and then tokens stop verifying after a restart or on another instance. ' +
    'Rotate with `gatehouse keys rotate`; see docs/tokens.md.'
  )
}

async function tokensPlugin (fastify: FastifyInstance, rawOptions: TokensOptions): Promise<void> {
  const options = resolveOptions(rawOptions)
  const { issuer, audience, accessTokenTtl } = options
  const toleranceSec = options.clockTolerance
  const ttlMs = accessTokenTtl * 1000
  const store = fastify.store
  const bus: Bus = fastify.hasDecorator('bus') ? fastify.bus : localBus()

  // ---- key ring -------------------------------------------------------------------------------
  mkdirSync(options.keysDir, { recursive: true, mode: 0o700 })
  let initial = loadKeyRing(options.keysDir)
  if (initial.active.length === 0 && options.generateKeys) {
    const created = rotateKey(options.keysDir, options.signingAlgorithm)
    warnGenerated(fastify, options.keysDir, created.alg, created.kid)
    initial = loadKeyRing(options.keysDir)
  }
  if (initial.active.length === 0) {
    throw new Error(`AUTH_KEYS_DIR: ${options.keysDir} holds no usable signing key${initial.rejected.length > 0 ? ` (rejected: ${initial.rejected.map((r) => `${r.file}: ${r.reason}`).join('; ')})` : ''}`)
  }
  const loose = looseKeyFiles(options.keysDir)
  if (loose.length > 0) fastify.log.warn({ keysDir: options.keysDir, files: loose }, 'AUTH_KEYS_DIR: key files readable by group or others; restrict them to mode 0600')

  let byKid = new Map<string, RingKey>()
  let signing!: RingKey
  let jwksDocument: { keys: PublicJwk[] } = { keys: [] }
  let keyReloads = 0
  const verifierSettings = { issuer, audience, accessTokenTtl, clockTolerance: toleranceSec }

  function applyRing (ring: KeyRing): void {
    for (const r of ring.rejected) fastify.log.warn({ keysDir: ring.dir, file: r.file, reason: r.reason }, 'AUTH_KEYS_DIR: a key file was ignored')
    if (ring.active.length === 0) {
      fastify.log.error({ keysDir: ring.dir }, 'AUTH_KEYS_DIR: no usable key after reload; keeping the current keys')
      return
    }
    const next = new Map<string, RingKey>()
    for (const key of ring.active) next.set(key.kid, byKid.get(key.kid) ?? { key, verifier: createKeyVerifier(key, verifierSettings) })
    let removed = false
    for (const kid of byKid.keys()) if (!next.has(kid)) removed = true
    const previousSigner = byKid.size > 0 ? signing.key.kid : undefined
    byKid = next
    signing = next.get(ring.active[0].kid) as RingKey
    jwksDocument = Object.freeze({ keys: ring.active.map((k) => Object.freeze({ ...k.publicJwk })) }) as { keys: PublicJwk[] }
    knownHeaders.clear()
    // A retired key's tokens must not survive in the cache.
    if (removed) verified.clear()
    if (previousSigner !== undefined && previousSigner !== signing.key.kid) {
      fastify.log.info({ kid: signing.key.kid, alg: signing.key.alg }, 'signing key changed')
    }
  }

  const verified = new ExpiringLru<VerifiedToken>(options.verifiedCacheSize)
  const doorkeeper = new Doorkeeper(options.verifiedCacheSize)
  /** Header segment -> the ring key it names, for headers that passed every header rule. */
  const knownHeaders = new Map<string, RingKey>()
  const offload = options.signatureCheck === 'pool'
  applyRing(initial)
  if (signing.key.alg !== options.signingAlgorithm) {
    fastify.log.warn({ kid: signing.key.kid, alg: signing.key.alg, configured: options.signingAlgorithm },
      `the signing key is ${signing.key.alg} but AUTH_SIGNING_ALG is ${options.signingAlgorithm}: run \`gatehouse keys rotate --alg ${options.signingAlgorithm}\` to switch`)
  }
  fastify.log.info({ kid: signing.key.kid, alg: signing.key.alg, verifying: byKid.size }, 'token signing key loaded')

  let lastReload = Date.now()
  let pendingReload: Promise<void> | null = null
  let folderState = folderSignature(options.keysDir)

  function reloadNow (): void {
    lastReload = Date.now()
    keyReloads++
    try {
      folderState = folderSignature(options.keysDir)
      applyRing(loadKeyRing(options.keysDir))
    } catch (err) {
      fastify.log.error({ keysDir: options.keysDir, err: { message: (err as Error).message } }, 'AUTH_KEYS_DIR: reload failed; keeping the current keys')
    }
  }

  /** Re-reads the folder at most once per KEY_RELOAD_MIN_INTERVAL_MS; concurrent callers share one read. */
  function scheduleReload (): Promise<void> {
    if (pendingReload !== null) return pendingReload
    const wait = Math.max(0, lastReload + KEY_RELOAD_MIN_INTERVAL_MS - Date.now())
    pendingReload = new Promise<void>((resolve) => {
      // Not unref'd: a request is waiting on it.
      setTimeout(() => {
        pendingReload = null
        reloadNow()
        resolve()
      }, wait)
    })
    return pendingReload
  }

  let reloadTimer: NodeJS.Timeout | undefined
  if (options.keysReloadInterval > 0) {
    reloadTimer = setInterval(() => {
      if (Date.now() - lastReload < KEY_RELOAD_MIN_INTERVAL_MS) return
      if (folderSignature(options.keysDir) !== folderState) reloadNow()
    }, options.keysReloadInterval * 1000)
    reloadTimer.unref()
  }

  // ---- revocation and state -------------------------------------------------------------------
  const revoked = new RevokedSessions()
  const users = new StateCache<UserState>(userLoader(store), { ttlMs: options.userStateTtl * 1000, size: options.userStateCacheSize })
  const clients = new StateCache<ClientState>(clientLoader(store), { ttlMs: options.userStateTtl * 1000, size: options.userStateCacheSize })
  /** How long after a revocation its access tokens can still be presented (TTL plus skew). */
  const revocationSpanSec = accessTokenTtl + toleranceSec

  async function loadRevoked (): Promise<void> {
    const rows = await loadRevokedSessions(store, Date.now() - revocationSpanSec * 1000)
    for (const row of rows) revoked.add([row.id], Math.floor(row.revokedAt.getTime() / 1000) + revocationSpanSec)
  }
  await loadRevoked()

  bus.subscribe('sid', (message) => {
    const { sids, until } = message as { sids?: unknown, until?: unknown }
    if (!Array.isArray(sids)) return
    const untilSec = typeof until === 'number' && Number.isFinite(until) ? until : Math.floor(Date.now() / 1000) + revocationSpanSec
    revoked.add(sids.filter((s): s is string => typeof s === 'string'), untilSec)
  })
  // `gatehouse keys rotate|retire` announces a change on this channel.
  bus.subscribe('keys', () => {
    scheduleReload().catch(() => {})
  })
  bus.subscribe('user', (message) => {
    if (typeof message.userId === 'string') users.invalidate(message.userId)
  })
  bus.subscribe('client', (message) => {
    if (typeof message.clientId === 'string') clients.invalidate(message.clientId)
  })
  bus.onResync(() => {
    users.clear()
    clients.clear()
    loadRevoked().catch((err) => fastify.log.error({ err: { message: (err as Error).message } }, 'tokens: reloading revoked sessions after a bus resync failed'))
  })
  const pruneTimer = setInterval(() => revoked.prune(Math.floor(Date.now() / 1000)), 60_000)
  pruneTimer.unref()
  fastify.addHook('onClose', async () => {
    clearInterval(pruneTimer)
    if (reloadTimer !== undefined) clearInterval(reloadTimer)
  })

  // ---- verification ---------------------------------------------------------------------------
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

  function verifySignature (token: string, key: string): VerifiedToken | Promise<VerifiedToken> {
    checkShape(token)
    const segment = token.slice(0, token.indexOf('.'))
    const known = knownHeaders.get(segment)
    if (known !== undefined) return checkWith(token, key, known)
    const header = parseHeaderSegment(segment)
    const kid = header.kid
    const ringKey = typeof kid === 'string' ? byKid.get(kid) : undefined
    // One of our keys, in its own algorithm: the signature is checked before anything else.
    if (ringKey !== undefined && header.alg === ringKey.key.alg) return checkWith(token, key, ringKey, header, segment)
    // Not a token of a key we hold. Whose is it? Another issuer's goes elsewhere (UNTRUSTED_ISSUER).
    checkIssuer(token, issuer)
    const checked = checkHeader(header)
    if (ringKey !== undefined) throw bearerError('INVALID_TOKEN', 'The token algorithm does not match its key')
    // An unknown kid that claims our issuer: another instance or the CLI may have rotated.
    return scheduleReload().then(() => {
      const reloaded = byKid.get(checked.kid)
      if (reloaded === undefined) throw bearerError('INVALID_TOKEN', 'The token was not signed by a known key')
      if (reloaded.key.alg !== checked.alg) throw bearerError('INVALID_TOKEN', 'The token algorithm does not match its key')
      return remember(token, key, reloaded.verifier.verifySync(token))
    })
  }

  /** The account errors, which say more than TOKEN_REVOKED when both apply. */
  function checkAccount (state: UserState | null): asserts state is UserState {
    if (state === null || state.deleted) throw bearerError('USER_NOT_FOUND')
    if (state.status !== 'active') throw bearerError('ACCOUNT_DISABLED')
  }

  function checkUser (entry: VerifiedToken, state: UserState | null): AuthUser {
    checkAccount(state)
    if (entry.ver < state.tokenVersion) throw bearerError('TOKEN_REVOKED')
    return {
      id: entry.sub,
      sub: entry.sub,
      iss: issuer,
      roles: state.roles as string[],
      scheme: 'bearer',
      external: false,
      sid: entry.sid,
      email: state.email,
      claims: entry.claims
    }
  }

  function checkClient (entry: VerifiedToken, state: ClientState | null): AuthUser {
    if (state === null) throw bearerError('USER_NOT_FOUND', 'The OAuth client no longer exists')
    if (state.revoked) throw bearerError('TOKEN_REVOKED', 'The OAuth client has been revoked')
    return {
      id: entry.sub,
      sub: entry.sub,
      iss: issuer,
      roles: entry.claims.roles,
      scheme: 'bearer',
      external: false,
      clientId: entry.clientId,
      claims: entry.claims
    }
  }

  async function familyRevoked (sid: string): Promise<boolean> {
    const row = await store.prisma.refreshFamily.findUnique({ where: { id: sid }, select: { revokedAt: true } })
    return row !== null && row.revokedAt !== null
  }

  async function principalFromDatabase (entry: VerifiedToken): Promise<AuthUser> {
    const healthy = bus.healthy
    if (entry.clientId !== undefined) return checkClient(entry, await clients.get(entry.clientId, !healthy))
    if (healthy) return checkUser(entry, await users.get(entry.sub, false))
    // Revocation notices may be missed while the bus is down: ask the database for both.
    const [state, familyIsRevoked] = await Promise.all([users.get(entry.sub, true), entry.sid === undefined ? false : familyRevoked(entry.sid)])
    const user = checkUser(entry, state)
    if (familyIsRevoked) throw bearerError('TOKEN_REVOKED')
    return user
  }

  /**
   * A revoked session's token fails either way; when the account itself was disabled or deleted
   * (which revokes its sessions too) that is the more useful answer. A state that cannot be read
   * does not turn this refusal into a 503.
   */
  function revokedSession (entry: VerifiedToken, now: number): never | Promise<never> {
    const healthy = bus.healthy
    const state = healthy ? users.peek(entry.sub, now) : undefined
    if (state !== undefined) {
      checkAccount(state)
      throw bearerError('TOKEN_REVOKED')
    }
    return users.get(entry.sub, !healthy).then((loaded) => {
      checkAccount(loaded)
      throw bearerError('TOKEN_REVOKED')
    }, () => {
      throw bearerError('TOKEN_REVOKED')
    })
  }

  function principal (entry: VerifiedToken, now: number): AuthUser | Promise<AuthUser> {
    if (entry.sid !== undefined && revoked.has(entry.sid, Math.floor(now / 1000))) return revokedSession(entry, now)
    if (bus.healthy) {
      if (entry.clientId !== undefined) {
        const client = clients.peek(entry.clientId, now)
        if (client !== undefined) return checkClient(entry, client)
      } else {
        const state = users.peek(entry.sub, now)
        if (state !== undefined) return checkUser(entry, state)
      }
    }
    return principalFromDatabase(entry)
  }

  /** The cached entry of exactly this token (the cache is keyed by its tail). */
  function lookup (token: string, key: string, now: number): VerifiedToken | undefined {
    const entry = verified.get(key, now)
    return entry !== undefined && entry.token === token ? entry : undefined
  }

  function verifyCached (token: string): AuthUser | Promise<AuthUser> | undefined {
    if (typeof token !== 'string') return undefined
    const now = Date.now()
    const entry = lookup(token, cacheKeyOf(token), now)
    return entry === undefined ? undefined : principal(entry, now)
  }

  function verifyFast (token: string): AuthUser | Promise<AuthUser> {
    if (typeof token !== 'string') throw bearerError('INVALID_TOKEN')
    const now = Date.now()
    const key = cacheKeyOf(token)
    const cached = lookup(token, key, now)
    if (cached !== undefined) return principal(cached, now)
    const entry = verifySignature(token, key)
    if (entry instanceof Promise) return entry.then((e) => principal(e, Date.now()))
    return principal(entry, now)
  }

  // ---- signing --------------------------------------------------------------------------------
  function signerOf (ringKey: RingKey): KeySigner {
    ringKey.sign ??= createKeySigner(ringKey.key)
    return ringKey.sign
  }

  async function sign (user: SignableUser, signOptions: SignOptions = {}): Promise<SignedAccessToken> {
    const { sid, clientId, scope, amr } = signOptions
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
    if (clientId === undefined) payload.amr = [...(amr ?? ['pwd'])]
    payload.ver = user.tokenVersion
    if (clientId !== undefined) {
      payload.client_id = clientId
      if (scope !== undefined) payload.scope = scope
    }
    return { access_token: signerOf(signing)(payload), expires_in: accessTokenTtl }
  }

  async function publish (channel: string, message: Record<string, unknown>): Promise<void> {
    try {
      await bus.publish(channel, message)
    } catch (err) {
      throw serviceUnavailable(err)
    }
  }

  const tokens: Tokens = {
    issuer,
    audience,
    accessTokenTtl,
    keys: () => ({
      signing: { kid: signing.key.kid, alg: signing.key.alg },
      active: [...byKid.values()].map(({ key }) => ({ kid: key.kid, alg: key.alg, createdAt: new Date(key.createdAt).toISOString() }))
    }),
    sign,
    async verify (token) {
      return await verifyFast(token)
    },
    verifyFast,
    verifyCached,
    userState: (userId) => users.get(userId, !bus.healthy),
    async userChanged (userId) {
      users.invalidate(userId)
      await publish('user', { userId })
    },
    async clientChanged (clientId) {
      clients.invalidate(clientId)
      await publish('client', { clientId })
    },
    async revokeSids (sids, untilEpochSec) {
      const list = sids.filter((s) => typeof s === 'string' && s !== '')
      if (list.length === 0) return
      const until = Math.max(untilEpochSec ?? 0, Math.floor(Date.now() / 1000) + revocationSpanSec)
      revoked.add(list, until)
      await publish('sid', { sids: list, until })
    },
    jwks: () => jwksDocument,
    async reloadKeys () {
      reloadNow()
    },
    stats: () => ({ keys: byKid.size, verifiedCacheSize: verified.size, revokedSessions: revoked.size, keyReloads })
  }
  fastify.decorate('tokens', tokens)
}

export const tokens = fp(tokensPlugin, { name: 'gatehouse-tokens', fastify: '5.x', dependencies: ['gatehouse-store'] })
export default tokens

/** The plugin options of the standalone server, from its configuration. */
export function tokensOptionsFromConfig (config: { issuer: string, audience: string, keysDir: string, signingAlgorithm: SigningAlgorithm, accessTokenTtl: number }): TokensOptions {
  return {
    issuer: config.issuer,
    audience: config.audience,
    keysDir: config.keysDir,
    signingAlgorithm: config.signingAlgorithm,
    accessTokenTtl: config.accessTokenTtl
  }
}

export type { UserState, ClientState } from './state.ts'
export type { AccessTokenClaims } from './jwt.ts'
export type { PublicJwk, KeyInfo } from './keys.ts'
