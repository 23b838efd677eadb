// A small typed event emitter (no Node EventEmitter: the client also runs in browsers).
// A listener that throws is reported to the log and does not stop the others or the client.
import type { GatehouseClientError, GatehouseSessionExpiredError } from './errors.ts'
import type { GatehouseUser } from './types.ts'

export interface ClientEvents {
  /** A session started: login, register, or a re-authentication through `credentials`. */
  loggedIn: { via: 'login' | 'register' | 'credentials', user: GatehouseUser | undefined, expiresAt: number }
  /** The access token was replaced through POST /auth/refresh. */
  refreshed: { expiresAt: number }
  /** The refresh token was rejected and no new session could be started. */
  sessionExpired: { error: GatehouseSessionExpiredError, cause: GatehouseClientError | undefined }
  /** logout() or logoutAll() ended the session (tokens cleared even if the server was unreachable). */
  loggedOut: { all: boolean }
}

export type ClientEventName = keyof ClientEvents
export type Listener<E extends ClientEventName> = (event: ClientEvents[E]) => void

export class Emitter {
  #listeners = new Map<ClientEventName, Set<(event: never) => void>>()
  #onListenerError: (event: ClientEventName, err: unknown) => void

  constructor (onListenerError: (event: ClientEventName, err: unknown) => void) {
    this.#onListenerError = onListenerError
  }

  on<E extends ClientEventName> (event: E, listener: Listener<E>): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function')
    let set = this.#listeners.get(event)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(event, set)
    }
    set.add(listener as (event: never) => void)
    return () => this.off(event, listener)
  }

  off<E extends ClientEventName> (event: E, listener: Listener<E>): void {
    this.#listeners.get(event)?.delete(listener as (event: never) => void)
  }

  emit<E extends ClientEventName> (event: E, payload: ClientEvents[E]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as Listener<E>)(Object.freeze({ ...payload }) as ClientEvents[E])
      } catch (err) {
        this.#onListenerError(event, err)
      }
    }
  }

  count (event: ClientEventName): number {
    return this.#listeners.get(event)?.size ?? 0
  }
}
