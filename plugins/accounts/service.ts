// Email verification, email change and password reset over Prisma, the mailer and the
// credential verifier (OWASP Forgot Password and Email Verification cheat sheets, NIST 800-63B):
//  - tokens are single use: the one request whose conditional update claims the row wins;
//  - a new token of a purpose revokes the user's older ones of that purpose;
//  - each token is bound to the account state it was issued for (email-token.ts);
//  - a password reset ends every session, access token and API key of the user, and removes the
//    provider identities whose provider never asserted the address as verified;
//  - a forgotten-password request does its lookup and mail after the answer, for every address.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { gatehouseError, isGatehouseError, type GatehouseError } from '../../lib/errors.ts'
import { optionChecks } from '../../lib/options.ts'
import type { PrismaClient, User } from '../store/index.ts'
import { AUDIT_EVENTS, type Audit } from '../audit/index.ts'
import type { Credentials, LoginThrottle } from '../credentials/index.ts'
import type { Mailer } from '../mailer/index.ts'
import { REVOCATION_MARGIN_SECONDS } from '../sessions/index.ts'
import { createBackground } from './background.ts'
import { hashEmailToken, isEmailTokenShape, newEmailToken, stateHash, type EmailTokenPurpose } from './email-token.ts'

export interface AccountsOptions {
  /** Where mail links point: `<appUrl>/verify-email?token=`, `<appUrl>/reset-password?token=`. */
  appUrl: string
  /** Seconds a verification or email-change link is valid. @default 86400 */
  emailVerificationTtl?: number
  /** Seconds a reset link is valid. @default 1800 */
  passwordResetTtl?: number
  /** Sign-in with a correct password answers EMAIL_NOT_VERIFIED until the address is verified. @default false */
  requireVerifiedEmail?: boolean
  /** Lifetime of access tokens (how long revoked sessions stay denied). @default 900 */
  accessTokenTtl?: number
  /** Addresses the operator vouches for (ADMIN_EMAIL): marked verified at start. @default [] */
  verifiedEmails?: string[]
  /** Background tasks run at once at most (each is a lookup and a small write; the mail is queued apart). @default 1 */
  concurrency?: number
  /** Milliseconds since the epoch. @default Date.now */
  clock?: () => number
}

export type ResolvedAccountsOptions = Readonly<Required<AccountsOptions>>

/** What accounts needs from gatehouse-tokens. */
export interface TokenRevoker {
  revokeSids: (sids: string[], untilEpochSec: number) => Promise<void>
  userChanged: (userId: string) => Promise<void>
}

export interface AccountsDeps {
  prisma: PrismaClient
  mailer: Mailer
  credentials: Credentials
  tokens: TokenRevoker
  audit: Audit | null
  loginThrottle: () => LoginThrottle | null
  log: FastifyBaseLogger
}

const check = optionChecks('gatehouse-accounts')

