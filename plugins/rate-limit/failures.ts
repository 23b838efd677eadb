// The failed-credential budget: how many wrong credentials of any scheme one address may present
// per window. Failures are counted in the shared store (Redis when there is one) after the answer;
// the verdict "this address is spent" is kept in this process's memory until the window ends, so
// the check that runs before any credential is verified costs one Map lookup and no round trip.
// With N instances, each learns of a spent budget on its own next counted failure: at most N - 1
// failures beyond the budget per window (and, within one instance, those already in flight).
import type { FastifyError } from 'fastify'

/** Codes that mean "this credential is wrong": what someone guessing or forging gets. */
export const FAILED_CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'INVALID_CREDENTIALS',
  'INVALID_TOKEN',
  'INVALID_SIGNATURE',
  'UNTRUSTED_ISSUER',
  'MISSING_CLAIM',
  'INVALID_REFRESH_TOKEN',
  'REFRESH_TOKEN_REUSED',
  'MALFORMED_AUTHORIZATION',
  'INVALID_MFA_CODE'
])

/** OAuth 2.0 error values (RFC 6749 §5.2) that mean the same. */
const FAILED_OAUTH_ERRORS: ReadonlySet<string> = new Set(['invalid_client', 'invalid_grant'])

/**
 * Whether an error is a failed credential. Expired, revoked or not-yet-valid tokens and
 * missing credentials are not: a legitimate client meets them in the normal course.
 */
export function isFailedCredential (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, error } = err as Partial<FastifyError> & { error?: unknown }
  if (typeof code === 'string' && FAILED_CREDENTIAL_CODES.has(code)) return true
  return typeof error === 'string' && FAILED_OAUTH_ERRORS.has(error)
}

/** Addresses whose budget is spent, each until its window ends. Bounded; the soonest to end go first. */
export class SpentAddresses {
  readonly #until = new Map<string, number>()
  readonly #clock: () => number
  readonly #maxEntries: number

  constructor (clock: () => number, maxEntries: number) {
    this.#clock = clock
    this.#maxEntries = maxEntries
  }

  /** Whole seconds until `key` may present credentials again; 0 when it may now. */
  retryAfter (key: string): number {
    const until = this.#until.get(key)
    if (until === undefined) return 0
    const left = until - this.#clock()
    if (left <= 0) {
      this.#until.delete(key)
      return 0
    }
    return Math.max(1, Math.ceil(left / 1000))
  }

  spend (key: string, ttlMs: number): void {
    const now = this.#clock()
    this.#until.delete(key)
    this.#until.set(key, now + Math.max(1, ttlMs))
    if (this.#until.size <= this.#maxEntries) return
    for (const [k, until] of this.#until) if (until <= now) this.#until.delete(k)
    for (const k of this.#until.keys()) {
      if (this.#until.size <= this.#maxEntries) break
      this.#until.delete(k)
    }
  }

  get size (): number {
    return this.#until.size
  }
}
