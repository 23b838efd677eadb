// The key cache of ONE allowlisted issuer. Each issuer has its own instance, held in a Map
// keyed by the exact issuer string, and each instance maps kid -> keys: a key of issuer B can
// never be found for a token of issuer A (no concatenated cache keys, cf. CVE-2025-59936).
//
// Rules:
//  - one fetch in flight per issuer; every request that misses meanwhile waits for it;
//  - after a good fetch, at most one more per cooldown (unknown kids), except the refresh of a
//    key set older than cacheMaxAge; after a failed fetch, the next one waits failureBackoff;
//  - a successful fetch REPLACES the key set (removed keys stop verifying); a key that is still
//    published unchanged keeps its KeyEntry object, so tokens it verified stay cached (serves());
//  - a failed fetch keeps the previous set, usable up to maxStale; with nothing usable the
//    answer is JWKS_UNAVAILABLE (503, Retry-After) and nothing negative is remembered;
//  - kids missing from a successfully fetched set are remembered (bounded, for one cooldown).
import { gatehouseError, type GatehouseError } from '../../lib/errors.ts'
import { discoveryUrl, fetchBoundedJson, importJwks, jwksUriFromDiscovery, KeySourceError, type FetchLimits, type KeyEntry } from './jwks.ts'
import type { ResolvedIssuer, ResolvedOptions } from './options.ts'

export interface KeySet {
  readonly keys: readonly KeyEntry[]
  readonly byKid: ReadonlyMap<string, readonly KeyEntry[]>
  /** The keys of the set, for serves(). */
  readonly members: ReadonlySet<KeyEntry>
  /** When the fetch completed (ms since epoch). */
  readonly fetchedAt: number
}

/** Counters shared by all issuers of one plugin instance. */
export interface Counters {
  fetches: number
  fetchFailures: number
  discoveryFetches: number
  cacheHits: number
  cacheMisses: number
  staleServed: number
  unknownKids: number
  skippedKeys: number
}

export interface SourceLog {
  warn: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
}

export class IssuerKeySource {
  readonly #issuer: ResolvedIssuer
  readonly #options: ResolvedOptions
  readonly #counters: Counters
  readonly #log: SourceLog
  readonly #signal: AbortSignal
  #set: KeySet | null = null
  #inflight: Promise<KeySet> | null = null
  #lastAttemptAt = Number.NEGATIVE_INFINITY
  #lastFetchFailed = false
  #lastError: string | null = null
  #discovered: { uri: string, at: number } | null = null
  /** kid -> time until which it counts as unknown; insertion order = age. */
  readonly #unknown = new Map<string, number>()

  constructor (issuer: ResolvedIssuer, options: ResolvedOptions, counters: Counters, log: SourceLog, signal: AbortSignal) {
    this.#issuer = issuer
    this.#options = options
    this.#counters = counters
    this.#log = log
    this.#signal = signal
  }

  /** The keys for `kid` (or all keys when the token has no kid); [] when none. */
  async lookup (kid: string | undefined): Promise<readonly KeyEntry[]> {
    const now = this.#options.clock()
    let set = this.#set
    let missed = false
    if (set === null || now - set.fetchedAt >= this.#options.cacheMaxAgeMs) {
      this.#counters.cacheMisses++
      missed = true
      set = await this.#freshOrStale(now)
    }
    const found = find(set, kid)
    if (found.length > 0 || kid === undefined) {
      if (found.length > 0 && !missed) this.#counters.cacheHits++
      return found
    }

    // Unknown kid: perhaps the provider rotated. Refetch at most once per cooldown.
    const until = this.#unknown.get(kid)
    if (until !== undefined && until > now) {
      this.#counters.unknownKids++
      return []
    }
    if (!missed) this.#counters.cacheMisses++
    if (this.#inflight !== null || now >= this.#nextFetchAt()) {
      try {
        set = await this.#refresh()
      } catch (err) {
        // The provider is down: the kid may well exist there. That is an outage, not a bad token.
        throw this.#unavailable(err)
      }
    } else if (this.#lastFetchFailed) {
      throw this.#unavailable(null)
    }
    const again = find(set, kid)
    if (again.length > 0) return again
    this.#rememberUnknown(kid, now)
    this.#counters.unknownKids++
    return []
  }

  /**
   * True while `key` may vouch for a token verified earlier: it is in the current key set and
   * that set is younger than cacheMaxAge (an older set is refetched by the next lookup, which a
   * cached token must go through). A key the provider dropped, or a set served stale during an
   * outage, serves nothing from the verified-token cache.
   */
  serves (key: KeyEntry): boolean {
    const set = this.#set
    return set !== null && this.#options.clock() - set.fetchedAt < this.#options.cacheMaxAgeMs && set.members.has(key)
  }

  /** For stats(): what this issuer's cache holds. */
  describe (): { keys: number, fetchedAt: string | null, lastError: string | null } {
    return {
      keys: this.#set?.keys.length ?? 0,
      fetchedAt: this.#set === null ? null : new Date(this.#set.fetchedAt).toISOString(),
      lastError: this.#lastError
    }
  }

