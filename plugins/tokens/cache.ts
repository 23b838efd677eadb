// A bounded (approximately) least-recently-used map whose entries carry their own expiry time. The verified-token
// cache and the per-user state cache are both this: a hit costs one Map lookup.

interface Slot<V> {
  value: V
  /** Epoch milliseconds after which the entry is gone. */
  expiresAt: number
  /** When the entry last moved to the recent end (a count of insertions). */
  tick: number
}

export class ExpiringLru<V> {
  readonly max: number
  readonly #map = new Map<string, Slot<V>>()
  #tick = 0

  constructor (max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('the cache size must be a positive integer')
    this.max = max
  }

  get size (): number {
    return this.#map.size
  }

  /** The live value for `key`, or undefined (an expired entry is dropped). */
  get (key: string, now: number): V | undefined {
    const slot = this.#map.get(key)
    if (slot === undefined) return undefined
    if (now >= slot.expiresAt) {
      this.#map.delete(key)
      return undefined
    }
    // Map order is (approximately) recency order: an entry moves to the recent end only once it has
    // drifted into the older half, so a hot entry costs one lookup per hit, and an entry used
    // within the last max/2 insertions is never the one evicted.
    if (this.#tick - slot.tick >= this.max >> 1) {
      this.#map.delete(key)
      this.#map.set(key, slot)
      slot.tick = ++this.#tick
    }
    return slot.value
  }

  set (key: string, value: V, expiresAt: number): void {
    this.#map.delete(key)
    if (this.#map.size >= this.max) {
      const oldest = this.#map.keys().next()
      if (oldest.done !== true) this.#map.delete(oldest.value)
    }
    this.#map.set(key, { value, expiresAt, tick: ++this.#tick })
  }

  delete (key: string): boolean {
    return this.#map.delete(key)
  }

  clear (): void {
    this.#map.clear()
  }
}
