// Where the client keeps its tokens. The default keeps them in memory only: nothing survives a
// reload and nothing is readable from outside the client. A custom storage (localStorage, a
// mobile keychain, an encrypted file) implements three methods, synchronous or async.
import { INSPECT } from './redact.ts'

/** What the client stores. Times are epoch milliseconds on the local clock. */
export interface StoredTokens {
  accessToken: string
  refreshToken: string
  /** When the access token expires (estimated from expires_in, exp and the server's Date). */
  expiresAt: number
  /** When the client plans to refresh it (expiresAt minus skew and jitter). */
  refreshAt: number
}

export interface TokenStorage {
  get: () => StoredTokens | null | undefined | Promise<StoredTokens | null | undefined>
  set: (tokens: StoredTokens) => void | Promise<void>
  clear: () => void | Promise<void>
}

/**
 * The default token holder: tokens in this process's memory only, in a private field. Its
 * toString, toJSON and util.inspect say whether it holds a session, never what.
 */
export class MemoryTokenStorage implements TokenStorage {
  #tokens: StoredTokens | null = null

  get (): StoredTokens | null {
    return this.#tokens === null ? null : { ...this.#tokens }
  }

  set (tokens: StoredTokens): void {
    this.#tokens = { ...tokens }
  }

  clear (): void {
    this.#tokens = null
  }

  toString (): string {
    return `MemoryTokenStorage { session: ${this.#tokens === null ? 'none' : '[redacted]'} }`
  }

  toJSON (): { session: boolean } {
    return { session: this.#tokens !== null }
  }

  [INSPECT] (): string {
    return this.toString()
  }
}

/** Tokens in memory only. @default storage of createClient */
export function memoryStorage (): TokenStorage {
  return new MemoryTokenStorage()
}

/** The part of the Web Storage API (localStorage, sessionStorage) this adapter needs. */
export interface WebStorageLike {
  getItem: (key: string) => string | null
  setItem: (key: string, value: string) => void
  removeItem: (key: string) => void
}

/**
 * Tokens in Web Storage under `key`. Anything that runs script on the page can read them there
 * (an XSS bug becomes a stolen session): prefer memoryStorage() unless the session must survive
 * a reload. Tabs sharing the storage also share the session: the client re-reads the storage
 * before refreshing and adopts a token another tab has already rotated.
 */
export function webStorage (store: WebStorageLike, key = 'gatehouse.tokens'): TokenStorage {
  return {
    get: () => parseStoredTokens(store.getItem(key)),
    set: (tokens) => store.setItem(key, JSON.stringify(tokens)),
    clear: () => store.removeItem(key)
  }
}

/** Validates what a storage returned; anything malformed counts as no session. */
export function parseStoredTokens (value: unknown): StoredTokens | null {
  let data = value
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data)
    } catch {
      return null
    }
  }
  if (data === null || typeof data !== 'object') return null
  const t = data as Record<string, unknown>
  if (typeof t.accessToken !== 'string' || t.accessToken === '') return null
  if (typeof t.refreshToken !== 'string' || t.refreshToken === '') return null
  if (typeof t.expiresAt !== 'number' || !Number.isFinite(t.expiresAt)) return null
  const refreshAt = typeof t.refreshAt === 'number' && Number.isFinite(t.refreshAt) ? Math.min(t.refreshAt, t.expiresAt) : t.expiresAt
  return { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: t.expiresAt, refreshAt }
}
