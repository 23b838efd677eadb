// The account side of external sign-in: flows bound to a browser, identities and their linking
// rules, one-time login codes. The rules:
//  - an identity (issuer + subject) belongs to exactly one user (a unique index; a concurrent
//    second sign-in that loses the race reads the winner's row);
//  - a first sign-in creates the user, with the email verified only if the provider asserted it;
//  - an existing account with the same email is linked automatically only when the provider
//    asserts the address as verified AND the account's own address is verified; otherwise the
//    sign-in ends with ACCOUNT_EXISTS and nothing is linked (no pre-hijacking: whoever registered
//    the address first without proving it gets no access through the provider, and the
//    provider's user gets none to an account they have not proved is theirs);
//  - a signed-in user links an identity explicitly through a link flow;
//  - an identity is unlinked only when the account keeps another way in.
// Secrets are stored only as SHA-256 hashes: the state, the browser binding, the link ticket,
// the login code. The PKCE verifier and the nonce are derived from the browser's cookie.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { PrismaClient, User } from '../store/index.ts'
import { isUniqueViolation } from '../store/index.ts'
import { AUDIT_EVENTS, type Audit } from '../audit/index.ts'
import { isPlausibleEmail, normalizeEmail } from '../credentials/index.ts'
import type { SecretBox } from '../mfa/index.ts'
import { gatehouseError } from '../../lib/errors.ts'
import type { ProviderEntry, ResolvedProvidersOptions } from './options.ts'
import type { AuthorizationRequest, ProviderProfile } from './client.ts'

/** Codes a callback may end with (the `error` parameter of the redirect). */
export type SignInRefusal = 'ACCOUNT_EXISTS' | 'ACCOUNT_DISABLED' | 'EMAIL_NOT_VERIFIED' | 'CONFLICT' | 'email_required'

/** A sign-in that ends without a login: the callback redirects with `?error=<code>`. */
export class SignInRefused extends Error {
  override name = 'SignInRefused'
  readonly code: SignInRefusal
  constructor (code: SignInRefusal, message: string) {
    super(message)
    this.code = code
  }
}

export interface StartedFlow {
  /** The value of the flow cookie (the browser binding); the only place it exists. */
  binding: string
  request: AuthorizationRequest
}

export interface TakenFlow {
  redirectUri: string
  linkUserId: string | null
  request: AuthorizationRequest
}

export type TakeFlowFailure = 'unknown' | 'other_provider' | 'foreign_browser' | 'used_or_expired'

export interface LinkedIdentity {
  provider: string
  name: string
  email: string | null
  linkedAt: Date
  lastLoginAt: Date | null
}

export interface ProvidersServiceDeps {
  prisma: PrismaClient
  audit: Audit | null
  log: FastifyBaseLogger
  options: ResolvedProvidersOptions
  /** Seals stored provider tokens (entries with storeTokens). */
  box: SecretBox | null
}

const CODE_MAX_LENGTH = 128

export function sha256 (value: string): string {
  return createHash('sha256').update(value).digest('base64url')
}

function random (): string {
  return randomBytes(32).toString('base64url')
}

/** The PKCE verifier (RFC 7636: 43 characters of base64url) and the nonce, from the browser binding. */
export function deriveSecrets (binding: string, state: string): AuthorizationRequest {
  const derive = (label: string) => createHmac('sha256', binding).update(`${label}\0${state}`).digest('base64url')
  return { state, codeVerifier: derive('pkce'), nonce: derive('nonce') }
}

