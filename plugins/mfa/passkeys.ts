// Passkeys (WebAuthn Level 3) through @simplewebauthn/server: registration of several named
// credentials per user, passwordless login with discoverable credentials, and a passkey as the
// second step of a password login.
//
// Every ceremony has a challenge row that is single use (deleted by the one request that wins it)
// and short-lived. The signature counter is advanced with a conditional update on the value that
// was read, so an assertion from a cloned authenticator, or the same assertion twice, is refused.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON
} from '@simplewebauthn/server'
import { gatehouseError, type GatehouseError } from '../../lib/errors.ts'
import { passkeyAmr } from '../../lib/amr.ts'
import type { PrismaClient, User } from '../store/index.ts'
import { AUDIT_EVENTS, type Audit } from '../audit/index.ts'
import type { ResolvedWebAuthnOptions } from './options.ts'
import type { MfaLoginStep, PasskeyFactor } from './service.ts'

export interface PasskeyDeps {
  prisma: PrismaClient
  audit: Audit | null
  log: FastifyBaseLogger
  webauthn: ResolvedWebAuthnOptions
  /** Seconds a challenge lives. */
  challengeTtl: number
  clock: () => number
}

export interface PasskeyInfo {
  id: string
  name: string
  createdAt: Date
  lastUsedAt: Date | null
  deviceType: string
  backedUp: boolean
  transports: string[]
}

type WebAuthnLibrary = typeof import('@simplewebauthn/server')
let library: Promise<WebAuthnLibrary> | undefined
/** @simplewebauthn/server and its ASN.1 stack load on the first ceremony, not at start (CLI, tests). */
function webauthnLibrary (): Promise<WebAuthnLibrary> {
  library ??= import('@simplewebauthn/server')
  return library
}

const MAX_PASSKEYS = 20
const TIMEOUT_MS = 60_000

function refused (message = 'The passkey answer is invalid, used or expired'): GatehouseError {
  return gatehouseError('INVALID_MFA_CODE', message)
}

function parseTransports (raw: string): string[] {
  try {
    const list: unknown = JSON.parse(raw)
    return Array.isArray(list) ? list.filter((t): t is string => typeof t === 'string') : []
  } catch {
    return []
  }
}

/** The challenge a browser answered, read from `response.clientDataJSON` (verified later by the library). */
export function answeredChallenge (credential: unknown): string | null {
  const data = (credential as { response?: { clientDataJSON?: unknown } } | null)?.response?.clientDataJSON
  if (typeof data !== 'string' || data.length > 4096) return null
  try {
    const parsed: unknown = JSON.parse(Buffer.from(data, 'base64url').toString('utf8'))
    const challenge = (parsed as { challenge?: unknown } | null)?.challenge
    return typeof challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(challenge) ? challenge : null
  } catch {
    return null
  }
}

function credentialId (credential: unknown): string | null {
  const id = (credential as { id?: unknown } | null)?.id
  return typeof id === 'string' && /^[A-Za-z0-9_-]{1,1366}$/.test(id) ? id : null
}

