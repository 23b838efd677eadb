// Options of gatehouse-mfa: defaults from named constants, validated once, frozen.
import { OptionsError, optionChecks } from '../../lib/options.ts'

export const DEFAULT_TOTP_ISSUER = 'Gatehouse'
/** Seconds an mfa_token lives (the second step of a login). */
export const DEFAULT_MFA_TOKEN_TTL = 300
/** Answers (wrong or right) one mfa_token allows. */
export const DEFAULT_MAX_ATTEMPTS = 5
/** Seconds a WebAuthn challenge lives. */
export const DEFAULT_CHALLENGE_TTL = 300
/**
 * Seconds a multi-factor authentication stays recent enough for a sensitive self-service action
 * (changing the password or email, removing a factor, ...) without a current code (RFC 9470 max_age).
 */
export const DEFAULT_STEP_UP_MAX_AGE = 300

export interface WebAuthnOptions {
  /** The relying party id: a registrable domain (`example.com`) or `localhost`. */
  rpId: string
  /** Name the browser shows. @default the TOTP issuer */
  rpName?: string
  /** Exact origins (`https://app.example.com`) whose pages may use the passkeys; each must be the RP id or a subdomain of it. */
  origins: string[]
}

export interface MfaOptions {
  /** Folder of the secret-sealing key file (AUTH_KEYS_DIR). */
  keysDir: string
  /** Create the key file when it is missing (with a warning). @default true */
  generateKey?: boolean
  /** The issuer authenticator apps show next to the account. @default 'Gatehouse' */
  totpIssuer?: string
  /** @default 300 */
  mfaTokenTtl?: number
  /** @default 5 */
  maxAttempts?: number
  /** @default 300 */
  challengeTtl?: number
  /**
   * Seconds after a multi-factor login during which its session may do a sensitive self-service
   * action without a current code (the access token's `auth_time`; see docs/mfa.md). @default 300
   */
  stepUpMaxAge?: number
  /** Passkeys; without it the WebAuthn routes answer 404. */
  webauthn?: WebAuthnOptions
  /** Epoch milliseconds (tests). @default Date.now */
  clock?: () => number
}

export interface ResolvedWebAuthnOptions {
  readonly rpId: string
  readonly rpName: string
  readonly origins: readonly string[]
}

export interface ResolvedMfaOptions {
  readonly keysDir: string
  readonly generateKey: boolean
  readonly totpIssuer: string
  readonly mfaTokenTtl: number
  readonly maxAttempts: number
  readonly challengeTtl: number
  readonly stepUpMaxAge: number
  readonly webauthn: ResolvedWebAuthnOptions | null
  readonly clock: () => number
}

/** A bad option of gatehouse-mfa (an OptionsError: `code`, `plugin`, `option`). */
export class MfaOptionsError extends OptionsError {
  override name = 'MfaOptionsError'
}

const PLUGIN = 'gatehouse-mfa'
const check = optionChecks(PLUGIN, MfaOptionsError)

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

/**
 * WebAuthn §5.1.3 / §13.4.9: the RP id is a domain (not an IP address, no port), and every origin
 * is https (or http on localhost) with a host that is the RP id or ends with `.<rpId>`.
 * Throws MfaOptionsError naming the bad value.
 */
export function checkWebAuthn (rpId: string, origins: readonly string[]): void {
  if (typeof rpId !== 'string' || !HOSTNAME.test(rpId) || /^\d+(\.\d+){3}$/.test(rpId)) {
    throw new MfaOptionsError(PLUGIN, 'webauthn.rpId', `the WebAuthn RP id ${JSON.stringify(rpId)} must be a domain name in lower case (an IP address cannot be one)`)
  }
  if (!Array.isArray(origins) || origins.length === 0) throw new MfaOptionsError(PLUGIN, 'webauthn.origins', 'at least one WebAuthn origin is required')
  for (const origin of origins) {
    let url: URL
    try {
      url = new URL(origin)
    } catch {
      throw new MfaOptionsError(PLUGIN, 'webauthn.origins', `the WebAuthn origin ${JSON.stringify(origin)} is not a URL`)
    }
    if (url.origin !== origin) throw new MfaOptionsError(PLUGIN, 'webauthn.origins', `the WebAuthn origin ${JSON.stringify(origin)} must be a bare origin such as https://app.example.com (no path, no trailing slash)`)
    const secure = url.protocol === 'https:' || (url.protocol === 'http:' && url.hostname === 'localhost')
    if (!secure) throw new MfaOptionsError(PLUGIN, 'webauthn.origins', `the WebAuthn origin ${origin} must be https:// (http:// only for localhost)`)
    if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`)) {
      throw new MfaOptionsError(PLUGIN, 'webauthn.origins', `the WebAuthn origin ${origin} does not belong to the RP id ${rpId}`)
    }
  }
}

export function resolveOptions (input: MfaOptions): ResolvedMfaOptions {
  const keysDir = check.string('keysDir', input.keysDir)
  const totpIssuer = input.totpIssuer ?? DEFAULT_TOTP_ISSUER
  if (typeof totpIssuer !== 'string' || totpIssuer === '' || totpIssuer.includes(':')) check.fail('totpIssuer', 'must be a non-empty string without ":"')
  let webauthn: ResolvedWebAuthnOptions | null = null
  if (input.webauthn !== undefined) {
    checkWebAuthn(input.webauthn.rpId, input.webauthn.origins)
    webauthn = Object.freeze({ rpId: input.webauthn.rpId, rpName: input.webauthn.rpName ?? totpIssuer, origins: Object.freeze([...input.webauthn.origins]) })
  }
  if (input.clock !== undefined && typeof input.clock !== 'function') check.fail('clock', 'must be a function')
  return Object.freeze({
    keysDir,
    generateKey: check.boolean('generateKey', input.generateKey, true),
    totpIssuer,
    mfaTokenTtl: check.integer('mfaTokenTtl', input.mfaTokenTtl, DEFAULT_MFA_TOKEN_TTL, { min: 1 }),
    maxAttempts: check.integer('maxAttempts', input.maxAttempts, DEFAULT_MAX_ATTEMPTS, { min: 1 }),
    challengeTtl: check.integer('challengeTtl', input.challengeTtl, DEFAULT_CHALLENGE_TTL, { min: 1 }),
    stepUpMaxAge: check.integer('stepUpMaxAge', input.stepUpMaxAge, DEFAULT_STEP_UP_MAX_AGE, { min: 1, max: 86_400 }),
    webauthn,
    clock: input.clock ?? Date.now
  })
}
