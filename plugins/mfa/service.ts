// Second factors as plain functions over Prisma: TOTP enrolment and checks, recovery codes, the
// second step of a login (mfa_token) and the administrative reset. Passkeys are in passkeys.ts
// and plug into the same login step.
//
// Every decision that must hold across instances is one conditional update in the database:
// a TOTP step is accepted only if it is later than the last one used, a recovery code only if it
// is still unused, an answer to an mfa_token only while its attempts last, and the token is spent
// once.
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { gatehouseError, insufficientAuthentication, isGatehouseError, serviceUnavailable, type GatehouseError } from '../../lib/errors.ts'
import { AMR_PASSWORD_OTP, isRecentMultiFactor } from '../../lib/amr.ts'
import type { AuthUser } from '../../lib/auth-user.ts'
import type { PrismaClient, User } from '../store/index.ts'
import { AUDIT_EVENTS, type Audit, type AuditEventType } from '../audit/index.ts'
import type { LoginThrottle, LoginAttempt as ThrottleAttempt } from '../rate-limit/index.ts'
import { SecretBoxError, type SecretBox } from './secret-box.ts'
import { matchTotp, newTotpSecret, otpauthUri, qrCodeDataUrl } from './totp.ts'
import { RECOVERY_CODE_COUNT, hashMfaToken, hashRecoveryCode, newMfaToken, newRecoveryCode, normalizeRecoveryCode } from './codes.ts'
import type { ResolvedMfaOptions } from './options.ts'

export type MfaMethod = 'totp' | 'recovery_code' | 'webauthn'

export interface MfaDeps {
  prisma: PrismaClient
  box: SecretBox
  audit: Audit | null
  loginThrottle: () => LoginThrottle | null
  log: FastifyBaseLogger
  options: ResolvedMfaOptions
}

export interface MfaStatus {
  totp: boolean
  passkeys: number
  recoveryCodes: number
}

export interface TotpSetup {
  secret: string
  otpauthUri: string
  qrCode: string
}

export interface MfaChallenge {
  mfaToken: string
  methods: MfaMethod[]
  expiresIn: number
}

/** A second-step answer: exactly one of these. */
export interface MfaProof {
  code?: string
  recoveryCode?: string
  credential?: unknown
}

/** The login step an mfa_token stands for, once an answer was reserved against it. */
export interface MfaLoginStep {
  id: string
  userId: string
  clientId: string
}

/** A second factor that can check a passkey answer for a login step (passkeys.ts). */
export interface PasskeyFactor {
  count: (userId: string) => Promise<number>
  verifySecondFactor: (step: MfaLoginStep, credential: unknown) => Promise<{ ok: boolean, userVerified: boolean }>
  removeAll: (userId: string) => Promise<number>
}

export interface CompletedLogin {
  user: User
  amr: string[]
  clientId: string
}

/**
 * The self-service actions that, for an account with a second factor, need a recent multi-factor
 * authentication or a current code (CONTRACT §11; the table in docs/mfa.md).
 */
export type SensitiveAction = 'password_change' | 'email_change' | 'totp_disable' | 'passkey_remove' | 'recovery_codes' | 'api_key_create' | 'totp_setup' | 'passkey_register'

/** The audit event each action records its refusals under. */
const ACTION_EVENTS: Readonly<Record<SensitiveAction, AuditEventType>> = Object.freeze({
  password_change: AUDIT_EVENTS.PASSWORD_CHANGE,
  email_change: AUDIT_EVENTS.EMAIL_CHANGE_REQUESTED,
  totp_disable: AUDIT_EVENTS.MFA_TOTP_DISABLED,
  passkey_remove: AUDIT_EVENTS.PASSKEY_REMOVED,
  recovery_codes: AUDIT_EVENTS.MFA_RECOVERY_CODES_REGENERATED,
  api_key_create: AUDIT_EVENTS.API_KEY_CREATED,
  totp_setup: AUDIT_EVENTS.MFA_TOTP_SETUP,
  passkey_register: AUDIT_EVENTS.PASSKEY_REGISTERED
})

/** A current factor sent with a sensitive action: at most one of them. */
export interface StepUpProof {
  code?: string
  recoveryCode?: string
}

/** Runs where the action changes something: uses up the code it was given, if any. */
export type StepUpCheck = () => Promise<void>

