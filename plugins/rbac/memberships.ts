// A per-user cache of organization memberships for the default, database-backed resolver.
//
// Correctness comes first: a removed or demoted member must lose access on the next request,
// on every instance. So an entry is dropped on a `membership` notice, every entry is dropped
// when the bus resynchronises, and the cache is bypassed entirely while the bus is unhealthy
// (notices may be missed then). A load that started before an invalidation is never cached
// (generation counter), so a slow query cannot put back the state from before the change.

export interface MembershipCacheOptions {
  /** Loads every membership of a user: orgId -> role. */
  load: (userId: string) => Promise<Map<string, string>>
  /** False while invalidation notices may be missed. */
  healthy: () => boolean
  ttlMs: number
  max: number
  now?: () => number
}

export interface MembershipCache {
  /** The role of `userId` in `orgId`, or null. */
  get: (userId: string, orgId: string) => Promise<string | null>
  invalidate: (userId: string) => void
  clear: () => void
  readonly size: number
}

interface Entry { orgs: Map<string, string>, expires: number }

export function createMembershipCache (options: MembershipCacheOptions): MembershipCache {
  const now = options.now ?? Date.now
  const entries = new Map<string, Entry>()
  const inFlight = new Map<string, Promise<Map<string, string>>>()
  const generations = new Map<string, number>()
  let epoch = 0

  function enabled (): boolean {
    return options.ttlMs > 0 && options.max > 0 && options.healthy()
  }

  function load (userId: string): Promise<Map<string, string>> {
    const pending = inFlight.get(userId)
    if (pending !== undefined) return pending
    const generation = generations.get(userId) ?? 0
    const startedEpoch = epoch
    const promise = options.load(userId).then((orgs) => {
      if (inFlight.get(userId) === promise) inFlight.delete(userId)
      if (enabled() && startedEpoch === epoch && (generations.get(userId) ?? 0) === generation) {
        if (entries.size >= options.max) {
          const oldest = entries.keys().next()
          if (oldest.done !== true) entries.delete(oldest.value)
        }
        entries.set(userId, { orgs, expires: now() + options.ttlMs })
      }
      return orgs
    }, (err: unknown) => {
      if (inFlight.get(userId) === promise) inFlight.delete(userId)
      throw err
    })
    inFlight.set(userId, promise)
    return promise
  }

  return {
    async get (userId, orgId) {
      if (!enabled()) {
        entries.clear()
        return (await options.load(userId)).get(orgId) ?? null
      }
      const entry = entries.get(userId)
      if (entry !== undefined && entry.expires > now()) return entry.orgs.get(orgId) ?? null
      if (entry !== undefined) entries.delete(userId)
      return (await load(userId)).get(orgId) ?? null
    },
    invalidate (userId) {
      generations.set(userId, (generations.get(userId) ?? 0) + 1)
      entries.delete(userId)
      inFlight.delete(userId)
      if (generations.size > options.max * 4) {
        generations.clear()
        epoch++
      }
    },
    clear () {
      epoch++
      entries.clear()
      inFlight.clear()
      generations.clear()
    },
    get size () { return entries.size }
  }
}
