// The credential verifier: passwords (argon2id), HTTP Basic with a short-lived cache, API keys.
// Plain functions over explicit dependencies, so it can be used and tested without Fastify.
import { createHmac, randomBytes } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { ValidationError } from '../../lib/input.ts'
import { basicError, gatehouseError, isGatehouseError, serviceUnavailable, type GatehouseError } from '../../lib/errors.ts'
import type { PrismaClient } from '../store/index.ts'
import type { PostgresConnection, SqliteConnection } from '../../lib/sql-connection.ts'
import type { User } from '../../prisma/generated/sqlite/client.ts'
import type { Bus } from '../redis/index.ts'
import type { Audit, AuditEventInput } from '../audit/index.ts'
import { createHasher, QueueFullError, type Hasher } from './hasher.ts'
import { createTtlCache } from './ttl-cache.ts'
import { checkPasswordPolicy as checkPolicy, exceedsMaxBytes, isPlausibleEmail, loadCommonPasswords, normalizeEmail, type PasswordPolicy } from './policy.ts'
import { generateApiKey, hashApiKey, parseApiKey, sameHash } from './api-keys.ts'
import { createSignInStore } from './user-store.ts'
import type { ResolvedCredentialsOptions } from './options.ts'
import { AUDIT_EVENTS } from '../audit/index.ts'
import type { LoginAttempt, LoginThrottle } from '../rate-limit/index.ts'

/** `fastify.loginThrottle` (gatehouse-rate-limit) and what its `begin()` hands back. */
export type { LoginThrottle, LoginAttempt as ThrottleAttempt }

export interface CredentialsDeps {
  prisma: PrismaClient
  /** The store's SQLite connection (`fastify.store.sqlite`), when it created the client: a login's statements skip Prisma's client runtime. */
  sqlite?: SqliteConnection
  /** The store's PostgreSQL pool (`fastify.store.postgres`), when it created the client: the same, on PostgreSQL. */
  postgres?: PostgresConnection
  bus: Bus
  audit: Audit | null
  /** The per-account throttle when one is registered. */
  loginThrottle: () => LoginThrottle | null
  /** Whether an account has a second factor (gatehouse-mfa), when one is registered: HTTP Basic is refused for it. */
  secondFactor?: () => ((userId: string) => Promise<boolean>) | null
  log: FastifyBaseLogger
}

export interface ApiKeyCreated {
  id: string
  name: string
  /** The full key: returned once, never stored. */
  key: string
  /** The non-secret lookup part (`gh_<16 hex>`). */
  prefix: string
  createdAt: Date
  /** When the key stops working; null: never. */
  expiresAt: Date | null
}

export interface CredentialsStats {
  basicCacheHits: number
  basicCacheMisses: number
  /** Cache misses that joined a verification already running for the same credentials. */
  basicCacheSharedVerifications: number
  apiKeyCacheHits: number
  apiKeyCacheMisses: number
}

type Channel = 'login' | 'basic' | 'password_change'

/** Where a sign-in with a correct password comes from: POST /auth/login and the password grant, or HTTP Basic. */
export type SignInChannel = 'login' | 'basic'

/**
 * A rule a correct password must also pass before it signs anyone in (for example gatehouse-accounts'
 * REQUIRE_VERIFIED_EMAIL). It runs after the account-state checks and before the second-factor
 * step, and refuses by throwing a coded error; a wrong password never reaches it.
 */
export type SignInCheck = (user: User, context: { channel: SignInChannel, request?: FastifyRequest }) => void | Promise<void>


interface BasicEntry {
  userId: string
  /** The forget sequence number when the verification began (see `forgotten`). */
  passwordHashVersion: number
}

interface ApiKeyEntry {
  userId: string
  apiKeyId: string
  /** Milliseconds since the epoch; a hit past it is a miss. */
  expiresAt: number | null
}

