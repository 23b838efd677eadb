// What every request re-checks about the principal behind a token: revoked sessions, and the
// user's (or OAuth client's) current state. Both live in memory and are kept current through
// notices on the bus; the user state is re-read from the database on a miss, after a notice,
// after a short safety TTL, and on every request while notices may be missed (bus unhealthy).
import type { Store } from '../store/index.ts'
import { parseRoles } from '../../lib/roles.ts'
import { ExpiringLru } from '../../lib/verified-cache.ts'

export interface UserState {
  id: string
  email: string
  /** 'active' | 'disabled' */
  status: string
  deleted: boolean
  roles: readonly string[]
  tokenVersion: number
}

export interface ClientState {
  id: string
  revoked: boolean
}

export interface StateOptions {
  /** Milliseconds a cached state is trusted without a notice. */
  ttlMs: number
  size: number
}

/**
 * A per-key cache with a database loader. Concurrent misses share one query; a load that started
 * before an invalidation is not stored (so a notice can never be overwritten by older data).
 */
export class StateCache<V> {
  readonly #cache: ExpiringLru<V | null>
  readonly #inflight = new Map<string, Promise<V | null>>()
  readonly #load: (id: string) => Promise<V | null>
  readonly #ttlMs: number
  #epoch = 0

  constructor (load: (id: string) => Promise<V | null>, options: StateOptions) {
    this.#cache = new ExpiringLru(options.size)
    this.#load = load
    this.#ttlMs = options.ttlMs
  }

  /** The cached state (null = known not to exist), or undefined on a miss. */
  peek (id: string, now: number): V | null | undefined {
    return this.#cache.get(id, now)
  }

  /** Reads through the cache; `bypass` skips it (and does not fill it). */
  get (id: string, bypass: boolean): Promise<V | null> {
    if (!bypass) {
      const hit = this.#cache.get(id, Date.now())
      if (hit !== undefined) return Promise.resolve(hit)
    }
    let pending = this.#inflight.get(id)
    if (pending !== undefined) return pending
    const epoch = this.#epoch
    pending = this.#load(id).then((value) => {
      if (this.#epoch === epoch && !bypass) this.#cache.set(id, value, Date.now() + this.#ttlMs)
      return value
    }).finally(() => {
      if (this.#inflight.get(id) === pending) this.#inflight.delete(id)
    })
    this.#inflight.set(id, pending)
    return pending
  }

  invalidate (id: string): void {
    this.#epoch++
    this.#cache.delete(id)
    this.#inflight.delete(id)
  }

  clear (): void {
    this.#epoch++
    this.#cache.clear()
    this.#inflight.clear()
  }
}

export function userLoader (store: Store): (id: string) => Promise<UserState | null> {
  return async (id) => {
    const row = await store.prisma.user.findUnique({
      where: { id },
      select: { id: true, email: true, status: true, roles: true, tokenVersion: true, deletedAt: true }
    })
    if (row === null) return null
    return Object.freeze({
      id: row.id,
      email: row.email,
      status: row.status,
      deleted: row.deletedAt !== null,
      roles: Object.freeze(parseRoles(row.roles)),
      tokenVersion: row.tokenVersion
    })
  }
}

export function clientLoader (store: Store): (id: string) => Promise<ClientState | null> {
  return async (id) => {
    const row = await store.prisma.oAuthClient.findUnique({ where: { id }, select: { id: true, revokedAt: true } })
    if (row === null) return null
    return Object.freeze({ id: row.id, revoked: row.revokedAt !== null })
  }
}

/**
 * Session ids whose access tokens are revoked, each until the last token issued for it has
 * expired (epoch seconds).
 */
export class RevokedSessions {
  readonly #until = new Map<string, number>()

  has (sid: string, nowSec: number): boolean {
    const until = this.#until.get(sid)
    return until !== undefined && until > nowSec
  }

  add (sids: Iterable<string>, untilSec: number): void {
    for (const sid of sids) {
      if (typeof sid !== 'string' || sid.length === 0) continue
      const current = this.#until.get(sid)
      if (current === undefined || current < untilSec) this.#until.set(sid, untilSec)
    }
  }

  prune (nowSec: number): void {
    for (const [sid, until] of this.#until) if (until <= nowSec) this.#until.delete(sid)
  }

  get size (): number {
    return this.#until.size
  }
}

/** Sessions revoked recently enough that access tokens issued for them may still be alive. */
export async function loadRevokedSessions (store: Store, sinceMs: number): Promise<Array<{ id: string, revokedAt: Date }>> {
  const rows = await store.prisma.refreshFamily.findMany({
    where: { revokedAt: { gte: new Date(sinceMs) } },
    select: { id: true, revokedAt: true }
  })
  return rows.filter((r): r is { id: string, revokedAt: Date } => r.revokedAt !== null)
}