const NOTHING_MORE: StepUpCheck = async () => {}

/** Prefix of the per-account throttle key of second-factor answers (see docs/mfa.md). */
export const MFA_THROTTLE_PREFIX = 'mfa:'

function invalidCode (message?: string): GatehouseError {
  return gatehouseError('INVALID_MFA_CODE', message)
}

function totpAlreadyOn (): GatehouseError {
  return gatehouseError('CONFLICT', 'TOTP is already on: turn it off first to enrol another authenticator')
}

/** SHA-256 of the password hash a login step was made from. */
export function passwordFingerprint (passwordHash: string | null): string {
  return createHash('sha256').update(passwordHash ?? '', 'utf8').digest('base64url')
}

export function createMfaService (deps: MfaDeps) {
  const { prisma, box, options, log } = deps
  const clock = options.clock
  let passkeys: PasskeyFactor | null = null
  let lastSweep = 0

  function record (event: Parameters<Audit['record']>[0]): void {
    deps.audit?.record(event)
  }

  function associatedData (userId: string): string {
    return `totp:${userId}`
  }

  function openSecret (sealed: string, userId: string): string {
    try {
      return box.open(sealed, associatedData(userId))
    } catch (err) {
      if (!(err instanceof SecretBoxError)) throw err
      // The key file is not the one the secret was sealed with: a deployment fault, not a wrong code.
      log.error({ userId, kid: box.kidOf(sealed), reason: err.message }, 'mfa: a TOTP secret cannot be opened with the keys in AUTH_KEYS_DIR')
      throw serviceUnavailable(err)
    }
  }

  /** Drops expired login steps and challenges now and then (at most once a minute per process). */
  function sweep (now: number): void {
    if (now - lastSweep < 60_000) return
    lastSweep = now
    const before = new Date(now - 3600_000)
    Promise.all([
      prisma.mfaLogin.deleteMany({ where: { expiresAt: { lt: before } } }),
      prisma.webAuthnChallenge.deleteMany({ where: { expiresAt: { lt: before } } })
    ]).catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'mfa: could not delete expired login steps'))
  }

  async function throttled (userId: string): Promise<ThrottleAttempt | null> {
    const throttle = deps.loginThrottle()
    return throttle === null ? null : await throttle.begin(MFA_THROTTLE_PREFIX + userId)
  }

  // ---- TOTP -----------------------------------------------------------------------------------

  /**
   * Accepts `code` for the user's active TOTP once: its step must be later than the last step used
   * (one conditional update, so two instances cannot both accept it). Re-seals the secret under
   * the current key when it was sealed under an older one.
   */
  async function useTotp (userId: string, code: string): Promise<boolean> {
    const factor = await prisma.totpFactor.findUnique({ where: { userId } })
    if (factor === null || factor.confirmedAt === null) return false
    const secret = openSecret(factor.secret, userId)
    const step = matchTotp(secret, code, clock())
    if (step === null) return false
    const reseal = box.kidOf(factor.secret) !== box.currentKid ? { secret: box.seal(secret, associatedData(userId)) } : {}
    const { count } = await prisma.totpFactor.updateMany({
      where: { userId, confirmedAt: { not: null }, OR: [{ lastUsedStep: null }, { lastUsedStep: { lt: step } }] },
      data: { lastUsedStep: step, ...reseal }
    })
    return count === 1
  }

  async function useRecoveryCode (userId: string, input: string, request?: FastifyRequest): Promise<boolean> {
    const normalized = normalizeRecoveryCode(input)
    if (normalized === null) return false
    const { count } = await prisma.recoveryCode.updateMany({
      where: { userId, codeHash: hashRecoveryCode(normalized), usedAt: null },
      data: { usedAt: new Date(clock()) }
    })
    if (count !== 1) return false
    const left = await prisma.recoveryCode.count({ where: { userId, usedAt: null } })
    record({ type: AUDIT_EVENTS.MFA_RECOVERY_CODE_USED, outcome: 'success', actorId: userId, subjectId: userId, details: { remaining: left }, request })
    return true
  }

  async function replaceRecoveryCodes (userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
    const now = new Date(clock())
    await prisma.$transaction([
      prisma.recoveryCode.deleteMany({ where: { userId } }),
      prisma.recoveryCode.createMany({ data: codes.map((code) => ({ userId, codeHash: hashRecoveryCode(normalizeRecoveryCode(code)!), createdAt: now })) })
    ])
    return codes
  }

  /**
   * A pending TOTP secret; it turns on only with confirmTotp. CONFLICT when TOTP is already on.
   * An account that already has a factor (a passkey) needs a step-up to add one.
   */
  async function setupTotp (user: { id: string, email: string }, input: StepUpProof & { caller: AuthUser | null | undefined }, request?: FastifyRequest): Promise<TotpSetup> {
    const current = await prisma.totpFactor.findUnique({ where: { userId: user.id }, select: { confirmedAt: true } })
    if (current !== null && current.confirmedAt !== null) throw totpAlreadyOn()
    await requireStepUp(user.id, input.caller, input, 'totp_setup', request)
    const secret = newTotpSecret()
    await prisma.totpFactor.deleteMany({ where: { userId: user.id, confirmedAt: null } })
    try {
      await prisma.totpFactor.create({ data: { userId: user.id, secret: box.seal(secret, associatedData(user.id)) } })
    } catch (err) {
      if (isGatehouseError(err) && err.code === 'CONFLICT') throw totpAlreadyOn()
      throw err
    }
    record({ type: AUDIT_EVENTS.MFA_TOTP_SETUP, outcome: 'success', actorId: user.id, subjectId: user.id, request })
    const uri = otpauthUri(secret, options.totpIssuer, user.email)
    return { secret, otpauthUri: uri, qrCode: qrCodeDataUrl(uri) }
  }

  /** Turns the pending secret on with a correct code; returns a new set of recovery codes. */
  async function confirmTotp (userId: string, code: string, request?: FastifyRequest): Promise<string[]> {
    const factor = await prisma.totpFactor.findUnique({ where: { userId } })
    if (factor === null) throw gatehouseError('NOT_FOUND', 'No TOTP enrolment is pending: call /auth/mfa/totp/setup first')
    if (factor.confirmedAt !== null) throw gatehouseError('CONFLICT', 'TOTP is already on')
    const step = matchTotp(openSecret(factor.secret, userId), code, clock())
    if (step === null) {
      record({ type: AUDIT_EVENTS.MFA_TOTP_ENABLED, outcome: 'failure', reason: 'bad_code', actorId: userId, subjectId: userId, request })
      throw invalidCode()
    }
    const { count } = await prisma.totpFactor.updateMany({
      where: { userId, confirmedAt: null, secret: factor.secret },
      data: { confirmedAt: new Date(clock()), lastUsedStep: step }
    })
    if (count !== 1) throw gatehouseError('CONFLICT', 'The enrolment changed meanwhile; start again')
    const codes = await replaceRecoveryCodes(userId)
    record({ type: AUDIT_EVENTS.MFA_TOTP_ENABLED, outcome: 'success', actorId: userId, subjectId: userId, request })
    return codes
  }

  /**
   * Checks a current TOTP code or an unused recovery code of the user outside a login (turning
   * MFA off, new recovery codes), counted by the same per-account throttle as login answers.
   */
  async function checkCurrentFactor (userId: string, proof: { code?: string, recoveryCode?: string }, auditType: AuditEventType, request?: FastifyRequest): Promise<void> {
    const attempt = await throttled(userId)
    try {
      const ok = proof.code !== undefined
        ? await useTotp(userId, proof.code)
        : proof.recoveryCode !== undefined && await useRecoveryCode(userId, proof.recoveryCode, request)
      if (!ok) {
        await attempt?.fail()
        record({ type: auditType, outcome: 'failure', reason: 'bad_code', actorId: userId, subjectId: userId, request })
        throw invalidCode()
      }
      await attempt?.succeed()
    } finally {
      await attempt?.release?.()
    }
  }

  /**
   * A sensitive self-service action of `userId` (docs/mfa.md). An account without a second factor
   * needs nothing more (its current password, where the route asks for one, is the proof). With a
   * factor, it needs one of:
   *  - a current TOTP code or an unused recovery code in `proof` (checked by the returned check);
   *  - with no code, the caller's access token from a multi-factor login whose `auth_time` is at
   *    most `stepUpMaxAge` seconds old (a refresh keeps the login's time).
   * Without either it throws INSUFFICIENT_AUTHENTICATION (RFC 9470, with `max_age`) at once, before
   * anything is counted or changed. The returned check runs where the action changes something
   * (after a current-password check, for instance): a wrong code is INVALID_MFA_CODE, counted by the
   * per-account throttle like a wrong login answer; a right one is used up.
   */
  async function stepUp (userId: string, caller: AuthUser | null | undefined, proof: StepUpProof, action: SensitiveAction, request?: FastifyRequest): Promise<StepUpCheck> {
    if (!await hasSecondFactor(userId)) return NOTHING_MORE
    const auditType = ACTION_EVENTS[action]
    if (proof.code !== undefined || proof.recoveryCode !== undefined) {
      const given = proof.code !== undefined ? { code: proof.code } : { recoveryCode: proof.recoveryCode }
      return async () => { await checkCurrentFactor(userId, given, auditType, request) }
    }
    if (isRecentMultiFactor(caller, clock(), options.stepUpMaxAge)) return NOTHING_MORE
    record({ type: auditType, outcome: 'failure', reason: 'step_up_required', actorId: userId, subjectId: userId, details: { action }, request })
    throw insufficientAuthentication(`This needs a login with your second factor in the last ${options.stepUpMaxAge} seconds, or a current code (code or recovery_code)`, { maxAge: options.stepUpMaxAge })
  }

  /** stepUp and its check at once, for an action with nothing to verify in between. */
  async function requireStepUp (userId: string, caller: AuthUser | null | undefined, proof: StepUpProof, action: SensitiveAction, request?: FastifyRequest): Promise<void> {
    await (await stepUp(userId, caller, proof, action, request))()
  }

  /** DELETE /auth/mfa/totp: a step-up (a current code, a recovery code or a recent multi-factor login). */
  async function disableTotp (userId: string, input: StepUpProof & { caller: AuthUser | null | undefined }, request?: FastifyRequest): Promise<void> {
    const factor = await prisma.totpFactor.findUnique({ where: { userId }, select: { confirmedAt: true } })
    if (factor === null || factor.confirmedAt === null) throw gatehouseError('NOT_FOUND', 'TOTP is not on')
    await requireStepUp(userId, input.caller, input, 'totp_disable', request)
    await prisma.totpFactor.deleteMany({ where: { userId } })
    // Recovery codes stand in for a factor; with none left they would be a way in of their own.
    if ((await passkeys?.count(userId) ?? 0) === 0) await prisma.recoveryCode.deleteMany({ where: { userId } })
    record({ type: AUDIT_EVENTS.MFA_TOTP_DISABLED, outcome: 'success', actorId: userId, subjectId: userId, request })
  }

  /**
   * A new set of recovery codes (the old set stops working), after a step-up: a current code, an
   * unused recovery code, or a recent multi-factor login.
   */
  async function regenerateRecoveryCodes (userId: string, input: StepUpProof & { caller: AuthUser | null | undefined }, request?: FastifyRequest): Promise<string[]> {
    if (!await hasSecondFactor(userId)) throw gatehouseError('CONFLICT', 'No second factor is on')
    await requireStepUp(userId, input.caller, input, 'recovery_codes', request)
    const codes = await replaceRecoveryCodes(userId)
    record({ type: AUDIT_EVENTS.MFA_RECOVERY_CODES_REGENERATED, outcome: 'success', actorId: userId, subjectId: userId, request })
    return codes
  }

  async function hasSecondFactor (userId: string): Promise<boolean> {
    const state = await status(userId)
    return state.totp || state.passkeys > 0
  }

  async function status (userId: string): Promise<MfaStatus> {
    const [totp, passkeyCount, recoveryCodes] = await Promise.all([
      prisma.totpFactor.findUnique({ where: { userId }, select: { confirmedAt: true } }),
      passkeys?.count(userId) ?? Promise.resolve(0),
      prisma.recoveryCode.count({ where: { userId, usedAt: null } })
    ])
    return { totp: totp !== null && totp.confirmedAt !== null, passkeys: passkeyCount, recoveryCodes }
  }

  // ---- the second step of a login ---------------------------------------------------------------

  /**
   * After a correct password: null when the account has no second factor, else a new single-use
   * mfa_token bound to the user, the client and the password hash that was verified.
   */
  async function challenge (user: Pick<User, 'id' | 'passwordHash' | 'tokenVersion'>, clientId: string): Promise<MfaChallenge | null> {
    const state = await status(user.id)
    if (!state.totp && state.passkeys === 0) return null
    const methods: MfaMethod[] = []
    if (state.totp) methods.push('totp')
    if (state.recoveryCodes > 0) methods.push('recovery_code')
    if (state.passkeys > 0) methods.push('webauthn')
    const now = clock()
    sweep(now)
    const mfaToken = newMfaToken()
    await prisma.mfaLogin.create({
      data: {
        tokenHash: hashMfaToken(mfaToken)!,
        userId: user.id,
        clientId,
        passwordFingerprint: passwordFingerprint(user.passwordHash),
        tokenVersion: user.tokenVersion,
        expiresAt: new Date(now + options.mfaTokenTtl * 1000),
        createdAt: new Date(now)
      }
    })
    return { mfaToken, methods, expiresIn: options.mfaTokenTtl }
  }

  /** The live login step of `mfaToken` (not spent, not expired, attempts left), or INVALID_MFA_CODE. */
  async function liveStep (mfaToken: unknown): Promise<MfaLoginStep & { attempts: number }> {
    const tokenHash = hashMfaToken(mfaToken)
    if (tokenHash === null) throw invalidCode('The mfa_token is invalid, expired or used up: log in again')
    const row = await prisma.mfaLogin.findUnique({ where: { tokenHash } })
    if (row === null || row.usedAt !== null || row.expiresAt.getTime() <= clock() || row.attempts >= options.maxAttempts) {
      throw invalidCode('The mfa_token is invalid, expired or used up: log in again')
    }
    return { id: row.id, userId: row.userId, clientId: row.clientId, attempts: row.attempts }
  }

  /** Takes one of the step's attempts; false when none is left (or it was spent meanwhile). */
  async function reserveAttempt (stepId: string): Promise<boolean> {
    const { count } = await prisma.mfaLogin.updateMany({
      where: { id: stepId, usedAt: null, expiresAt: { gt: new Date(clock()) }, attempts: { lt: options.maxAttempts } },
      data: { attempts: { increment: 1 } }
    })
    return count === 1
  }

  /** The account behind a step, still as it was when the password was checked. */
  async function stepUser (stepId: string, userId: string): Promise<User> {
    const [step, user] = await Promise.all([
      prisma.mfaLogin.findUnique({ where: { id: stepId }, select: { passwordFingerprint: true, tokenVersion: true } }),
      prisma.user.findUnique({ where: { id: userId } })
    ])
    if (step === null || user === null) throw invalidCode('The mfa_token is invalid, expired or used up: log in again')
    if (user.deletedAt !== null) throw gatehouseError('USER_NOT_FOUND')
    if (user.status !== 'active') throw gatehouseError('ACCOUNT_DISABLED')
    // A password change or logout-all since the password check ends this login attempt.
    if (passwordFingerprint(user.passwordHash) !== step.passwordFingerprint || user.tokenVersion !== step.tokenVersion) {
      throw invalidCode('The account changed since the password was checked: log in again')
    }
    return user
  }

  /**
   * POST /auth/mfa/verify: one answer to an mfa_token. A wrong answer uses up one of its attempts
   * and counts as a failure of the account's throttle; a right one spends the token.
   */
  async function verify (mfaToken: unknown, proof: MfaProof, request?: FastifyRequest): Promise<CompletedLogin> {
    const step = await liveStep(mfaToken)
    const user = await stepUser(step.id, step.userId)
    const attempt = await throttled(step.userId)
    try {
      if (!await reserveAttempt(step.id)) throw invalidCode('The mfa_token is invalid, expired or used up: log in again')
      let amr: string[] | null = null
      let method: MfaMethod
      if (proof.code !== undefined) {
        method = 'totp'
        if (await useTotp(step.userId, proof.code)) amr = [...AMR_PASSWORD_OTP]
      } else if (proof.recoveryCode !== undefined) {
        method = 'recovery_code'
        if (await useRecoveryCode(step.userId, proof.recoveryCode, request)) amr = [...AMR_PASSWORD_OTP]
      } else {
        method = 'webauthn'
        if (passkeys === null) throw gatehouseError('NOT_FOUND', 'Passkeys are not enabled on this server')
        const answer = await passkeys.verifySecondFactor(step, proof.credential)
        if (answer.ok) amr = ['pwd', 'hwk', 'user', 'mfa']
      }
      if (amr === null) {
        await attempt?.fail()
        record({ type: AUDIT_EVENTS.LOGIN_MFA, outcome: 'failure', reason: 'bad_code', actorId: step.userId, subjectId: step.userId, details: { method, attempt: step.attempts + 1 }, request })
        throw invalidCode()
      }
      const spent = await prisma.mfaLogin.updateMany({ where: { id: step.id, usedAt: null }, data: { usedAt: new Date(clock()) } })
      if (spent.count !== 1) throw invalidCode('The mfa_token is invalid, expired or used up: log in again')
      await attempt?.succeed()
      record({ type: AUDIT_EVENTS.LOGIN_MFA, outcome: 'success', actorId: step.userId, subjectId: step.userId, details: { method }, request })
      return { user, amr, clientId: step.clientId }
    } finally {
      // No verdict (a fault, a dead token): the reservation is freed without counting.
      await attempt?.release?.()
    }
  }

  /** How many TOTP secrets each key seals (key rotation: a key can go once it seals none). */
  async function secretsByKey (): Promise<Record<string, number>> {
    const rows = await prisma.totpFactor.findMany({ select: { secret: true } })
    const counts: Record<string, number> = {}
    for (const row of rows) {
      const kid = box.kidOf(row.secret) ?? 'malformed'
      counts[kid] = (counts[kid] ?? 0) + 1
    }
    return counts
  }

  /** Seals every TOTP secret under the current key (after a rotation); returns how many changed. */
  async function resealAll (): Promise<number> {
    let changed = 0
    const rows = await prisma.totpFactor.findMany({ select: { userId: true, secret: true } })
    for (const row of rows) {
      if (box.kidOf(row.secret) === box.currentKid) continue
      const secret = openSecret(row.secret, row.userId)
      // Conditional on the value read: a concurrent change (a use that re-sealed it) wins.
      const { count } = await prisma.totpFactor.updateMany({ where: { userId: row.userId, secret: row.secret }, data: { secret: box.seal(secret, associatedData(row.userId)) } })
      changed += count
    }
    return changed
  }

  /** Admin and CLI: every factor of the user is removed (TOTP, recovery codes, passkeys). */
  async function reset (userId: string, ctx: { actorId?: string | null, via?: string, request?: FastifyRequest } = {}): Promise<{ totp: boolean, passkeys: number, recoveryCodes: number }> {
    const [totp, codes] = await prisma.$transaction([
      prisma.totpFactor.deleteMany({ where: { userId } }),
      prisma.recoveryCode.deleteMany({ where: { userId } }),
      prisma.mfaLogin.deleteMany({ where: { userId } })
    ])
    const removedPasskeys = await passkeys?.removeAll(userId) ?? 0
    const result = { totp: totp.count > 0, passkeys: removedPasskeys, recoveryCodes: codes.count }
    record({ type: AUDIT_EVENTS.MFA_RESET, outcome: 'success', actorId: ctx.actorId ?? null, subjectId: userId, details: { authenticatorApp: result.totp, webauthn: result.passkeys, recoveryCodes: result.recoveryCodes, ...(ctx.via === undefined ? {} : { via: ctx.via }) }, request: ctx.request })
    return result
  }

  return {
    setupTotp,
    confirmTotp,
    disableTotp,
    regenerateRecoveryCodes,
    stepUp,
    requireStepUp,
    /** Seconds a multi-factor login stays recent enough for a sensitive action. */
    stepUpMaxAge: options.stepUpMaxAge,
    status,
    hasSecondFactor,
    challenge,
    verify,
    reset,
    secretsByKey,
    resealAll,
    /** The key that seals new secrets. */
    currentKeyId: () => box.currentKid,
    /** Used by passkeys.ts for a passkey answer to a login step. */
    liveStep,
    stepUser,
    /** Registers the passkey factor (passkeys.ts), which then counts as a second factor. */
    usePasskeys (factor: PasskeyFactor) { passkeys = factor }
  }
}

export type MfaService = ReturnType<typeof createMfaService>
