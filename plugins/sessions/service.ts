// Refresh-token sessions as plain functions over Prisma and the token issuer, so they can be
// tested and reused without Fastify. RFC 9700 §4.14.2: every refresh rotates the token; a
// rotated token presented again revokes the whole family (the session) and its access tokens.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { gatehouseError, isGatehouseError, serviceUnavailable, type GatehouseError } from '../../lib/errors.ts'
import { isInfrastructureError, translatePrismaError } from '../../lib/database-errors.ts'
import type { PrismaClient, Provider } from '../store/index.ts'
import type { PostgresConnection, SqliteConnection } from '../../lib/sql-connection.ts'
import type { ResolvedSessionsOptions } from './options.ts'
import { REVOCATION_MARGIN_SECONDS } from './options.ts'
import {
  derivedRefreshToken, hashRefreshToken, newFamilyId, newRefreshToken, parseRefreshToken, sameHash
} from './refresh-token.ts'
import { parseRoles } from '../../lib/roles.ts'
import { AUDIT_EVENTS } from '../audit/index.ts'
import { createFamilyStore } from './family-store.ts'
import { createRotationStore, type RotationRow } from './rotation-store.ts'

export interface TokenResponse {
  access_token: string
  refresh_token: string
  token_type: 'Bearer'
  expires_in: number
}

/** JSON schema of a token response (CONTRACT §3, RFC 6749 §5.1). */
export const tokenResponseSchema = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    refresh_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer' }
  },
  required: ['access_token', 'refresh_token', 'token_type', 'expires_in']
} as const

/** What sessions need from gatehouse-tokens (the subset of `fastify.tokens` it calls). */
export interface TokenIssuer {
  sign: (user: { id: string, roles: string[], tokenVersion: number }, opts: { sid?: string, clientId?: string, scope?: string, amr?: readonly string[], authTime?: number }) => Promise<{ access_token: string, expires_in: number }>
  revokeSids: (sids: string[], untilEpochSec: number) => Promise<void>
  userChanged: (userId: string) => Promise<void>
}

export interface AuditSink {
  record: (event: { type: string, outcome: 'success' | 'failure', reason?: string, actorId?: string | null, subjectId?: string | null, details?: Record<string, unknown>, request?: FastifyRequest }) => void
}

export interface SessionUser { id: string, roles: string[], tokenVersion: number }
export interface SessionContext {
  clientId?: string
  request?: FastifyRequest
  /** RFC 8176 methods of the login (kept by the session, carried by every access token of it). @default ['pwd'] */
  amr?: readonly string[]
}
export interface RevocationContext {
  request?: FastifyRequest
  actorId?: string
  /** Revoke only a session of this OAuth client (RFC 7009 §2.1); another client's session is left alone. */
  clientId?: string
}

export interface SessionDependencies {
  prisma: PrismaClient
  /** The database `prisma` talks to (the store's `provider`): the rotation's SQL is per dialect. */
  provider: Provider
  /** The store's SQLite connection (`fastify.store.sqlite`), when it created the client: the rotation's statements skip Prisma's client runtime. */
  sqlite?: SqliteConnection
  /** The store's PostgreSQL pool (`fastify.store.postgres`), when it created the client: the same, on PostgreSQL. */
  postgres?: PostgresConnection
  tokens: TokenIssuer
  audit?: AuditSink
  log?: FastifyBaseLogger
  options: ResolvedSessionsOptions
}


/** Database faults become 503; coded errors pass; anything else stays what it is. */
function infrastructure (err: unknown): unknown {
  const translated = translatePrismaError(err)
  if (isGatehouseError(translated)) return translated
  const code = (err as { code?: unknown } | null)?.code
  // P2028: the transaction could not start or timed out (pool exhausted, database stalled).
  if (code === 'P2028' || isInfrastructureError(err)) return serviceUnavailable(err)
  return translated
}

/** Where a session was last used from, for the sessions list (bounded, never required). */
function activity (request: FastifyRequest | undefined): { ip: string | null, userAgent: string | null } {
  const agent = request?.headers['user-agent']
  return { ip: request?.ip ?? null, userAgent: typeof agent === 'string' ? agent.slice(0, 512) : null }
}

function invalid (): GatehouseError {
  return gatehouseError('INVALID_REFRESH_TOKEN')
}

