// Options of gatehouse-tokens: defaults from named constants, validated once, returned frozen.
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { DEFAULT_SIGNING_ALGORITHM, isSigningAlgorithm, SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../lib/algorithms.ts'
import { OptionsError } from '../../lib/options.ts'
import { CLOCK_TOLERANCE_SECONDS } from './jwt.ts'

export interface TokensOptions {
  /** `iss` of issued tokens; verified by exact string match. */
  issuer: string
  /** `aud` of issued tokens. @default 'gatehouse' */
  audience?: string
  /** Folder of the key ring (AUTH_KEYS_DIR). */
  keysDir: string
  /** Algorithm of a key generated at first start. @default 'RS256' */
  signingAlgorithm?: SigningAlgorithm
  /** Access-token lifetime and maximum age, in seconds (ACCESS_TOKEN_TTL). @default 900 */
  accessTokenTtl?: number
  /** Accepted clock skew for exp/nbf/iat, in seconds. @default 30 */
  clockTolerance?: number
  /** Generate a key when the folder holds none (with a loud warning). @default true */
  generateKeys?: boolean
  /**
   * Verified tokens remembered. A token is remembered the second time it is verified (the first
   * sighting only marks it), so a stream of tokens that never repeat does not churn the cache.
   * @default 10000
   */
  verifiedCacheSize?: number
  /**
   * Where the signature of a token that is not in the verified cache is checked: 'pool' on
   * libuv's thread pool (in parallel with the JavaScript thread, as jose does through WebCrypto),
   * 'inline' on the JavaScript thread (no thread hand-off: the better choice for a process
   * limited to one core).
   * @default 'pool' when os.availableParallelism() > 1, else 'inline'
   */
  signatureCheck?: 'pool' | 'inline'
  /** Users (and OAuth clients) whose state is cached. @default 10000 */
  userStateCacheSize?: number
  /** Seconds a cached user state is trusted without a change notice. @default 30 */
  userStateTtl?: number
  /**
   * Seconds between checks of the keys folder (a stat of each file; the keys are re-read only when
   * something changed), so rotations and retirements made elsewhere apply. 0 = only on an unknown
   * kid or a `keys` notice on the bus. @default 10
   */
  keysReloadInterval?: number
}

export interface ResolvedTokensOptions {
  readonly issuer: string
  readonly audience: string
  readonly keysDir: string
  readonly signingAlgorithm: SigningAlgorithm
  readonly accessTokenTtl: number
  readonly clockTolerance: number
  readonly generateKeys: boolean
  readonly verifiedCacheSize: number
  readonly signatureCheck: 'pool' | 'inline'
  readonly userStateCacheSize: number
  readonly userStateTtl: number
  readonly keysReloadInterval: number
}

export const DEFAULT_AUDIENCE = 'gatehouse'
export const DEFAULT_ACCESS_TOKEN_TTL = 900
export const DEFAULT_VERIFIED_CACHE_SIZE = 10_000
export const DEFAULT_USER_STATE_CACHE_SIZE = 10_000
export const DEFAULT_USER_STATE_TTL = 30
export const DEFAULT_KEYS_RELOAD_INTERVAL = 10

const PLUGIN = 'gatehouse-tokens'

function fail (option: string, message: string): never {
  throw new OptionsError(PLUGIN, option, `${PLUGIN}: ${option} ${message}`)
}

function positiveInteger (name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || (value as number) < min) fail(name, `must be an integer >= ${min}`)
  return value as number
}

export function resolveOptions (options: TokensOptions): ResolvedTokensOptions {
  if (typeof options.issuer !== 'string' || options.issuer === '') fail('issuer', 'is required')
  if (typeof options.keysDir !== 'string' || options.keysDir === '') fail('keysDir', 'is required')
  const audience = options.audience ?? DEFAULT_AUDIENCE
  if (typeof audience !== 'string' || audience === '') fail('audience', 'must be a non-empty string')
  const signingAlgorithm = options.signingAlgorithm ?? DEFAULT_SIGNING_ALGORITHM
  if (!isSigningAlgorithm(signingAlgorithm)) fail('signingAlgorithm', `must be one of ${SIGNING_ALGORITHMS.join(', ')}`)
  const signatureCheck = options.signatureCheck ?? (availableParallelism() > 1 ? 'pool' : 'inline')
  if (signatureCheck !== 'pool' && signatureCheck !== 'inline') fail('signatureCheck', "must be 'pool' or 'inline'")
  return Object.freeze({
    issuer: options.issuer,
    audience,
    keysDir: resolve(options.keysDir),
    signingAlgorithm,
    accessTokenTtl: positiveInteger('accessTokenTtl', options.accessTokenTtl, DEFAULT_ACCESS_TOKEN_TTL),
    clockTolerance: positiveInteger('clockTolerance', options.clockTolerance, CLOCK_TOLERANCE_SECONDS, 0),
    generateKeys: options.generateKeys ?? true,
    verifiedCacheSize: positiveInteger('verifiedCacheSize', options.verifiedCacheSize, DEFAULT_VERIFIED_CACHE_SIZE),
    signatureCheck,
    userStateCacheSize: positiveInteger('userStateCacheSize', options.userStateCacheSize, DEFAULT_USER_STATE_CACHE_SIZE),
    userStateTtl: positiveInteger('userStateTtl', options.userStateTtl, DEFAULT_USER_STATE_TTL, 0),
    keysReloadInterval: positiveInteger('keysReloadInterval', options.keysReloadInterval, DEFAULT_KEYS_RELOAD_INTERVAL, 0)
  })
}
