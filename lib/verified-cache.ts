// A bounded (approximately) least-recently-used map whose entries carry their own expiry time, the
// key a verified-token cache is indexed by, and its admission (Doorkeeper). The verified-token
// caches of gatehouse-tokens and gatehouse-trusted-issuers and the per-user state cache of
// gatehouse-tokens are built from these: a hit costs one Map lookup.

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

/**
 * A verified cache is indexed by the last characters of a token (its signature, which no two
 * signed tokens share), so a lookup hashes 24 characters instead of the whole token; a hit counts
 * only when the whole token is equal (the caller compares the entry's token).
 */
const CACHE_KEY_LENGTH = 24
export function cacheKeyOf (token: string): string {
  return token.length > CACHE_KEY_LENGTH ? token.slice(-CACHE_KEY_LENGTH) : token
}

/**
 * Admission to the verified cache on a token's second verification (the doorkeeper of TinyLFU).
 * It remembers fingerprints of the last `window` to 2 x `window` distinct cache keys (two
 * generations), `window` being the cache size: a token presented again within the cache's own
 * reach is admitted, while a stream of tokens that never come back that soon (which an LRU could
 * never hit anyway) leaves the cache alone instead of churning it.
 */
/** Clears `mark` from the bucket at `bucket` of `table`; true when it was there. */
function take (table: Uint32Array, bucket: number, mark: number): boolean {
  if (table[bucket] === mark) {
    table[bucket] = 0
    return true
  }
  if (table[bucket + 1] === mark) {
    table[bucket + 1] = 0
    return true
  }
  return false
}

export class Doorkeeper {
  readonly #window: number
  readonly #mask: number
  // Two generations of fingerprint tables (buckets of two slots), allocated once: no garbage per token.
  #current: Uint32Array
  #previous: Uint32Array
  #marked = 0

  constructor (window: number) {
    let slots = 2
    while (slots < 2 * window) slots *= 2
    this.#window = window
    this.#mask = slots - 1
    this.#current = new Uint32Array(slots)
    this.#previous = new Uint32Array(slots)
  }

  /** True when `key` was marked within the window (the mark is then used up); otherwise marks it. */
  admit (key: string): boolean {
    // FNV-1a over the key (signature characters), then murmur3's finaliser so that the low bits
    // (the bucket) depend on every character. The hash is the mark (never 0: 0 is an empty slot).
    let h = 0x811c9dc5
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
    const mark = (h | 1) >>> 0
    // Buckets of two slots: a mark is lost only when three keys of one generation share a bucket.
    const bucket = h & this.#mask & ~1
    if (take(this.#current, bucket, mark) || take(this.#previous, bucket, mark)) return true
    const current = this.#current
    current[current[bucket] === 0 ? bucket : current[bucket + 1] === 0 ? bucket + 1 : bucket + (mark >>> 31)] = mark
    if (++this.#marked >= this.#window) {
      const older = this.#previous
      this.#previous = this.#current
      this.#current = older.fill(0)
      this.#marked = 0
    }
    return false
  }

  clear (): void {
    this.#current.fill(0)
    this.#previous.fill(0)
    this.#marked = 0
  }
}
