// Options of gatehouse-sessions, resolved once: defaults from named constants, validated, frozen.
import { OptionsError, optionChecks } from '../../lib/options.ts'

/** CONTRACT §2 REFRESH_TOKEN_TTL: idle lifetime, slid forward by every rotation. */
export const DEFAULT_REFRESH_TOKEN_TTL = 604_800
/** CONTRACT §2 REFRESH_TOKEN_MAX_TTL: absolute lifetime of a session (30 days), however often it is rotated. */
export const DEFAULT_REFRESH_TOKEN_MAX_TTL = 30 * 86_400
/** CONTRACT §2 ACCESS_TOKEN_TTL: how long a revoked session's access tokens must stay on the deny list. */
export const DEFAULT_ACCESS_TOKEN_TTL = 900
/** RFC 9700 §4.14.2 recommends no grace at all; a few seconds at most when clients need it. */
export const DEFAULT_REUSE_GRACE_SECONDS = 0
export const MAX_REUSE_GRACE_SECONDS = 5
/** The built-in public client assumed when a request names none (CONTRACT §4). */
export const DEFAULT_CLIENT_ID = 'gatehouse'
/** Margin added to the access-token lifetime when a revoked sid is kept on the deny list (clock tolerance and more). */
export const REVOCATION_MARGIN_SECONDS = 60

export interface SessionsOptions {
  /** Idle lifetime of a refresh token in seconds; each rotation slides it. @default 604800 */
  refreshTokenTtl?: number
  /** Absolute lifetime of a refresh family (session) in seconds. @default 2592000 */
  refreshTokenMaxTtl?: number
  /** Lifetime of access tokens in seconds (how long a revoked sid must stay denied). @default 900 */
  accessTokenTtl?: number
  /**
   * Seconds after a rotation during which the same client presenting the old token again gets
   * the same successor back instead of having its session revoked. 0 disables it. @default 0
   */
  reuseGraceSeconds?: number
  /** client_id of the built-in public client. @default 'gatehouse' */
  defaultClientId?: string
  /** Milliseconds since the epoch; tests move time with it. @default Date.now */
  clock?: () => number
}

export type ResolvedSessionsOptions = Readonly<Required<SessionsOptions>>

/** A bad option of gatehouse-sessions (an OptionsError: `code`, `plugin`, `option`). */
export class SessionsOptionsError extends OptionsError {
  override name = 'SessionsOptionsError'
}

const check = optionChecks('gatehouse-sessions', SessionsOptionsError)

export function resolveOptions (input: SessionsOptions = {}): ResolvedSessionsOptions {
  const refreshTokenMaxTtl = check.integer('refreshTokenMaxTtl', input.refreshTokenMaxTtl, DEFAULT_REFRESH_TOKEN_MAX_TTL, { min: 1, max: 10 * 365 * 86_400 })
  const refreshTokenTtl = check.integer('refreshTokenTtl', input.refreshTokenTtl, Math.min(DEFAULT_REFRESH_TOKEN_TTL, refreshTokenMaxTtl), { min: 1, max: refreshTokenMaxTtl })
  const accessTokenTtl = check.integer('accessTokenTtl', input.accessTokenTtl, DEFAULT_ACCESS_TOKEN_TTL, { min: 1, max: 7 * 86_400 })
  const reuseGraceSeconds = check.integer('reuseGraceSeconds', input.reuseGraceSeconds, DEFAULT_REUSE_GRACE_SECONDS, { min: 0, max: MAX_REUSE_GRACE_SECONDS })
  const defaultClientId = input.defaultClientId ?? DEFAULT_CLIENT_ID
  if (typeof defaultClientId !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(defaultClientId)) {
    check.fail('defaultClientId', 'must be 1-128 visible ASCII characters')
  }
  const clock = input.clock ?? Date.now
  if (typeof clock !== 'function') check.fail('clock', 'must be a function')
  return Object.freeze({ refreshTokenTtl, refreshTokenMaxTtl, accessTokenTtl, reuseGraceSeconds, defaultClientId, clock })
}