/** An API key as its owner (or an admin) sees it: never the key or its hash. */
export interface ApiKeyInfo {
  id: string
  name: string
  prefix: string
  createdAt: Date
  lastUsedAt: Date | null
  expiresAt: Date | null
}

export async function createCredentials (options: ResolvedCredentialsOptions, deps: CredentialsDeps) {
  const { prisma, bus, log } = deps
  const policy: PasswordPolicy = {
    minLength: options.minPasswordLength,
    maxBytes: options.maxPasswordBytes,
    common: loadCommonPasswords(options.commonPasswordsFile, options.extraCommonPasswords)
  }
  const hasher: Hasher = createHasher(options.argon2, options.hashConcurrency, options.hashQueueSize)
  // Unknown emails are verified against this, so they cost what a real account costs.
  const dummyHash = await hasher.hash(randomBytes(32).toString('base64url'))
  const signIns = createSignInStore(prisma, deps.sqlite, deps.postgres)

  // Keyed hash of Basic credentials: a cache dump reveals neither the password nor a value
  // that can be attacked offline without this per-process secret.
  const basicSecret = randomBytes(32)
  const basicCache = createTtlCache<BasicEntry>(options.basicCacheMax, options.basicCacheTtlMs)
  const basicInFlight = new Map<string, Promise<{ userId: string }>>()
  const apiKeyCache = createTtlCache<ApiKeyEntry>(options.apiKeyCacheMax, options.apiKeyCacheTtlMs)
  // Sequence numbers guard the caches against a verification that read the old hash (or a
  // not-yet-revoked key) and finishes after the change: its result is not cached.
  let forgetSeq = 0
  const forgotten = new Map<string, { seq: number, at: number }>()
  let revokeSeq = 0
  const touched = new Map<string, number>()
  const pendingTouches = new Set<Promise<unknown>>()
  const stats: CredentialsStats = { basicCacheHits: 0, basicCacheMisses: 0, basicCacheSharedVerifications: 0, apiKeyCacheHits: 0, apiKeyCacheMisses: 0 }
  const signInChecks: SignInCheck[] = []

  function record (event: AuditEventInput): void {
    deps.audit?.record(event)
  }

  async function guarded<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof QueueFullError) {
        log.warn({ active: hasher.semaphore.active, waiting: hasher.semaphore.waiting }, 'credentials: password hashing queue is full; answering 503')
        throw serviceUnavailable(err, options.retryAfterSeconds)
      }
      throw err
    }
  }

  function hashPassword (password: string): Promise<string> {
    return guarded(() => hasher.hash(password.normalize('NFKC')))
  }

  /** False for a wrong password, a password over the size limit (not hashed) or a non-argon2 value. */
  async function verifyPassword (phc: string, password: string): Promise<boolean> {
    if (typeof password !== 'string' || exceedsMaxBytes(password, options.maxPasswordBytes)) return false
    return guarded(() => hasher.verify(phc, password.normalize('NFKC')))
  }

  function checkPasswordPolicy (password: string, context: { email?: string } = {}): string {
    return checkPolicy(policy, password, context)
  }

  function invalid (channel: Channel): GatehouseError {
    if (channel === 'basic') return basicError('INVALID_CREDENTIALS')
    if (channel === 'password_change') return gatehouseError('INVALID_CREDENTIALS', 'The current password is incorrect')
    return gatehouseError('INVALID_CREDENTIALS')
  }

  /**
   * The one password check behind login, Basic and password change: throttle, size cap, lookup,
   * argon2 (a dummy hash for unknown users), then account state, then rehash when needed.
   */
  async function checkPassword (normalizedEmail: string, password: unknown, channel: Channel, request?: FastifyRequest): Promise<User> {
    const auditType = channel === 'password_change' ? AUDIT_EVENTS.PASSWORD_CHANGE : AUDIT_EVENTS.LOGIN
    const details = channel === 'basic' ? { scheme: 'basic' } : undefined
    // No account has an empty email: nothing to throttle, look up or verify.
    if (normalizedEmail === '') throw invalid(channel)
    const throttle = deps.loginThrottle()
    let attempt: LoginAttempt | null = null
    if (throttle !== null) {
      try {
        attempt = await throttle.begin(normalizedEmail)
      } catch (err) {
        if (isGatehouseError(err) && err.code === 'RATE_LIMITED') {
          record({ type: auditType, outcome: 'failure', reason: 'rate_limited', details, request })
        }
        throw err
      }
    }
    const tooLong = typeof password !== 'string' || exceedsMaxBytes(password, options.maxPasswordBytes)
    let user: User | null
    let ok = false
    try {
      user = await signIns.findByEmail(normalizedEmail)
      if (!tooLong) {
        const normalized = (password as string).normalize('NFKC')
        const stored = user?.passwordHash ?? dummyHash
        ok = await guarded(() => hasher.verify(stored, normalized)) && user !== null && user.passwordHash !== null
      }
    } catch (err) {
      // Database down or hashing queue full: no verdict, so nothing is counted against the account.
      await attempt?.release?.().catch(() => {})
      throw err
    }
    if (!ok || user === null) {
      await attempt?.fail()
      record({ type: auditType, outcome: 'failure', reason: user === null ? 'unknown_user' : 'bad_password', subjectId: user?.id ?? null, details, request })
      throw invalid(channel)
    }
    await attempt?.succeed()
    if (user.deletedAt !== null) {
      record({ type: auditType, outcome: 'failure', reason: 'deleted', subjectId: user.id, details, request })
      throw channel === 'basic' ? basicError('USER_NOT_FOUND') : gatehouseError('USER_NOT_FOUND')
    }
    if (user.status !== 'active') {
      record({ type: auditType, outcome: 'failure', reason: 'disabled', subjectId: user.id, details, request })
      throw channel === 'basic' ? basicError('ACCOUNT_DISABLED') : gatehouseError('ACCOUNT_DISABLED')
    }
    // A password change is no sign-in: the caller already holds a session.
    if (channel !== 'password_change') {
      for (const signInCheck of signInChecks) await signInCheck(user, { channel, request })
    }
    // HTTP Basic is a password alone: it cannot stand in for an account's second factor.
    const hasSecondFactor = channel === 'basic' ? deps.secondFactor?.() ?? null : null
    if (hasSecondFactor !== null && await hasSecondFactor(user.id)) {
      record({ type: auditType, outcome: 'failure', reason: 'mfa_required', subjectId: user.id, details, request })
      throw basicError('MFA_REQUIRED', 'This account has a second factor: log in at /auth/login instead of using HTTP Basic')
    }
    // A password change replaces the hash anyway: no upgrade of the old one first.
    if (channel === 'password_change') return user
    return await upgrade(user, (password as string).normalize('NFKC'), channel === 'login')
  }

  /** Rehashes a hash made with weaker parameters (or argon2i/argon2d) and stamps the login. */
  async function upgrade (user: User, normalizedPassword: string, stampLogin: boolean): Promise<User> {
    const now = new Date()
    let newHash: string | null = null
    if (user.passwordHash !== null && hasher.needsRehash(user.passwordHash)) {
      try {
        newHash = await hasher.hash(normalizedPassword)
      } catch (err) {
        // A full queue only postpones the upgrade to a later login.
        if (!(err instanceof QueueFullError)) throw err
      }
    }
    if (newHash === null && !stampLogin) return user
    // The common case (a login, nothing to upgrade) is one raw statement; the ORM writes the rest.
    if (newHash === null) {
      return await signIns.stampLogin(user.id, user.passwordHash as string, now) ? { ...user, lastLoginAt: now, updatedAt: now } : user
    }
    const data: { passwordHash?: string, lastLoginAt?: Date } = {}
    if (newHash !== null) data.passwordHash = newHash
    if (stampLogin) data.lastLoginAt = now
    // Conditional on the hash we verified, so a concurrent password change is never overwritten.
    const { count } = await prisma.user.updateMany({ where: { id: user.id, passwordHash: user.passwordHash }, data })
    if (count === 1) {
      if (newHash !== null) log.info({ userId: user.id }, 'credentials: password rehashed with the current argon2id parameters')
      return { ...user, ...data }
    }
    return user
  }

  async function login (email: string, password: string, request?: FastifyRequest): Promise<User> {
    const normalizedEmail = normalizeEmail(email)
    const user = await checkPassword(normalizedEmail, password, 'login', request)
    record({ type: AUDIT_EVENTS.LOGIN, outcome: 'success', actorId: user.id, subjectId: user.id, request })
    return user
  }

  function basicKey (normalizedEmail: string, normalizedPassword: string): string {
    return createHmac('sha256', basicSecret).update(normalizedEmail).update('\0').update(normalizedPassword).digest('base64url')
  }

  function cacheUsable (): boolean {
    // Without the bus, a password change on another instance could go unnoticed.
    return bus.healthy
  }

  async function verifyBasic (email: string, password: string): Promise<{ userId: string }> {
    if (typeof email !== 'string' || typeof password !== 'string' || exceedsMaxBytes(password, options.maxPasswordBytes)) {
      throw basicError('INVALID_CREDENTIALS')
    }
    const normalizedEmail = normalizeEmail(email)
    const normalizedPassword = password.normalize('NFKC')
    const key = basicKey(normalizedEmail, normalizedPassword)
    const useCache = options.basicCacheTtlMs > 0 && cacheUsable()
    if (useCache) {
      const hit = basicCache.get(key)
      if (hit !== undefined && (forgotten.get(hit.userId)?.seq ?? 0) <= hit.passwordHashVersion) {
        stats.basicCacheHits++
        return { userId: hit.userId }
      }
      stats.basicCacheMisses++
    }
    if (!useCache) return { userId: (await checkPassword(normalizedEmail, normalizedPassword, 'basic')).id }
    // Concurrent requests with the same credentials share one verification (one argon2 run and
    // one throttle reservation), so a client's burst at start or at expiry is not refused.
    let pending = basicInFlight.get(key)
    if (pending === undefined) {
      const startSeq = forgetSeq
      pending = checkPassword(normalizedEmail, normalizedPassword, 'basic').then((user) => {
        if ((forgotten.get(user.id)?.seq ?? 0) <= startSeq) basicCache.set(key, { userId: user.id, passwordHashVersion: startSeq })
        return { userId: user.id }
      }).finally(() => basicInFlight.delete(key))
      basicInFlight.set(key, pending)
    } else {
      stats.basicCacheSharedVerifications++
    }
    return await pending
  }

  function forgetLocally (userId: string): void {
    forgetSeq++
    const now = Date.now()
    forgotten.set(userId, { seq: forgetSeq, at: now })
    basicCache.deleteWhere((entry) => entry.userId === userId)
    if (forgotten.size > 1000) {
      // Older marks can no longer matter: their entries are gone and expired.
      const horizon = now - options.basicCacheTtlMs - 60_000
      for (const [id, mark] of forgotten) if (mark.at < horizon) forgotten.delete(id)
    }
  }

  /** Drops the user's cached Basic verifications here and, through the bus, on every instance. */
  async function forgetUser (userId: string): Promise<void> {
    forgetLocally(userId)
    try {
      await bus.publish('user', { userId })
    } catch (err) {
      // While the bus is down every instance bypasses its cache (bus.healthy is false).
      log.warn({ err: { message: (err as Error).message }, userId }, 'credentials: could not publish the user change')
    }
  }

  function invalidApiKey (): GatehouseError {
    return gatehouseError('INVALID_CREDENTIALS', 'The API key is invalid or has been revoked', {
      headers: { 'www-authenticate': 'ApiKey realm="gatehouse"' }
    })
  }

  function touch (apiKeyId: string): void {
    const now = Date.now()
    const last = touched.get(apiKeyId)
    if (last !== undefined && now - last < options.apiKeyTouchIntervalMs) return
    touched.delete(apiKeyId)
    touched.set(apiKeyId, now)
    if (touched.size > options.apiKeyCacheMax) touched.delete(touched.keys().next().value as string)
    const cutoff = new Date(now - options.apiKeyTouchIntervalMs)
    // Conditional, so several instances together still write about once per interval.
    const write = prisma.apiKey.updateMany({
      where: { id: apiKeyId, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: cutoff } }] },
      data: { lastUsedAt: new Date(now) }
    }).catch((err: unknown) => {
      log.warn({ err: { message: (err as Error).message }, apiKeyId }, 'credentials: could not update last_used_at of an API key')
    }).finally(() => pendingTouches.delete(write))
    pendingTouches.add(write)
  }

  /** Counts one failed credential against an account in the login throttle; RATE_LIMITED while it is in back-off. */
  async function failAgainstAccount (normalizedEmail: string): Promise<void> {
    const throttle = deps.loginThrottle()
    if (throttle === null) return
    const attempt = await throttle.begin(normalizedEmail)
    await attempt.fail()
  }

  async function verifyApiKey (key: string): Promise<{ userId: string, apiKeyId: string }> {
    const parsed = parseApiKey(options.apiKeyPrefix, key)
    if (parsed === null) throw invalidApiKey()
    const keyHash = hashApiKey(parsed.key)
    const useCache = options.apiKeyCacheTtlMs > 0 && cacheUsable()
    if (useCache) {
      const hit = apiKeyCache.get(keyHash)
      if (hit !== undefined && (hit.expiresAt === null || hit.expiresAt > Date.now())) {
        stats.apiKeyCacheHits++
        touch(hit.apiKeyId)
        return { userId: hit.userId, apiKeyId: hit.apiKeyId }
      }
      stats.apiKeyCacheMisses++
    }
    const startSeq = revokeSeq
    const row = await prisma.apiKey.findUnique({ where: { prefix: parsed.lookup }, include: { user: { select: { email: true } } } })
    if (row === null || row.revokedAt !== null) throw invalidApiKey()
    if (row.expiresAt !== null && row.expiresAt.getTime() <= Date.now()) throw invalidApiKey()
    if (!sameHash(row.keyHash, keyHash)) {
      // Someone holds the key's lookup part but not its secret: a failure against the account,
      // in the same per-account throttle as a wrong password (a right key never touches it).
      await failAgainstAccount(row.user.email)
      throw invalidApiKey()
    }
    if (useCache && revokeSeq === startSeq) apiKeyCache.set(keyHash, { userId: row.userId, apiKeyId: row.id, expiresAt: row.expiresAt?.getTime() ?? null })
    touch(row.id)
    return { userId: row.userId, apiKeyId: row.id }
  }

  /** Creates a key for the user; with `expiresInSeconds` it stops working after that long. */
  async function createApiKey (userId: string, name: string, request?: FastifyRequest, expiresInSeconds?: number): Promise<ApiKeyCreated> {
    const expiresAt = expiresInSeconds === undefined ? null : new Date(Date.now() + expiresInSeconds * 1000)
    for (let attempt = 1; ; attempt++) {
      const generated = generateApiKey(options.apiKeyPrefix)
      try {
        const row = await prisma.apiKey.create({ data: { userId, name, prefix: generated.lookup, keyHash: generated.hash, expiresAt } })
        record({ type: AUDIT_EVENTS.API_KEY_CREATED, outcome: 'success', actorId: userId, subjectId: userId, details: { apiKeyId: row.id, name, expiresAt: row.expiresAt?.toISOString() ?? null }, request })
        return { id: row.id, name: row.name, key: generated.key, prefix: row.prefix, createdAt: row.createdAt, expiresAt: row.expiresAt }
      } catch (err) {
        // A 64-bit lookup collision: draw again.
        if (!(isGatehouseError(err) && err.code === 'CONFLICT') || attempt >= 3) throw err
      }
    }
  }

  /** The user's keys that still work (not revoked, not expired), newest first. */
  async function listApiKeys (userId: string): Promise<ApiKeyInfo[]> {
    return await prisma.apiKey.findMany({
      where: { userId, revokedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
      orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
      select: { id: true, name: true, prefix: true, createdAt: true, lastUsedAt: true, expiresAt: true }
    })
  }

  function dropApiKeyLocally (apiKeyId: string): void {
    revokeSeq++
    apiKeyCache.deleteWhere((entry) => entry.apiKeyId === apiKeyId)
  }

  /** Revokes the user's key; NOT_FOUND when the user has no key with this id. Idempotent. */
  async function revokeApiKey (userId: string, id: string, request?: FastifyRequest, actorId: string = userId): Promise<void> {
    const row = await prisma.apiKey.findFirst({ where: { id, userId } })
    if (row === null) throw gatehouseError('NOT_FOUND', 'No API key with this id')
    if (row.revokedAt === null) {
      await prisma.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } })
      record({ type: AUDIT_EVENTS.API_KEY_REVOKED, outcome: 'success', actorId, subjectId: userId, details: { apiKeyId: id }, request })
    }
    dropApiKeyLocally(id)
    try {
      await bus.publish('apikey', { apiKeyId: id })
    } catch (err) {
      log.warn({ err: { message: (err as Error).message }, apiKeyId: id }, 'credentials: could not publish the API key revocation')
    }
  }

  /** Revokes every live API key of the user (logout-all, password change or reset, admin bootstrap), on every instance. */
  async function revokeUserApiKeys (userId: string, reason: string, request?: FastifyRequest): Promise<number> {
    const rows = await prisma.apiKey.findMany({ where: { userId, revokedAt: null }, select: { id: true } })
    if (rows.length === 0) return 0
    const ids = rows.map((row) => row.id)
    await prisma.apiKey.updateMany({ where: { id: { in: ids }, revokedAt: null }, data: { revokedAt: new Date() } })
    for (const id of ids) dropApiKeyLocally(id)
    record({ type: AUDIT_EVENTS.API_KEY_REVOKED, outcome: 'success', actorId: null, subjectId: userId, reason, details: { apiKeyIds: ids }, request })
    for (const id of ids) {
      try {
        await bus.publish('apikey', { apiKeyId: id })
      } catch (err) {
        log.warn({ err: { message: (err as Error).message }, apiKeyId: id }, 'credentials: could not publish the API key revocation')
      }
    }
    return ids.length
  }

  async function register (input: { email: string, password: string, name?: string | null }, request?: FastifyRequest): Promise<User> {
    const email = normalizeEmail(input.email)
    if (!isPlausibleEmail(email)) throw new ValidationError('body/email must be an email address')
    let normalizedPassword: string
    try {
      normalizedPassword = checkPasswordPolicy(input.password, { email })
    } catch (err) {
      record({ type: AUDIT_EVENTS.REGISTER, outcome: 'failure', reason: 'weak_password', request })
      throw err
    }
    const taken = () => {
      record({ type: AUDIT_EVENTS.REGISTER, outcome: 'failure', reason: 'email_taken', request })
      return gatehouseError('EMAIL_TAKEN')
    }
    if (await prisma.user.findUnique({ where: { email }, select: { id: true } }) !== null) throw taken()
    const passwordHash = await guarded(() => hasher.hash(normalizedPassword))
    let user: User
    try {
      user = await prisma.user.create({ data: { email, name: input.name ?? null, passwordHash, passwordChangedAt: new Date() } })
    } catch (err) {
      if (isGatehouseError(err) && err.code === 'CONFLICT') throw taken()
      throw err
    }
    record({ type: AUDIT_EVENTS.REGISTER, outcome: 'success', actorId: user.id, subjectId: user.id, request })
    return user
  }

  /**
   * Re-verifies the current password (throttled like a login), applies the policy to the new one,
   * stores its hash and drops cached Basic verifications. Sessions are the caller's to revoke.
   * `confirm` runs once the current password is right, before anything changes (a step-up check,
   * for example a current TOTP code); what it throws ends the change.
   */
  async function changePassword (userId: string, currentPassword: string, newPassword: string, request?: FastifyRequest, options: { confirm?: () => Promise<void> } = {}): Promise<User> {
    const current = await prisma.user.findUnique({ where: { id: userId } })
    if (current === null || current.deletedAt !== null) throw gatehouseError('USER_NOT_FOUND')
    let normalizedNew: string
    try {
      normalizedNew = checkPasswordPolicy(newPassword, { email: current.email })
    } catch (err) {
      record({ type: AUDIT_EVENTS.PASSWORD_CHANGE, outcome: 'failure', reason: 'weak_password', actorId: userId, subjectId: userId, request })
      throw err
    }
    const user = await checkPassword(current.email, currentPassword, 'password_change', request)
    await options.confirm?.()
    const passwordHash = await guarded(() => hasher.hash(normalizedNew))
    const now = new Date()
    const { count } = await prisma.user.updateMany({ where: { id: userId, passwordHash: user.passwordHash }, data: { passwordHash, passwordChangedAt: now } })
    if (count !== 1) throw gatehouseError('CONFLICT', 'The password was changed concurrently; try again')
    await forgetUser(userId)
    record({ type: AUDIT_EVENTS.PASSWORD_CHANGE, outcome: 'success', actorId: userId, subjectId: userId, request })
    return { ...user, passwordHash, passwordChangedAt: now }
  }

  bus.subscribe('user', (message) => {
    if (typeof message.userId === 'string') forgetLocally(message.userId)
  })
  bus.subscribe('apikey', (message) => {
    if (typeof message.apiKeyId === 'string') dropApiKeyLocally(message.apiKeyId)
  })
  bus.onResync(() => {
    // Notices may have been missed while the bus was down.
    forgetSeq++
    revokeSeq++
    basicCache.clear()
    apiKeyCache.clear()
  })

  /**
   * Adds a rule every sign-in with a correct password must pass (login, the password grant, HTTP
   * Basic). Cached Basic verifications passed it when they were made: a rule whose verdict can
   * change for an account must call `forgetUser` when it does.
   */
  function addSignInCheck (signInCheck: SignInCheck): void {
    if (typeof signInCheck !== 'function') throw new TypeError('credentials.addSignInCheck: the check must be a function')
    signInChecks.push(signInCheck)
  }

  return {
    normalizeEmail,
    checkPasswordPolicy,
    hashPassword,
    verifyPassword,
    login,
    verifyBasic,
    verifyApiKey,
    revokeUserApiKeys,
    createApiKey,
    listApiKeys,
    revokeApiKey,
    forgetUser,
    register,
    changePassword,
    addSignInCheck,
    /** The argon2 parameters of new hashes. */
    parameters: options.argon2,
    /** Counters for tests and metrics: argon2 operations, cache hits and misses, queue depth. */
    stats () {
      return { ...stats, argon2Operations: hasher.operations, hashActive: hasher.semaphore.active, hashWaiting: hasher.semaphore.waiting, basicCacheSize: basicCache.size, apiKeyCacheSize: apiKeyCache.size }
    },
    /** Waits for pending `last_used_at` writes (called on close). */
    async drain () {
      await Promise.allSettled([...pendingTouches])
    }
  }
}

export type Credentials = Awaited<ReturnType<typeof createCredentials>>