function epochSeconds (date: Date): number {
  return Math.floor(date.getTime() / 1000)
}

/** The amr a session stored at login; a session without one was started by a password. */
function sessionAmr (authentication: { amr: string } | null | undefined): string[] {
  if (authentication === null || authentication === undefined) return ['pwd']
  try {
    const amr: unknown = JSON.parse(authentication.amr)
    if (Array.isArray(amr) && amr.length > 0 && amr.every((m) => typeof m === 'string')) return amr as string[]
  } catch {}
  return ['pwd']
}

export function createSessionService (deps: SessionDependencies) {
  const { prisma, tokens, audit, options } = deps
  const clock = options.clock
  const rotation = createRotationStore(prisma, deps.provider, deps.sqlite, deps.postgres)
  const createFamily = createFamilyStore(prisma, deps.provider, deps.sqlite, deps.postgres)

  function revocationHorizon (): number {
    return Math.floor(clock() / 1000) + options.accessTokenTtl + REVOCATION_MARGIN_SECONDS
  }

  /** Revokes families and their tokens in one transaction, then denies their access tokens. */
  async function revokeFamilies (ids: string[], reason: string): Promise<number> {
    if (ids.length === 0) return 0
    const now = new Date(clock())
    let revoked: number
    try {
      const [families] = await prisma.$transaction([
        prisma.refreshFamily.updateMany({ where: { id: { in: ids }, revokedAt: null }, data: { revokedAt: now, revokedReason: reason } }),
        prisma.refreshToken.updateMany({ where: { familyId: { in: ids }, revokedAt: null }, data: { revokedAt: now } })
      ])
      revoked = families.count
    } catch (err) {
      throw infrastructure(err)
    }
    await tokens.revokeSids(ids, revocationHorizon())
    return revoked
  }

  async function activeFamilyIds (userId: string, except?: string): Promise<string[]> {
    const rows = await prisma.refreshFamily.findMany({
      where: { userId, revokedAt: null, ...(except === undefined ? {} : { id: { not: except } }) },
      select: { id: true }
    })
    return rows.map((r) => r.id)
  }

  // A user's access token names its session (sid); `clientId` in tokens.sign is for client tokens only.
  // Like amr, auth_time is the login's, not the refresh's: "recent" means the last real authentication.
  async function sign (user: { id: string, roles: string, tokenVersion: number }, family: { id: string, createdAt: Date, authentication: { amr: string, authTime: Date } | null }) {
    return tokens.sign({ id: user.id, roles: parseRoles(user.roles), tokenVersion: user.tokenVersion }, {
      sid: family.id,
      amr: sessionAmr(family.authentication),
      authTime: epochSeconds(family.authentication?.authTime ?? family.createdAt)
    })
  }

  /** A new session: a family, its first refresh token and an access token whose `sid` is the family. */
  async function start (user: SessionUser, ctx: SessionContext = {}): Promise<TokenResponse> {
    const clientId = ctx.clientId ?? options.defaultClientId
    const now = clock()
    const familyId = newFamilyId()
    const refreshToken = newRefreshToken(familyId)
    const absoluteExpiresAt = new Date(now + options.refreshTokenMaxTtl * 1000)
    const idleExpiresAt = new Date(Math.min(now + options.refreshTokenTtl * 1000, absoluteExpiresAt.getTime()))
    const amr = ctx.amr ?? ['pwd']
    const access = await tokens.sign({ id: user.id, roles: user.roles, tokenVersion: user.tokenVersion }, { sid: familyId, amr, authTime: epochSeconds(new Date(now)) })
    try {
      await createFamily({
        id: familyId,
        userId: user.id,
        clientId,
        now: new Date(now),
        absoluteExpiresAt,
        activity: activity(ctx.request),
        token: { tokenHash: hashRefreshToken(refreshToken), idleExpiresAt },
        // A password-only session needs no row: its absence means ['pwd'], at the family's creation.
        authentication: amr.length === 1 && amr[0] === 'pwd' ? null : { amr: JSON.stringify(amr), authTime: new Date(now) }
      })
    } catch (err) {
      throw infrastructure(err)
    }
    return { access_token: access.access_token, refresh_token: refreshToken, token_type: 'Bearer', expires_in: access.expires_in }
  }

  type Rotated = { response: TokenResponse, userId: string, familyId: string }

  /**
   * One attempt: the presented token's row (with family, user and session authentication) is
   * read, the access token is signed from it, and the conditional write rotates the token only if
   * nothing it was signed from changed meanwhile. Null when this caller did not win.
   */
  async function rotate (row: RotationRow, tokenHash: string, previous: string, clientId: string, now: Date, request?: FastifyRequest): Promise<Rotated | null> {
    const { family, user } = row
    const successorId = randomUUID()
    const successor = options.reuseGraceSeconds > 0
      ? derivedRefreshToken(family.id, previous, successorId)
      : newRefreshToken(family.id)
    const absoluteExpiresAt = family.absoluteExpiresAt
    // Signed before the write: a token whose rotation did not commit is never returned.
    const access = await sign(user, { id: family.id, createdAt: family.createdAt, authentication: row.authentication })
    let won: boolean
    try {
      won = await rotation.rotate({
        tokenHash,
        clientId,
        now,
        roles: user.roles,
        tokenVersion: user.tokenVersion,
        successor: {
          id: successorId,
          tokenHash: hashRefreshToken(successor),
          idleExpiresAt: new Date(Math.min(now.getTime() + options.refreshTokenTtl * 1000, absoluteExpiresAt.getTime())),
          absoluteExpiresAt
        },
        activity: activity(request)
      })
    } catch (err) {
      throw infrastructure(err)
    }
    if (!won) return null
    return {
      response: { access_token: access.access_token, refresh_token: successor, token_type: 'Bearer' as const, expires_in: access.expires_in },
      userId: user.id,
      familyId: family.id
    }
  }

  /**
   * The sessions list's "last used" and address. On PostgreSQL it is written after the rotation
   * has committed: inside it, the family row would be locked after the token row, the reverse of
   * a revocation's order. On SQLite the rotation's transaction writes it (one commit).
   * Informational: a failure is logged, never the refresh's.
   */
  async function noteActivity (familyId: string, now: Date, request?: FastifyRequest): Promise<void> {
    if (rotation.recordsActivity) return
    try {
      await rotation.noteActivity(familyId, now, activity(request))
    } catch (err) {
      deps.log?.warn({ err: { message: (err as Error).message }, familyId }, 'sessions: could not record the last use of a session')
    }
  }

  /** Whether a row can be rotated by `clientId` at `now` (the conditional write checks it again). */
  function rotatable (row: RotationRow, clientId: string, now: Date): boolean {
    return row.clientId === clientId && row.usedAt === null && row.revokedAt === null &&
      row.idleExpiresAt.getTime() > now.getTime() && row.absoluteExpiresAt.getTime() > now.getTime() &&
      row.family.revokedAt === null && row.user.deletedAt === null && row.user.status === 'active'
  }

  /** Why a presented token cannot be rotated: the coded error to throw (after side effects). */
  async function refuse (row: RotationRow | null, token: string, clientId: string, now: Date, ctx: SessionContext): Promise<GatehouseError | Rotated | 'retry'> {
    if (row === null) return invalid()
    // RFC 6819 §5.2.2.2: a refresh token is bound to the client it was issued to.
    if (row.clientId !== clientId) {
      deps.log?.info({ familyId: row.familyId }, 'refresh token presented by another client')
      return invalid()
    }
    if (row.user.deletedAt !== null) return gatehouseError('USER_NOT_FOUND')
    if (row.user.status !== 'active') return gatehouseError('ACCOUNT_DISABLED')
    // A used token presented again is reuse whatever happened to its family since (RFC 9700 §4.14.2).
    // An unused token of a family revoked for reuse is a revoked refresh token (CONTRACT §4):
    // its holder may be the thief as well as the victim, and learns no more than that.
    if (row.usedAt === null && (row.family.revokedAt !== null || row.revokedAt !== null)) {
      return row.family.revokedReason === 'reuse' ? invalid() : gatehouseError('TOKEN_REVOKED')
    }
    if (row.usedAt !== null) {
      const graceMs = options.reuseGraceSeconds * 1000
      if (graceMs > 0 && now.getTime() - row.usedAt.getTime() <= graceMs && row.successorId !== null) {
        const again = await sameSuccessor(token, row.familyId, row.successorId, now)
        if (again !== null) {
          audit?.record({ type: AUDIT_EVENTS.REFRESH, outcome: 'success', actorId: row.userId, subjectId: row.userId, details: { sid: row.familyId, clientId, grace: true }, request: ctx.request })
          return again
        }
      }
      if (row.family.revokedAt === null) await revokeFamilies([row.familyId], 'reuse')
      audit?.record({ type: AUDIT_EVENTS.REFRESH_REUSE, outcome: 'failure', reason: 'refresh_token_reused', actorId: row.userId, subjectId: row.userId, details: { sid: row.familyId, clientId }, request: ctx.request })
      deps.log?.warn({ familyId: row.familyId, userId: row.userId }, 'refresh token reuse: session revoked')
      return gatehouseError('REFRESH_TOKEN_REUSED')
    }
    if (row.idleExpiresAt.getTime() <= now.getTime() || row.absoluteExpiresAt.getTime() <= now.getTime()) return invalid()
    // Unused, live and still not ours: its user changed while it was signed. Try once more.
    return 'retry'
  }

  /** Inside the grace window: the successor the first rotation issued, derived again (never stored). */
  async function sameSuccessor (previous: string, familyId: string, successorId: string, now: Date): Promise<Rotated | null> {
    const successor = await prisma.refreshToken.findUnique({ where: { id: successorId }, include: { family: { include: { authentication: true } }, user: true } })
    if (successor === null || successor.usedAt !== null || successor.revokedAt !== null || successor.family.revokedAt !== null) return null
    if (successor.idleExpiresAt.getTime() <= now.getTime()) return null
    const candidate = derivedRefreshToken(familyId, previous, successorId)
    if (!sameHash(hashRefreshToken(candidate), successor.tokenHash)) return null
    const access = await sign(successor.user, successor.family)
    return {
      response: { access_token: access.access_token, refresh_token: candidate, token_type: 'Bearer', expires_in: access.expires_in },
      userId: successor.userId,
      familyId
    }
  }

  /** Rotates `refreshToken`: a new access token and a new refresh token; the old one is used up. */
  async function refresh (refreshToken: string, ctx: SessionContext = {}): Promise<TokenResponse & { userId: string }> {
    if (parseRefreshToken(refreshToken) === null) throw invalid()
    const clientId = ctx.clientId ?? options.defaultClientId
    const tokenHash = hashRefreshToken(refreshToken)
    for (let attempt = 0; attempt < 2; attempt++) {
      const now = new Date(clock())
      let row: RotationRow | null
      try {
        row = await rotation.read(tokenHash)
      } catch (err) {
        throw infrastructure(err)
      }
      const live = row !== null && rotatable(row, clientId, now)
      const rotated = live ? await rotate(row!, tokenHash, refreshToken, clientId, now, ctx.request) : null
      // Not rotated: the row says why. When it looked live, something changed since it was read
      // (a concurrent rotation won, a revocation, the user's state): read it again.
      const outcome = rotated ?? await refuse(live ? await reread(tokenHash) : row, refreshToken, clientId, now, ctx)
      if (outcome === 'retry') continue
      if (isGatehouseError(outcome)) throw outcome
      if (rotated !== null) {
        audit?.record({ type: AUDIT_EVENTS.REFRESH, outcome: 'success', actorId: outcome.userId, subjectId: outcome.userId, details: { sid: outcome.familyId, clientId }, request: ctx.request })
        await noteActivity(outcome.familyId, now, ctx.request)
      }
      return { ...outcome.response, userId: outcome.userId }
    }
    throw invalid()
  }

  async function reread (tokenHash: string): Promise<RotationRow | null> {
    try {
      return await rotation.read(tokenHash)
    } catch (err) {
      throw infrastructure(err)
    }
  }

  /** Revokes one session (refresh family) and its access tokens. */
  async function logout (sid: string, reason = 'logout', ctx: RevocationContext = {}): Promise<void> {
    const family = await prisma.refreshFamily.findUnique({ where: { id: sid }, select: { userId: true, clientId: true } }).catch((err: unknown) => { throw infrastructure(err) })
    if (family === null) return
    if (ctx.clientId !== undefined && family.clientId !== ctx.clientId) return
    await revokeFamilies([sid], reason)
    audit?.record({ type: AUDIT_EVENTS.LOGOUT, outcome: 'success', reason, actorId: ctx.actorId ?? family.userId, subjectId: family.userId, details: { sid }, request: ctx.request })
  }

  /**
   * POST /auth/logout: the caller's own session (`sid` of the access token used) and, when a
   * refresh token of the same user is given, that token's session.
   */
  async function logoutSession (userId: string, input: { sid?: string, refreshToken?: string, request?: FastifyRequest }): Promise<number> {
    const ids = new Set<string>()
    try {
      if (input.sid !== undefined) {
        const own = await prisma.refreshFamily.findFirst({ where: { id: input.sid, userId }, select: { id: true } })
        if (own !== null) ids.add(own.id)
      }
      if (input.refreshToken !== undefined && parseRefreshToken(input.refreshToken) !== null) {
        const row = await prisma.refreshToken.findUnique({ where: { tokenHash: hashRefreshToken(input.refreshToken) }, select: { familyId: true, userId: true } })
        if (row !== null && row.userId === userId) ids.add(row.familyId)
      }
    } catch (err) {
      throw infrastructure(err)
    }
    const revoked = await revokeFamilies([...ids], 'logout')
    audit?.record({ type: AUDIT_EVENTS.LOGOUT, outcome: 'success', actorId: userId, subjectId: userId, details: { sids: [...ids] }, request: input.request })
    return revoked
  }

  /** Every session of the user, and every access token issued before now (token version bump). */
  async function logoutAll (userId: string, ctx: RevocationContext = {}): Promise<number> {
    const now = new Date(clock())
    let ids: string[]
    try {
      ids = await activeFamilyIds(userId)
      await prisma.$transaction([
        prisma.refreshFamily.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now, revokedReason: 'logout_all' } }),
        prisma.refreshToken.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now } }),
        prisma.user.update({ where: { id: userId }, data: { tokenVersion: { increment: 1 } } })
      ])
    } catch (err) {
      throw infrastructure(err)
    }
    if (ids.length > 0) await tokens.revokeSids(ids, revocationHorizon())
    await tokens.userChanged(userId)
    audit?.record({ type: AUDIT_EVENTS.LOGOUT_ALL, outcome: 'success', actorId: ctx.actorId ?? userId, subjectId: userId, details: { sessions: ids.length }, request: ctx.request })
    return ids.length
  }

  /** Every session but `keepSid` (a password change keeps the session that made it). */
  async function revokeOthers (userId: string, keepSid: string | undefined, reason = 'password_change'): Promise<number> {
    const ids = await activeFamilyIds(userId, keepSid).catch((err: unknown) => { throw infrastructure(err) })
    return revokeFamilies(ids, reason)
  }

  /** Every session of the user (account disabled or deleted). */
  async function revokeAllFamilies (userId: string, reason = 'admin'): Promise<number> {
    const ids = await activeFamilyIds(userId).catch((err: unknown) => { throw infrastructure(err) })
    return revokeFamilies(ids, reason)
  }

  /** The live refresh token row for `token`, or null (introspection, revocation). */
  async function lookup (token: string): Promise<{ userId: string, familyId: string, clientId: string, active: boolean, expiresAt: Date, createdAt: Date } | null> {
    if (parseRefreshToken(token) === null) return null
    const row = await prisma.refreshToken.findUnique({ where: { tokenHash: hashRefreshToken(token) }, include: { family: true, user: true } })
      .catch((err: unknown) => { throw infrastructure(err) })
    if (row === null) return null
    const now = clock()
    const active = row.usedAt === null && row.revokedAt === null && row.family.revokedAt === null &&
      row.idleExpiresAt.getTime() > now && row.absoluteExpiresAt.getTime() > now &&
      row.user.deletedAt === null && row.user.status === 'active'
    return { userId: row.userId, familyId: row.familyId, clientId: row.clientId, active, expiresAt: row.idleExpiresAt, createdAt: row.createdAt }
  }

  return { start, refresh, logout, logoutSession, logoutAll, revokeOthers, revokeAllFamilies, lookup, revokeFamilies }
}

export type SessionService = ReturnType<typeof createSessionService>