export function createPasskeys (deps: PasskeyDeps) {
  const { prisma, webauthn, log } = deps
  const clock = deps.clock

  function record (event: Parameters<Audit['record']>[0]): void {
    deps.audit?.record(event)
  }

  async function storeChallenge (data: { purpose: 'register' | 'login' | 'mfa', challenge: string, userId?: string, mfaLoginId?: string }): Promise<string> {
    const id = randomUUID()
    const now = clock()
    await prisma.webAuthnChallenge.create({ data: { id, ...data, expiresAt: new Date(now + deps.challengeTtl * 1000), createdAt: new Date(now) } })
    return id
  }

  /** Deletes the challenge row matching `where`; the one request that deleted it may use it. */
  async function takeChallenge (where: { id?: string, challenge?: string, purpose: string, userId?: string, mfaLoginId?: string }): Promise<{ challenge: string, userId: string | null } | null> {
    const row = await prisma.webAuthnChallenge.findFirst({ where })
    if (row === null) return null
    const { count } = await prisma.webAuthnChallenge.deleteMany({ where: { id: row.id } })
    if (count !== 1 || row.expiresAt.getTime() <= clock()) return null
    return { challenge: row.challenge, userId: row.userId }
  }

  /**
   * Checks an assertion against the stored credential and advances its counter; null when it
   * does not verify. `userId`: the account it must belong to (second factor), else any.
   */
  async function checkAssertion (credential: unknown, expectedChallenge: string, userId?: string): Promise<{ row: { id: string, userId: string }, userVerified: boolean } | null> {
    const id = credentialId(credential)
    if (id === null) return null
    const row = await prisma.webAuthnCredential.findUnique({ where: { credentialId: id } })
    if (row === null || (userId !== undefined && row.userId !== userId)) return null
    // A discoverable credential names its user: it must be the one the credential was made for.
    const userHandle = (credential as { response?: { userHandle?: unknown } }).response?.userHandle
    if (typeof userHandle === 'string' && userHandle !== '' && userHandle !== Buffer.from(row.userId, 'utf8').toString('base64url')) return null
    let result
    try {
      result = await (await webauthnLibrary()).verifyAuthenticationResponse({
        response: credential as AuthenticationResponseJSON,
        expectedChallenge,
        expectedOrigin: [...webauthn.origins],
        expectedRPID: webauthn.rpId,
        credential: { id: row.credentialId, publicKey: new Uint8Array(Buffer.from(row.publicKey, 'base64url')), counter: Number(row.counter), transports: parseTransports(row.transports) },
        requireUserVerification: false
      })
    } catch (err) {
      log.info({ reason: (err as Error).message, passkeyId: row.id }, 'passkey: assertion refused')
      return null
    }
    if (!result.verified) return null
    const { newCounter, userVerified } = result.authenticationInfo
    // Compare-and-set on the counter that was checked: two answers cannot both pass.
    const { count } = await prisma.webAuthnCredential.updateMany({
      where: { id: row.id, counter: row.counter },
      data: { counter: BigInt(newCounter), lastUsedAt: new Date(clock()), backedUp: result.authenticationInfo.credentialBackedUp }
    })
    if (count !== 1) {
      log.warn({ passkeyId: row.id, userId: row.userId }, 'passkey: the signature counter moved meanwhile; assertion refused')
      return null
    }
    return { row: { id: row.id, userId: row.userId }, userVerified }
  }

  // ---- registration ---------------------------------------------------------------------------

  async function registrationOptions (user: Pick<User, 'id' | 'email' | 'name'>): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await prisma.webAuthnCredential.findMany({ where: { userId: user.id }, select: { credentialId: true, transports: true } })
    if (existing.length >= MAX_PASSKEYS) throw gatehouseError('CONFLICT', `At most ${MAX_PASSKEYS} passkeys per account`)
    const options = await (await webauthnLibrary()).generateRegistrationOptions({
      rpName: webauthn.rpName,
      rpID: webauthn.rpId,
      userName: user.email,
      userDisplayName: user.name ?? user.email,
      userID: new Uint8Array(Buffer.from(user.id, 'utf8')),
      attestationType: 'none',
      timeout: TIMEOUT_MS,
      excludeCredentials: existing.map((c) => ({ id: c.credentialId, transports: parseTransports(c.transports) })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'preferred' }
    })
    await storeChallenge({ purpose: 'register', challenge: options.challenge, userId: user.id })
    return options
  }

  async function register (userId: string, credential: unknown, name: string | undefined, request?: FastifyRequest): Promise<{ id: string }> {
    const answered = answeredChallenge(credential)
    const taken = answered === null ? null : await takeChallenge({ challenge: answered, purpose: 'register', userId })
    if (taken === null) throw refused('The registration answer is invalid or its challenge is used or expired')
    let result
    try {
      result = await (await webauthnLibrary()).verifyRegistrationResponse({
        response: credential as RegistrationResponseJSON,
        expectedChallenge: taken.challenge,
        expectedOrigin: [...webauthn.origins],
        expectedRPID: webauthn.rpId,
        requireUserVerification: false
      })
    } catch (err) {
      log.info({ reason: (err as Error).message, userId }, 'passkey: registration refused')
      throw refused('The registration answer does not verify')
    }
    if (!result.verified) throw refused('The registration answer does not verify')
    const info = result.registrationInfo
    const count = await prisma.webAuthnCredential.count({ where: { userId } })
    try {
      const row = await prisma.webAuthnCredential.create({
        data: {
          userId,
          credentialId: info.credential.id,
          publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
          counter: BigInt(info.credential.counter),
          transports: JSON.stringify(info.credential.transports ?? []),
          name: name ?? `Passkey ${count + 1}`,
          deviceType: info.credentialDeviceType,
          backedUp: info.credentialBackedUp,
          createdAt: new Date(clock())
        }
      })
      record({ type: AUDIT_EVENTS.PASSKEY_REGISTERED, outcome: 'success', actorId: userId, subjectId: userId, details: { webauthnId: row.id }, request })
      return { id: row.id }
    } catch (err) {
      if ((err as { code?: string }).code === 'CONFLICT') throw gatehouseError('CONFLICT', 'This passkey is already registered')
      throw err
    }
  }

  // ---- passwordless login ---------------------------------------------------------------------

  async function loginOptions (): Promise<{ challengeId: string, options: PublicKeyCredentialRequestOptionsJSON }> {
    const options = await (await webauthnLibrary()).generateAuthenticationOptions({ rpID: webauthn.rpId, userVerification: 'preferred', timeout: TIMEOUT_MS })
    const challengeId = await storeChallenge({ purpose: 'login', challenge: options.challenge })
    return { challengeId, options }
  }

  /**
   * Passwordless login. `beforeSignIn` runs once the assertion and the account's state are good,
   * before the login is recorded (REQUIRE_VERIFIED_EMAIL, for example); what it throws refuses it.
   */
  async function login (challengeId: string, credential: unknown, request?: FastifyRequest, beforeSignIn?: (user: User) => void | Promise<void>): Promise<{ user: User, amr: string[] }> {
    const taken = await takeChallenge({ id: challengeId, purpose: 'login' })
    if (taken === null || answeredChallenge(credential) !== taken.challenge) {
      record({ type: AUDIT_EVENTS.LOGIN_PASSKEY, outcome: 'failure', reason: 'challenge', request })
      throw refused()
    }
    const checked = await checkAssertion(credential, taken.challenge)
    if (checked === null) {
      record({ type: AUDIT_EVENTS.LOGIN_PASSKEY, outcome: 'failure', reason: 'assertion', request })
      throw refused()
    }
    const user = await prisma.user.findUnique({ where: { id: checked.row.userId } })
    if (user === null || user.deletedAt !== null) throw gatehouseError('USER_NOT_FOUND')
    if (user.status !== 'active') throw gatehouseError('ACCOUNT_DISABLED')
    await beforeSignIn?.(user)
    await prisma.user.updateMany({ where: { id: user.id }, data: { lastLoginAt: new Date(clock()) } })
    record({ type: AUDIT_EVENTS.LOGIN_PASSKEY, outcome: 'success', actorId: user.id, subjectId: user.id, details: { webauthnId: checked.row.id, userVerified: checked.userVerified }, request })
    return { user, amr: passkeyAmr(checked.userVerified) }
  }

  // ---- second factor --------------------------------------------------------------------------

  async function secondFactorOptions (step: MfaLoginStep): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const own = await prisma.webAuthnCredential.findMany({ where: { userId: step.userId }, select: { credentialId: true, transports: true } })
    if (own.length === 0) throw gatehouseError('NOT_FOUND', 'The account has no passkey')
    const options = await (await webauthnLibrary()).generateAuthenticationOptions({
      rpID: webauthn.rpId,
      userVerification: 'preferred',
      timeout: TIMEOUT_MS,
      allowCredentials: own.map((c) => ({ id: c.credentialId, transports: parseTransports(c.transports) }))
    })
    await storeChallenge({ purpose: 'mfa', challenge: options.challenge, userId: step.userId, mfaLoginId: step.id })
    return options
  }

  const factor: PasskeyFactor = {
    count: (userId) => prisma.webAuthnCredential.count({ where: { userId } }),
    async verifySecondFactor (step, credential) {
      const answered = answeredChallenge(credential)
      const taken = answered === null ? null : await takeChallenge({ challenge: answered, purpose: 'mfa', mfaLoginId: step.id })
      if (taken === null) return { ok: false, userVerified: false }
      const checked = await checkAssertion(credential, taken.challenge, step.userId)
      return checked === null ? { ok: false, userVerified: false } : { ok: true, userVerified: checked.userVerified }
    },
    async removeAll (userId) {
      const { count } = await prisma.webAuthnCredential.deleteMany({ where: { userId } })
      return count
    }
  }

  // ---- management -----------------------------------------------------------------------------

  async function list (userId: string): Promise<PasskeyInfo[]> {
    const rows = await prisma.webAuthnCredential.findMany({ where: { userId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })
    return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.createdAt, lastUsedAt: r.lastUsedAt, deviceType: r.deviceType, backedUp: r.backedUp, transports: parseTransports(r.transports) }))
  }

  async function rename (userId: string, id: string, name: string): Promise<void> {
    const { count } = await prisma.webAuthnCredential.updateMany({ where: { id, userId }, data: { name } })
    if (count !== 1) throw gatehouseError('NOT_FOUND', 'No passkey with this id')
  }

  async function remove (userId: string, id: string, request?: FastifyRequest): Promise<void> {
    const { count } = await prisma.webAuthnCredential.deleteMany({ where: { id, userId } })
    if (count !== 1) throw gatehouseError('NOT_FOUND', 'No passkey with this id')
    // With no factor left, recovery codes would be a way in of their own.
    const [left, totp] = await Promise.all([
      prisma.webAuthnCredential.count({ where: { userId } }),
      prisma.totpFactor.findUnique({ where: { userId }, select: { confirmedAt: true } })
    ])
    if (left === 0 && (totp === null || totp.confirmedAt === null)) await prisma.recoveryCode.deleteMany({ where: { userId } })
    record({ type: AUDIT_EVENTS.PASSKEY_REMOVED, outcome: 'success', actorId: userId, subjectId: userId, details: { webauthnId: id }, request })
  }

  return { registrationOptions, register, loginOptions, login, secondFactorOptions, list, rename, remove, factor }
}

export type Passkeys = ReturnType<typeof createPasskeys>
