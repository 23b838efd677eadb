// A small LRU with a per-entry deadline: a Map keeps insertion order, so re-inserting on a hit
// moves an entry to the young end and the oldest key is the first one iterated.

export interface TtlCache<V> {
  get: (key: string) => V | undefined
  set: (key: string, value: V) => void
  delete: (key: string) => boolean
  /** Deletes every entry whose value matches. */
  deleteWhere: (match: (value: V) => boolean) => number
  clear: () => void
  readonly size: number
}

export function createTtlCache<V> (max: number, ttlMs: number, now: () => number = Date.now): TtlCache<V> {
  const entries = new Map<string, { value: V, expiresAt: number }>()

  return {
    get (key) {
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      if (entry.expiresAt <= now()) {
        entries.delete(key)
        return undefined
      }
      entries.delete(key)
      entries.set(key, entry)
      return entry.value
    },
    set (key, value) {
      if (ttlMs <= 0) return
      entries.delete(key)
      entries.set(key, { value, expiresAt: now() + ttlMs })
      while (entries.size > max) {
        const oldest = entries.keys().next().value as string
        entries.delete(oldest)
      }
    },
    delete (key) {
      return entries.delete(key)
    },
    deleteWhere (match) {
      let n = 0
      for (const [key, entry] of entries) {
        if (match(entry.value)) {
          entries.delete(key)
          n++
        }
      }
      return n
    },
    clear () {
      entries.clear()
    },
    get size () { return entries.size }
  }
}