export function resolveAccountsOptions (input: AccountsOptions): ResolvedAccountsOptions {
  const appUrl = check.string('appUrl', input.appUrl)
  if (!/^https?:\/\//.test(appUrl)) check.fail('appUrl', 'must be an http(s) URL')
  if (input.verifiedEmails !== undefined && (!Array.isArray(input.verifiedEmails) || !input.verifiedEmails.every((e) => typeof e === 'string'))) {
    check.fail('verifiedEmails', 'must be an array of addresses')
  }
  if (input.clock !== undefined && typeof input.clock !== 'function') check.fail('clock', 'must be a function returning milliseconds')
  return Object.freeze({
    appUrl: appUrl.replace(/\/+$/, ''),
    emailVerificationTtl: check.integer('emailVerificationTtl', input.emailVerificationTtl, 86_400, { min: 1 }),
    passwordResetTtl: check.integer('passwordResetTtl', input.passwordResetTtl, 1800, { min: 1 }),
    requireVerifiedEmail: check.boolean('requireVerifiedEmail', input.requireVerifiedEmail, false),
    accessTokenTtl: check.integer('accessTokenTtl', input.accessTokenTtl, 900, { min: 1 }),
    verifiedEmails: Object.freeze([...(input.verifiedEmails ?? [])]) as string[],
    concurrency: check.integer('concurrency', input.concurrency, 1, { min: 1 }),
    clock: input.clock ?? Date.now
  })
}

const TX = { maxWait: 10_000, timeout: 10_000 }

function invalidToken (): GatehouseError {
  return gatehouseError('INVALID_EMAIL_TOKEN')
}

type TokenRow = NonNullable<Awaited<ReturnType<PrismaClient['emailToken']['findUnique']>>> & { user: User }

export function createAccounts (options: ResolvedAccountsOptions, deps: AccountsDeps) {
  const { prisma, mailer, credentials, tokens, log } = deps
  const clock = options.clock
  const background = createBackground(log, { concurrency: options.concurrency, maxQueued: 10_000, delayMs: [5, 50] })

  function record (event: Parameters<Audit['record']>[0]): void {
    deps.audit?.record(event)
  }

  function active (user: Pick<User, 'status' | 'deletedAt'> | null): boolean {
    return user !== null && user.deletedAt === null && user.status === 'active'
  }

  function link (page: string, token: string): string {
    return `${options.appUrl}/${page}?token=${encodeURIComponent(token)}`
  }

  /** A new token of `purpose` for `email`; older unused ones of that purpose stop working. */
  async function issue (user: User, purpose: EmailTokenPurpose, email: string, ttlSeconds: number): Promise<string> {
    const token = newEmailToken()
    const now = new Date(clock())
    await prisma.$transaction([
      prisma.emailToken.updateMany({ where: { userId: user.id, purpose, usedAt: null, revokedAt: null }, data: { revokedAt: now } }),
      prisma.emailToken.create({
        data: { userId: user.id, purpose, tokenHash: hashEmailToken(token), email, stateHash: stateHash(purpose, user), expiresAt: new Date(now.getTime() + ttlSeconds * 1000), createdAt: now }
      })
    ])
    return token
  }

  async function sendVerificationNow (userId: string, reason: string, request?: FastifyRequest): Promise<void> {
    const user = await prisma.user.findUnique({ where: { id: userId } })
    if (user === null || !active(user)) return
    if (user.emailVerifiedAt !== null) {
      record({ type: AUDIT_EVENTS.EMAIL_VERIFICATION_SENT, outcome: 'failure', reason: 'already_verified', actorId: user.id, subjectId: user.id, request })
      return
    }
    const token = await issue(user, 'verify_email', user.email, options.emailVerificationTtl)
    mailer.send('verifyEmail', user.email, { link: link('verify-email', token), expiresInMinutes: Math.round(options.emailVerificationTtl / 60) })
    record({ type: AUDIT_EVENTS.EMAIL_VERIFICATION_SENT, outcome: 'success', actorId: user.id, subjectId: user.id, details: { reason }, request })
  }

  /** Finds a usable token of one of `purposes`; INVALID_EMAIL_TOKEN otherwise (after an audit row). */
  async function usableToken (token: unknown, purposes: readonly EmailTokenPurpose[], auditType: string, request?: FastifyRequest): Promise<TokenRow> {
    const fail = (reason: string, row?: TokenRow | null): never => {
      record({ type: auditType, outcome: 'failure', reason, subjectId: row?.userId ?? null, details: row == null ? undefined : { purpose: row.purpose }, request })
      throw invalidToken()
    }
    if (!isEmailTokenShape(token)) return fail('malformed')
    const row = await prisma.emailToken.findUnique({ where: { tokenHash: hashEmailToken(token) }, include: { user: true } }) as TokenRow | null
    if (row === null) return fail('unknown')
    if (!purposes.includes(row.purpose as EmailTokenPurpose)) return fail('wrong_purpose', row)
    if (row.usedAt !== null) return fail('used', row)
    if (row.revokedAt !== null) return fail('superseded', row)
    if (row.expiresAt.getTime() <= clock()) return fail('expired', row)
    if (!active(row.user)) return fail('inactive_account', row)
    if (stateHash(row.purpose as EmailTokenPurpose, row.user) !== row.stateHash) return fail('account_changed', row)
    return row
  }

  /** Claims `row` for this request; false when another request claimed it first. */
  async function claim (tx: Parameters<Parameters<PrismaClient['$transaction']>[0]>[0], row: TokenRow, now: Date): Promise<boolean> {
    const won = await tx.emailToken.updateMany({ where: { id: row.id, usedAt: null, revokedAt: null, expiresAt: { gt: now } }, data: { usedAt: now } })
    return won.count === 1
  }

  function revocationHorizon (): number {
    return Math.floor(clock() / 1000) + options.accessTokenTtl + REVOCATION_MARGIN_SECONDS
  }

  /** POST /auth/email/verify: a verification or an email-change token. */
  async function verifyEmail (token: unknown, request?: FastifyRequest): Promise<{ userId: string, email: string, changed: boolean }> {
    const row = await usableToken(token, ['verify_email', 'change_email'], 'email_verified', request)
    const user = row.user
    const now = new Date(clock())
    const changing = row.purpose === 'change_email'
    let outcome: 'ok' | 'lost' | 'stale' | 'taken'
    try {
      outcome = await prisma.$transaction(async (tx) => {
        if (!await claim(tx, row, now)) return 'lost'
        if (changing) {
          const holder = await tx.user.findUnique({ where: { email: row.email }, select: { id: true } })
          if (holder !== null && holder.id !== user.id) return 'taken'
        }
        const changed = await tx.user.updateMany({
          where: { id: user.id, email: user.email, passwordHash: user.passwordHash, status: 'active', deletedAt: null },
          data: changing ? { email: row.email, emailVerifiedAt: now } : { emailVerifiedAt: now }
        })
        if (changed.count !== 1) return 'stale'
        // The address is settled: other pending links about addresses of this account are void.
        await tx.emailToken.updateMany({ where: { userId: user.id, purpose: { in: ['verify_email', 'change_email'] }, usedAt: null, revokedAt: null }, data: { revokedAt: now } })
        return 'ok'
      }, TX)
    } catch (err) {
      if (isGatehouseError(err) && err.code === 'CONFLICT') outcome = 'taken'
      else throw err
    }
    if (outcome === 'taken') {
      record({ type: AUDIT_EVENTS.EMAIL_CHANGED, outcome: 'failure', reason: 'email_taken', actorId: user.id, subjectId: user.id, request })
      throw gatehouseError('EMAIL_TAKEN')
    }
    if (outcome !== 'ok') {
      record({ type: changing ? 'email_changed' : 'email_verified', outcome: 'failure', reason: outcome === 'lost' ? 'used' : 'account_changed', subjectId: user.id, request })
      throw invalidToken()
    }
    if (changing) {
      await tokens.userChanged(user.id)
      await credentials.forgetUser(user.id)
      record({ type: AUDIT_EVENTS.EMAIL_CHANGED, outcome: 'success', actorId: user.id, subjectId: user.id, details: { verified: true }, request })
    } else {
      await tokens.userChanged(user.id)
      record({ type: AUDIT_EVENTS.EMAIL_VERIFIED, outcome: 'success', actorId: user.id, subjectId: user.id, request })
    }
    return { userId: user.id, email: row.email, changed: changing }
  }

  /** The per-account password check of an email change, throttled like a login. */
  async function checkCurrentPassword (user: User, password: string, request?: FastifyRequest): Promise<void> {
    const attempt = await deps.loginThrottle()?.begin(user.email) ?? null
    let ok: boolean
    try {
      ok = user.passwordHash !== null && await credentials.verifyPassword(user.passwordHash, password)
    } catch (err) {
      await attempt?.release?.().catch(() => {})
      throw err
    }
    if (!ok) {
      await attempt?.fail()
      record({ type: AUDIT_EVENTS.EMAIL_CHANGE_REQUESTED, outcome: 'failure', reason: 'bad_password', actorId: user.id, subjectId: user.id, request })
      throw gatehouseError('INVALID_CREDENTIALS', 'The current password is incorrect')
    }
    await attempt?.succeed()
  }

  /**
   * POST /auth/email: a confirmation link to the new address, a notice to the old one. `confirm`
   * runs once the current password is right, before the new address is looked at (a step-up
   * check, for example a current TOTP code); what it throws ends the request.
   */
  async function requestEmailChange (userId: string, newEmail: string, currentPassword: string, request?: FastifyRequest, checks: { confirm?: () => Promise<void> } = {}): Promise<void> {
    const user = await prisma.user.findUnique({ where: { id: userId } })
    if (user === null || !active(user)) throw gatehouseError('USER_NOT_FOUND')
    await checkCurrentPassword(user, currentPassword, request)
    await checks.confirm?.()
    if (newEmail === user.email) {
      record({ type: AUDIT_EVENTS.EMAIL_CHANGE_REQUESTED, outcome: 'failure', reason: 'same_email', actorId: user.id, subjectId: user.id, request })
      throw gatehouseError('CONFLICT', 'This is already the account\'s email address')
    }
    if (await prisma.user.findUnique({ where: { email: newEmail }, select: { id: true } }) !== null) {
      record({ type: AUDIT_EVENTS.EMAIL_CHANGE_REQUESTED, outcome: 'failure', reason: 'email_taken', actorId: user.id, subjectId: user.id, request })
      throw gatehouseError('EMAIL_TAKEN')
    }
    const token = await issue(user, 'change_email', newEmail, options.emailVerificationTtl)
    mailer.send('changeEmail', newEmail, { link: link('verify-email', token), expiresInMinutes: Math.round(options.emailVerificationTtl / 60) })
    mailer.send('emailChangeRequested', user.email, { newEmail })
    record({ type: AUDIT_EVENTS.EMAIL_CHANGE_REQUESTED, outcome: 'success', actorId: user.id, subjectId: user.id, request })
  }

  async function sendResetNow (email: string, reason: string, actorId: string | null, request?: FastifyRequest): Promise<void> {
    const user = await prisma.user.findUnique({ where: { email } })
    if (user === null || !active(user)) {
      record({ type: AUDIT_EVENTS.PASSWORD_RESET_REQUESTED, outcome: 'failure', reason: user === null ? 'unknown_email' : 'inactive_account', actorId, subjectId: user?.id ?? null, details: { via: reason }, request })
      return
    }
    const token = await issue(user, 'reset_password', user.email, options.passwordResetTtl)
    mailer.send('resetPassword', user.email, { link: link('reset-password', token), expiresInMinutes: Math.round(options.passwordResetTtl / 60) })
    record({ type: AUDIT_EVENTS.PASSWORD_RESET_REQUESTED, outcome: 'success', actorId, subjectId: user.id, details: { via: reason }, request })
  }

  /** POST /auth/password/reset. */
  async function resetPassword (token: unknown, newPassword: string, request?: FastifyRequest): Promise<{ userId: string }> {
    const row = await usableToken(token, ['reset_password'], 'password_reset', request)
    const user = row.user
    let normalized: string
    try {
      normalized = credentials.checkPasswordPolicy(newPassword, { email: user.email })
    } catch (err) {
      record({ type: AUDIT_EVENTS.PASSWORD_RESET, outcome: 'failure', reason: 'weak_password', subjectId: user.id, request })
      throw err
    }
    // Hashed before the transaction, which then only claims, writes and revokes.
    const passwordHash = await credentials.hashPassword(normalized)
    const now = new Date(clock())
    const result = await prisma.$transaction(async (tx) => {
      if (!await claim(tx, row, now)) return 'lost' as const
      const changed = await tx.user.updateMany({
        where: { id: user.id, email: user.email, passwordHash: user.passwordHash, status: 'active', deletedAt: null },
        data: { passwordHash, passwordChangedAt: now, tokenVersion: { increment: 1 } }
      })
      if (changed.count !== 1) return 'stale' as const
      const families = await tx.refreshFamily.findMany({ where: { userId: user.id, revokedAt: null }, select: { id: true } })
      await tx.refreshFamily.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: now, revokedReason: 'password_reset' } })
      await tx.refreshToken.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: now } })
      const keys = await tx.apiKey.findMany({ where: { userId: user.id, revokedAt: null }, select: { id: true } })
      await tx.apiKey.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: now } })
      await tx.emailToken.updateMany({ where: { userId: user.id, usedAt: null, revokedAt: null }, data: { revokedAt: now } })
      // The mailbox's owner takes the account over: a provider identity that never proved this
      // address (its provider did not assert it verified) goes, so whoever signed up through it
      // before the owner keeps no way in.
      const unproved = await tx.providerIdentity.findMany({ where: { userId: user.id, emailVerified: false }, select: { id: true, providerId: true } })
      if (unproved.length > 0) await tx.providerIdentity.deleteMany({ where: { id: { in: unproved.map((i) => i.id) } } })
      return { sids: families.map((f) => f.id), apiKeys: keys.map((k) => k.id), providers: unproved.map((i) => i.providerId) }
    }, TX)
    if (result === 'lost' || result === 'stale') {
      record({ type: AUDIT_EVENTS.PASSWORD_RESET, outcome: 'failure', reason: result === 'lost' ? 'used' : 'account_changed', subjectId: user.id, request })
      throw invalidToken()
    }
    // Committed: make it effective on every instance (access tokens, cached Basic and API-key checks).
    if (result.sids.length > 0) await tokens.revokeSids(result.sids, revocationHorizon())
    await tokens.userChanged(user.id)
    await credentials.forgetUser(user.id)
    for (const id of result.apiKeys) await credentials.revokeApiKey(user.id, id, request)
    for (const provider of result.providers) {
      record({ type: AUDIT_EVENTS.PROVIDER_UNLINKED, outcome: 'success', reason: 'password_reset', actorId: user.id, subjectId: user.id, details: { provider }, request })
    }
    mailer.send('passwordChanged', user.email)
    record({ type: AUDIT_EVENTS.PASSWORD_RESET, outcome: 'success', actorId: user.id, subjectId: user.id, details: { sessionCount: result.sids.length, apiKeyCount: result.apiKeys.length }, request })
    return { userId: user.id }
  }

  return {
    options,
    /** A verification mail for the user's current address, sent after the request (register). */
    sendVerification (userId: string, reason: 'register' | 'resend' | 'admin', request?: FastifyRequest): void {
      background.run('email verification', () => sendVerificationNow(userId, reason, request))
    },
    /** POST /auth/password/forgot: the same for every address; the lookup and mail come after the answer. */
    forgotPassword (normalizedEmail: string, request?: FastifyRequest): void {
      background.run('password reset', () => sendResetNow(normalizedEmail, 'forgot', null, request))
    },
    /** An admin sends the user a reset link. */
    async sendPasswordReset (userId: string, actorId: string, request?: FastifyRequest): Promise<void> {
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true, deletedAt: true } })
      if (user === null || user.deletedAt !== null) throw gatehouseError('NOT_FOUND', 'No such user')
      background.run('password reset', () => sendResetNow(user.email, 'admin', actorId, request))
    },
    /** Marks the address verified (the CLI). */
    async markVerified (userId: string, via: string): Promise<void> {
      await prisma.user.update({ where: { id: userId }, data: { emailVerifiedAt: new Date(clock()) } })
      await tokens.userChanged(userId)
      record({ type: AUDIT_EVENTS.EMAIL_VERIFIED, outcome: 'success', subjectId: userId, details: { via } })
    },
    /**
     * EMAIL_NOT_VERIFIED when sign-in requires a verified address and `user` has none. Called for
     * every door once its credential proved right: a password (through the sign-in check the
     * plugin adds to gatehouse-credentials: login, the password grant, HTTP Basic) and a passkey.
     * `details` say which door (`{ scheme: 'basic' }`, `{ method: 'webauthn' }`) in the audit event.
     */
    assertMaySignIn (user: Pick<User, 'id' | 'emailVerifiedAt'>, request?: FastifyRequest, details?: Record<string, unknown>): void {
      if (!options.requireVerifiedEmail || user.emailVerifiedAt !== null) return
      record({ type: AUDIT_EVENTS.LOGIN_FAILURE, outcome: 'failure', reason: 'email_not_verified', subjectId: user.id, details, request })
      throw gatehouseError('EMAIL_NOT_VERIFIED')
    },
    verifyEmail,
    requestEmailChange,
    resetPassword,
    /** Resolves when every background task has finished (tests, close). */
    idle: () => background.idle()
  }
}

export type Accounts = ReturnType<typeof createAccounts>
