// Who is behind a verified access token, now: its session must not be revoked, and the user (or
// OAuth client) must still exist and be active, with the token not older than the user's token
// version. Revoked sessions and cached states live in memory; the bus keeps every instance's
// copy current, and while it is unhealthy the database is asked instead.
import type { AuthUser } from '../../lib/auth-user.ts'
import { bearerError, serviceUnavailable } from '../../lib/errors.ts'
import type { Bus } from '../redis/index.ts'
import type { Store } from '../store/index.ts'
import type { VerifiedToken } from './access-token-verifier.ts'
import { clientLoader, loadRevokedSessions, RevokedSessions, StateCache, userLoader, type ClientState, type UserState } from './state.ts'

export interface PrincipalSettings {
  issuer: string
  /** Seconds after a revocation during which its access tokens can still be presented (TTL plus skew). */
  revocationSpanSec: number
  /** Seconds a cached state is trusted without a notice. */
  userStateTtl: number
  userStateCacheSize: number
}

export interface PrincipalDeps {
  store: Store
  bus: Bus
  log: { error: (obj: object, msg: string) => void }
}

/** The account errors, which say more than TOKEN_REVOKED when both apply. */
function checkAccount (state: UserState | null): asserts state is UserState {
  if (state === null || state.deleted) throw bearerError('USER_NOT_FOUND')
  if (state.status !== 'active') throw bearerError('ACCOUNT_DISABLED')
}

/** Loads the sessions revoked recently, then follows the bus. */
export async function createPrincipals (settings: PrincipalSettings, { store, bus, log }: PrincipalDeps) {
  const { issuer, revocationSpanSec } = settings
  const revoked = new RevokedSessions()
  const users = new StateCache<UserState>(userLoader(store), { ttlMs: settings.userStateTtl * 1000, size: settings.userStateCacheSize })
  const clients = new StateCache<ClientState>(clientLoader(store), { ttlMs: settings.userStateTtl * 1000, size: settings.userStateCacheSize })

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
  bus.subscribe('user', (message) => {
    if (typeof message.userId === 'string') users.invalidate(message.userId)
  })
  bus.subscribe('client', (message) => {
    if (typeof message.clientId === 'string') clients.invalidate(message.clientId)
  })
  bus.onResync(() => {
    users.clear()
    clients.clear()
    loadRevoked().catch((err) => log.error({ err: { message: (err as Error).message } }, 'tokens: reloading revoked sessions after a bus resync failed'))
  })
  const pruneTimer = setInterval(() => revoked.prune(Math.floor(Date.now() / 1000)), 60_000)
  pruneTimer.unref()

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

  async function fromDatabase (entry: VerifiedToken): Promise<AuthUser> {
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

  async function publish (channel: string, message: Record<string, unknown>): Promise<void> {
    try {
      await bus.publish(channel, message)
    } catch (err) {
      throw serviceUnavailable(err)
    }
  }

  return {
    /**
     * The principal of a verified token: synchronously when everything is in memory, else a
     * Promise (the database is asked). Throws coded bearer errors.
     */
    principal (entry: VerifiedToken, now: number): AuthUser | Promise<AuthUser> {
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
      return fromDatabase(entry)
    },
    userState: (userId: string): Promise<UserState | null> => users.get(userId, !bus.healthy),
    async userChanged (userId: string): Promise<void> {
      users.invalidate(userId)
      await publish('user', { userId })
    },
    async clientChanged (clientId: string): Promise<void> {
      clients.invalidate(clientId)
      await publish('client', { clientId })
    },
    async revokeSids (sids: string[], untilEpochSec?: number): Promise<void> {
      const list = sids.filter((s) => typeof s === 'string' && s !== '')
      if (list.length === 0) return
      const until = Math.max(untilEpochSec ?? 0, Math.floor(Date.now() / 1000) + revocationSpanSec)
      revoked.add(list, until)
      await publish('sid', { sids: list, until })
    },
    revokedSessions: (): number => revoked.size,
    close (): void {
      clearInterval(pruneTimer)
    }
  }
}

export type Principals = Awaited<ReturnType<typeof createPrincipals>>