function sameHash (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

function active (user: Pick<User, 'status' | 'deletedAt'>): boolean {
  return user.status === 'active' && user.deletedAt === null
}

export function createProvidersService (deps: ProvidersServiceDeps) {
  const { prisma, options } = deps
  const now = () => new Date(options.clock())
  let lastSweep = 0

  function record (event: Parameters<Audit['record']>[0]): void {
    deps.audit?.record(event)
  }

  /** Drops expired flows and login codes now and then (at most once a minute per process). */
  function sweep (): void {
    const at = options.clock()
    if (at - lastSweep < 60_000) return
    lastSweep = at
    const before = new Date(at - 60_000)
    Promise.all([
      prisma.providerFlow.deleteMany({ where: { expiresAt: { lt: before } } }),
      prisma.providerLoginCode.deleteMany({ where: { expiresAt: { lt: before } } })
    ]).catch((err: unknown) => deps.log.warn({ err }, 'providers: could not delete expired flows'))
  }

  function sealed (entry: ProviderEntry, profile: ProviderProfile): { accessToken?: string | null, refreshToken?: string | null } {
    if (!entry.storeTokens || deps.box === null) return {}
    const ad = `provider-token:${profile.issuer}:${profile.subject}`
    return {
      accessToken: deps.box.seal(profile.accessToken, ad),
      refreshToken: profile.refreshToken === null ? null : deps.box.seal(profile.refreshToken, ad)
    }
  }

  function identityData (entry: ProviderEntry, profile: ProviderProfile) {
    return {
      providerId: entry.id,
      issuer: profile.issuer,
      subject: profile.subject,
      email: profile.email?.slice(0, 320) ?? null,
      emailVerified: profile.emailVerified,
      lastLoginAt: now(),
      ...sealed(entry, profile)
    }
  }

  async function findIdentity (profile: ProviderProfile) {
    return await prisma.providerIdentity.findUnique({ where: { issuer_subject: { issuer: profile.issuer, subject: profile.subject } }, include: { user: true } })
  }

  async function refresh (id: string, entry: ProviderEntry, profile: ProviderProfile): Promise<void> {
    const { providerId: _p, issuer: _i, subject: _s, ...data } = identityData(entry, profile)
    await prisma.providerIdentity.update({ where: { id }, data })
  }

  function refuse (code: SignInRefusal, reason: string, entry: ProviderEntry, request: FastifyRequest | undefined, subjectId: string | null = null): never {
    record({ type: AUDIT_EVENTS.PROVIDER_LOGIN, outcome: 'failure', reason, subjectId, details: { provider: entry.id }, request })
    throw new SignInRefused(code, reason)
  }

  /** The user a provider sign-in is for: the identity's owner, an automatic link, or a new user. */
  async function signIn (entry: ProviderEntry, profile: ProviderProfile, request?: FastifyRequest): Promise<User> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const identity = await findIdentity(profile)
      if (identity !== null) {
        if (!active(identity.user)) refuse('ACCOUNT_DISABLED', identity.user.deletedAt === null ? 'disabled' : 'deleted', entry, request, identity.user.id)
        await refresh(identity.id, entry, profile)
        return identity.user
      }
      const email = profile.email === null ? '' : normalizeEmail(profile.email)
      if (!isPlausibleEmail(email)) refuse('email_required', 'no_email', entry, request)
      const existing = await prisma.user.findUnique({ where: { email } })
      if (existing !== null) {
        // Pre-hijacking defence: both sides must have proved the address.
        if (!profile.emailVerified || existing.emailVerifiedAt === null || existing.deletedAt !== null) {
          refuse('ACCOUNT_EXISTS', profile.emailVerified ? 'local_email_unverified' : 'provider_email_unverified', entry, request, existing.id)
        }
        if (!active(existing)) refuse('ACCOUNT_DISABLED', 'disabled', entry, request, existing.id)
        try {
          await prisma.providerIdentity.create({ data: { ...identityData(entry, profile), userId: existing.id } })
        } catch (err) {
          if (!isUniqueViolation(err)) throw err
          // Either the same identity was linked meanwhile (read it again), or the account
          // already has another identity of this provider.
          if (await findIdentity(profile) !== null) continue
          refuse('ACCOUNT_EXISTS', 'other_identity_linked', entry, request, existing.id)
        }
        record({ type: AUDIT_EVENTS.PROVIDER_LINKED, outcome: 'success', actorId: existing.id, subjectId: existing.id, details: { provider: entry.id, via: 'verified_email' }, request })
        return existing
      }
      let created: User
      try {
        created = await prisma.user.create({
          data: {
            email,
            name: profile.name?.slice(0, 200) ?? null,
            passwordHash: null,
            emailVerifiedAt: profile.emailVerified ? now() : null,
            identities: { create: identityData(entry, profile) }
          }
        })
      } catch (err) {
        // A concurrent sign-in or registration took the address or the identity: resolve again.
        if (isUniqueViolation(err)) continue
        throw err
      }
      record({ type: AUDIT_EVENTS.REGISTER, outcome: 'success', actorId: created.id, subjectId: created.id, details: { provider: entry.id, emailVerified: profile.emailVerified }, request })
      record({ type: AUDIT_EVENTS.PROVIDER_LINKED, outcome: 'success', actorId: created.id, subjectId: created.id, details: { provider: entry.id, via: 'signup' }, request })
      return created
    }
    return refuse('ACCOUNT_EXISTS', 'race', entry, request)
  }

  /** Links the identity to the signed-in user of a link flow. */
  async function link (entry: ProviderEntry, profile: ProviderProfile, userId: string, request?: FastifyRequest): Promise<void> {
    const fail = (code: SignInRefusal, reason: string): never => {
      record({ type: AUDIT_EVENTS.PROVIDER_LINKED, outcome: 'failure', reason, actorId: userId, subjectId: userId, details: { provider: entry.id }, request })
      throw new SignInRefused(code, reason)
    }
    const identity = await findIdentity(profile)
    if (identity !== null) {
      if (identity.userId !== userId) fail('CONFLICT', 'identity_of_another_user')
      await refresh(identity.id, entry, profile)
      return
    }
    const user = await prisma.user.findUnique({ where: { id: userId } })
    if (user === null || !active(user)) fail('ACCOUNT_DISABLED', 'inactive_account')
    try {
      await prisma.providerIdentity.create({ data: { ...identityData(entry, profile), userId } })
    } catch (err) {
      if (!isUniqueViolation(err)) throw err
      const again = await findIdentity(profile)
      if (again?.userId === userId) return
      fail('CONFLICT', again === null ? 'other_identity_linked' : 'identity_of_another_user')
    }
    record({ type: AUDIT_EVENTS.PROVIDER_LINKED, outcome: 'success', actorId: userId, subjectId: userId, details: { provider: entry.id, via: 'session' }, request })
  }

  return {
    options,

    /** A new login flow for this browser. */
    async startFlow (entry: ProviderEntry, redirectUri: string): Promise<StartedFlow> {
      sweep()
      const binding = random()
      const state = random()
      await prisma.providerFlow.create({
        data: { providerId: entry.id, stateHash: sha256(state), browserHash: sha256(binding), redirectUri, expiresAt: new Date(options.clock() + options.flowTtl * 1000) }
      })
      return { binding, request: deriveSecrets(binding, state) }
    },

    /** A link flow for a signed-in user: the ticket opens it (once) in the browser. */
    async createLink (entry: ProviderEntry, redirectUri: string, userId: string, request?: FastifyRequest): Promise<string> {
      sweep()
      const ticket = random()
      await prisma.providerFlow.create({
        data: { providerId: entry.id, linkHash: sha256(ticket), linkUserId: userId, redirectUri, expiresAt: new Date(options.clock() + options.flowTtl * 1000) }
      })
      record({ type: AUDIT_EVENTS.PROVIDER_LINK_STARTED, outcome: 'success', actorId: userId, subjectId: userId, details: { provider: entry.id }, request })
      return ticket
    },

    /** Binds a link flow to the browser that opens its ticket; null when the ticket is unknown, used or expired. */
    async openLink (entry: ProviderEntry, ticket: string): Promise<StartedFlow | null> {
      if (ticket.length > CODE_MAX_LENGTH) return null
      const binding = random()
      const state = random()
      const opened = await prisma.providerFlow.updateMany({
        where: { linkHash: sha256(ticket), providerId: entry.id, stateHash: null, usedAt: null, expiresAt: { gt: now() } },
        data: { stateHash: sha256(state), browserHash: sha256(binding) }
      })
      return opened.count === 1 ? { binding, request: deriveSecrets(binding, state) } : null
    },

    /**
     * The flow a callback belongs to, used up. It must have been started by this browser (the
     * cookie's binding); a callback from another browser leaves the flow as it was.
     */
    async takeFlow (entry: ProviderEntry, state: unknown, binding: string | undefined): Promise<TakenFlow | TakeFlowFailure> {
      if (typeof state !== 'string' || state === '' || state.length > CODE_MAX_LENGTH) return 'unknown'
      const row = await prisma.providerFlow.findUnique({ where: { stateHash: sha256(state) } })
      if (row === null || row.browserHash === null) return 'unknown'
      if (row.providerId !== entry.id) return 'other_provider'
      if (binding === undefined || binding.length > CODE_MAX_LENGTH || !sameHash(sha256(binding), row.browserHash)) return 'foreign_browser'
      const taken = await prisma.providerFlow.updateMany({ where: { id: row.id, usedAt: null, expiresAt: { gt: now() } }, data: { usedAt: now() } })
      if (taken.count !== 1) return 'used_or_expired'
      return { redirectUri: row.redirectUri, linkUserId: row.linkUserId, request: deriveSecrets(binding, state) }
    },

    signIn,
    link,

    /** A one-time login code for the user (60 s by default, single use, stored hashed). */
    async issueLoginCode (userId: string, entry: ProviderEntry): Promise<string> {
      const code = random()
      await prisma.providerLoginCode.create({ data: { codeHash: sha256(code), userId, providerId: entry.id, expiresAt: new Date(options.clock() + options.loginCodeTtl * 1000) } })
      return code
    },

    /** Uses up a login code: the user it was issued for, or null (unknown, used, expired). */
    async redeemLoginCode (code: string): Promise<{ userId: string, providerId: string } | null> {
      if (code.length > CODE_MAX_LENGTH) return null
      const codeHash = sha256(code)
      const used = await prisma.providerLoginCode.updateMany({ where: { codeHash, usedAt: null, expiresAt: { gt: now() } }, data: { usedAt: now() } })
      if (used.count !== 1) return null
      const row = await prisma.providerLoginCode.findUnique({ where: { codeHash }, select: { userId: true, providerId: true } })
      return row
    },

    /** The user's linked identities, never their tokens. */
    async identities (userId: string): Promise<LinkedIdentity[]> {
      const rows = await prisma.providerIdentity.findMany({ where: { userId }, orderBy: { createdAt: 'asc' }, select: { providerId: true, email: true, createdAt: true, lastLoginAt: true } })
      return rows.map((r) => ({ provider: r.providerId, name: options.providers.get(r.providerId)?.name ?? r.providerId, email: r.email, linkedAt: r.createdAt, lastLoginAt: r.lastLoginAt }))
    },

    /**
     * Removes the user's identity of `providerId`. CONFLICT when it is the account's last way in
     * (no password, no other identity, no passkey); NOT_FOUND when there is none.
     */
    async unlink (userId: string, providerId: string, request?: FastifyRequest, actorId: string = userId): Promise<void> {
      const outcome = await prisma.$transaction(async (tx) => {
        const identity = await tx.providerIdentity.findUnique({ where: { userId_providerId: { userId, providerId } }, select: { id: true } })
        if (identity === null) return 'none' as const
        const user = await tx.user.findUnique({ where: { id: userId }, select: { passwordHash: true } })
        const others = await tx.providerIdentity.count({ where: { userId, id: { not: identity.id } } })
        const passkeys = await tx.webAuthnCredential.count({ where: { userId } })
        if ((user?.passwordHash ?? null) === null && others === 0 && passkeys === 0) return 'last' as const
        await tx.providerIdentity.delete({ where: { id: identity.id } })
        return 'done' as const
      })
      if (outcome === 'none') throw gatehouseError('NOT_FOUND', 'No identity of this provider is linked')
      if (outcome === 'last') {
        record({ type: AUDIT_EVENTS.PROVIDER_UNLINKED, outcome: 'failure', reason: 'last_sign_in_method', actorId, subjectId: userId, details: { provider: providerId }, request })
        throw gatehouseError('CONFLICT', 'This is the account\'s last way to sign in: set a password (password reset) or link another provider first')
      }
      record({ type: AUDIT_EVENTS.PROVIDER_UNLINKED, outcome: 'success', actorId, subjectId: userId, details: { provider: providerId }, request })
    },

    /** The sealed provider tokens of an identity opened (entries with storeTokens), or null. */
    async storedTokens (userId: string, providerId: string): Promise<{ accessToken: string, refreshToken: string | null } | null> {
      if (deps.box === null) return null
      const row = await prisma.providerIdentity.findUnique({ where: { userId_providerId: { userId, providerId } }, select: { issuer: true, subject: true, accessToken: true, refreshToken: true } })
      if (row === null || row.accessToken === null) return null
      const ad = `provider-token:${row.issuer}:${row.subject}`
      return { accessToken: deps.box.open(row.accessToken, ad), refreshToken: row.refreshToken === null ? null : deps.box.open(row.refreshToken, ad) }
    },

    record
  }
}

export type ProvidersService = ReturnType<typeof createProvidersService>