  async #freshOrStale (now: number): Promise<KeySet> {
    if (this.#inflight !== null || now >= this.#nextFetchAt()) {
      try {
        return await this.#refresh()
      } catch (err) {
        return this.#stale(now, err)
      }
    }
    return this.#stale(now, null)
  }

  /** After a success the cooldown applies; after a failure the (shorter) failure backoff. */
  #nextFetchAt (): number {
    return this.#lastAttemptAt + (this.#lastFetchFailed ? this.#options.failureBackoffMs : this.#options.cooldownMs)
  }

  #stale (now: number, err: unknown): KeySet {
    const set = this.#set
    if (set !== null && now - set.fetchedAt <= this.#options.maxStaleMs) {
      this.#counters.staleServed++
      return set
    }
    throw this.#unavailable(err)
  }

  #unavailable (cause: unknown): GatehouseError {
    const wait = this.#nextFetchAt() - this.#options.clock()
    const retryAfter = Math.max(1, Math.ceil(wait / 1000))
    return gatehouseError('JWKS_UNAVAILABLE', undefined, {
      headers: { 'retry-after': String(retryAfter) },
      cause: cause ?? new KeySourceError(`keys of ${this.#issuer.issuer} unavailable: ${this.#lastError ?? 'no key set'}`)
    })
  }

  #refresh (): Promise<KeySet> {
    if (this.#inflight !== null) return this.#inflight
    this.#lastAttemptAt = this.#options.clock()
    const attempt = this.#load().then((set) => {
      this.#set = set
      this.#lastFetchFailed = false
      this.#lastError = null
      return set
    }, (err: unknown) => {
      this.#lastFetchFailed = true
      this.#counters.fetchFailures++
      this.#lastError = err instanceof Error ? err.message : String(err)
      this.#log.warn({ issuer: this.#issuer.issuer, reason: this.#lastError }, 'trusted issuer: key fetch failed')
      throw err
    }).finally(() => {
      this.#inflight = null
    })
    this.#inflight = attempt
    return attempt
  }

  async #load (): Promise<KeySet> {
    const limits: FetchLimits = {
      timeoutMs: this.#options.timeoutMs,
      maxResponseBytes: this.#options.maxResponseBytes,
      allowPrivateNetwork: this.#issuer.allowPrivateNetwork,
      signal: this.#signal
    }
    const uri = this.#issuer.jwksUri ?? await this.#discover(limits)
    this.#counters.fetches++
    const imported = importJwks(await fetchBoundedJson(uri, limits), this.#options.maxKeys)
    const skipped = Object.values(imported.skipped).reduce((a, b) => a + b, 0)
    if (skipped > 0) {
      this.#counters.skippedKeys += skipped
      this.#log.info({ issuer: this.#issuer.issuer, skipped: imported.skipped }, 'trusted issuer: unusable JWKS keys ignored')
    }
    const keys = imported.keys.map((key) => this.#unchanged(key) ?? key)
    const byKid = new Map<string, KeyEntry[]>()
    for (const key of keys) {
      if (key.kid === undefined) continue
      const list = byKid.get(key.kid)
      if (list === undefined) byKid.set(key.kid, [key])
      else list.push(key)
    }
    return Object.freeze({ keys: Object.freeze(keys), byKid, members: new Set(keys), fetchedAt: this.#options.clock() })
  }

  /** The entry of the current set that is the same key as `key` (kid, type, alg and key material). */
  #unchanged (key: KeyEntry): KeyEntry | undefined {
    const previous = this.#set
    if (previous === null) return undefined
    const candidates = key.kid === undefined ? previous.keys : previous.byKid.get(key.kid) ?? []
    return candidates.find((old) => old.kid === key.kid && old.kty === key.kty && old.alg === key.alg && old.publicKey.equals(key.publicKey))
  }

  async #discover (limits: FetchLimits): Promise<string> {
    const cached = this.#discovered
    if (cached !== null && this.#options.clock() - cached.at < this.#options.cacheMaxAgeMs) return cached.uri
    this.#counters.discoveryFetches++
    const uri = jwksUriFromDiscovery(await fetchBoundedJson(discoveryUrl(this.#issuer.issuer), limits), this.#issuer.issuer)
    this.#discovered = { uri, at: this.#options.clock() }
    return uri
  }

  #rememberUnknown (kid: string, now: number): void {
    this.#unknown.delete(kid)
    this.#unknown.set(kid, now + this.#options.cooldownMs)
    while (this.#unknown.size > this.#options.negativeCacheSize) {
      const oldest = this.#unknown.keys().next().value as string
      this.#unknown.delete(oldest)
    }
  }
}

function find (set: KeySet, kid: string | undefined): readonly KeyEntry[] {
  if (kid === undefined) return set.keys
  return set.byKid.get(kid) ?? []
}
