// Options of gatehouse-credentials: defaults from named constants, validated once, frozen.
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { OptionsError, optionChecks } from '../../lib/options.ts'

/** OWASP Password Storage Cheat Sheet floor for argon2id: m=19 MiB, t=2, p=1. */
export const DEFAULT_MEMORY_COST_KIB = 19_456
export const DEFAULT_TIME_COST = 2
export const DEFAULT_PARALLELISM = 1
export const DEFAULT_OUTPUT_LEN = 32
export const SALT_BYTES = 16
/** NIST SP 800-63B asks for at least 8 (15 without MFA); 12 is the project's default floor. */
export const DEFAULT_MIN_PASSWORD_LENGTH = 12
/** Longer passwords are refused before any hashing (argon2 cost grows with input length). */
export const DEFAULT_MAX_PASSWORD_BYTES = 1024
/** Waiting argon2 operations allowed per running one before 503. */
export const DEFAULT_HASH_QUEUE_FACTOR = 32
export const DEFAULT_BASIC_CACHE_TTL_MS = 60_000
export const DEFAULT_BASIC_CACHE_MAX = 10_000
export const DEFAULT_API_KEY_CACHE_TTL_MS = 60_000
export const DEFAULT_API_KEY_CACHE_MAX = 10_000
export const DEFAULT_API_KEY_TOUCH_INTERVAL_MS = 60_000
export const DEFAULT_API_KEY_PREFIX = 'gh'
/**
 * The shipped list beside this module; from a compiled build (dist/plugins/credentials/) that did
 * not copy it, the one in the source tree.
 */
export const DEFAULT_COMMON_PASSWORDS_FILE = [
  new URL('./common-passwords.txt', import.meta.url),
  new URL('../../../plugins/credentials/common-passwords.txt', import.meta.url)
].map((url) => fileURLToPath(url)).find((file) => existsSync(file)) ?? fileURLToPath(new URL('./common-passwords.txt', import.meta.url))

export interface Argon2Parameters {
  /** Memory cost in KiB (`m=` of the PHC string). @default 19456 */
  memoryCost: number
  /** Passes (`t=`). @default 2 */
  timeCost: number
  /** Lanes (`p=`). @default 1 */
  parallelism: number
  /** Tag length in bytes. @default 32 */
  outputLen: number
}

/** True when `p` costs less than the OWASP floor (memory × passes below 19 MiB × 2). */
export function belowOwaspFloor (p: Argon2Parameters): boolean {
  return p.memoryCost * p.timeCost < DEFAULT_MEMORY_COST_KIB * DEFAULT_TIME_COST
}

export interface CredentialsOptions {
  /** argon2id parameters of new hashes; stored hashes with weaker ones are rehashed at login. */
  argon2?: Partial<Argon2Parameters>
  /** Minimum password length in Unicode code points after NFKC. @default 12 */
  minPasswordLength?: number
  /** Maximum password size in UTF-8 bytes, checked before hashing. @default 1024 */
  maxPasswordBytes?: number
  /** File of common/breached passwords, one per line. @default the shipped common-passwords.txt */
  commonPasswordsFile?: string
  /** Extra passwords to refuse (compared like the list: NFKC, case-insensitive). @default [] */
  extraCommonPasswords?: string[]
  /** Argon2 operations run at once. @default the number of CPU cores */
  hashConcurrency?: number
  /** Argon2 operations allowed to wait; beyond it a 503 SERVICE_UNAVAILABLE. @default 32 × hashConcurrency */
  hashQueueSize?: number
  /** Retry-After (seconds) of that 503. @default 1 */
  retryAfterSeconds?: number
  /** Lifetime of a cached successful Basic verification (ms); 0 disables the cache. @default 60000 */
  basicCacheTtlMs?: number
  /** Entries of the Basic cache (least recently used dropped first). @default 10000 */
  basicCacheMax?: number
  /** Lifetime of a cached API key verification (ms); 0 disables the cache. @default 60000 */
  apiKeyCacheTtlMs?: number
  /** Entries of the API key cache. @default 10000 */
  apiKeyCacheMax?: number
  /** `last_used_at` of an API key is written at most this often (ms). @default 60000 */
  apiKeyTouchIntervalMs?: number
  /** Recognisable prefix of API keys (`<prefix>_<lookup>_<secret>`), lower-case letters. @default 'gh' */
  apiKeyPrefix?: string
}

export interface ResolvedCredentialsOptions {
  argon2: Readonly<Argon2Parameters>
  minPasswordLength: number
  maxPasswordBytes: number
  commonPasswordsFile: string
  extraCommonPasswords: readonly string[]
  hashConcurrency: number
  hashQueueSize: number
  retryAfterSeconds: number
  basicCacheTtlMs: number
  basicCacheMax: number
  apiKeyCacheTtlMs: number
  apiKeyCacheMax: number
  apiKeyTouchIntervalMs: number
  apiKeyPrefix: string
}

/** A bad option of gatehouse-credentials (an OptionsError: `code`, `plugin`, `option`). */
export class CredentialsOptionsError extends OptionsError {
  override name = 'CredentialsOptionsError'
}

const check = optionChecks('gatehouse-credentials', CredentialsOptionsError)

export function resolveOptions (input: CredentialsOptions = {}): ResolvedCredentialsOptions {
  const a = input.argon2 ?? {}
  const argon2 = Object.freeze({
    memoryCost: check.integer('argon2.memoryCost', a.memoryCost, DEFAULT_MEMORY_COST_KIB, { min: 1024, max: 4 * 1024 * 1024 }),
    timeCost: check.integer('argon2.timeCost', a.timeCost, DEFAULT_TIME_COST, { min: 1, max: 100 }),
    parallelism: check.integer('argon2.parallelism', a.parallelism, DEFAULT_PARALLELISM, { min: 1, max: 255 }),
    outputLen: check.integer('argon2.outputLen', a.outputLen, DEFAULT_OUTPUT_LEN, { min: 16, max: 64 })
  })
  const minPasswordLength = check.integer('minPasswordLength', input.minPasswordLength, DEFAULT_MIN_PASSWORD_LENGTH, { min: 8, max: 256 })
  // 256 bytes hold 64 characters of any script, the least NIST SP 800-63B lets a verifier accept.
  const maxPasswordBytes = check.integer('maxPasswordBytes', input.maxPasswordBytes, DEFAULT_MAX_PASSWORD_BYTES, { min: 256, max: 4096 })
  const hashConcurrency = check.integer('hashConcurrency', input.hashConcurrency, Math.max(1, availableParallelism()), { min: 1, max: 256 })
  const extra = input.extraCommonPasswords ?? []
  if (!Array.isArray(extra) || extra.some((p) => typeof p !== 'string')) {
    check.fail('extraCommonPasswords', 'must be an array of strings')
  }
  const apiKeyPrefix = input.apiKeyPrefix ?? DEFAULT_API_KEY_PREFIX
  if (typeof apiKeyPrefix !== 'string' || !/^[a-z]{2,12}$/.test(apiKeyPrefix)) {
    check.fail('apiKeyPrefix', 'must be 2 to 12 lower-case letters')
  }
  return Object.freeze({
    argon2,
    minPasswordLength,
    maxPasswordBytes,
    commonPasswordsFile: input.commonPasswordsFile ?? DEFAULT_COMMON_PASSWORDS_FILE,
    extraCommonPasswords: Object.freeze([...extra]),
    hashConcurrency,
    hashQueueSize: check.integer('hashQueueSize', input.hashQueueSize, hashConcurrency * DEFAULT_HASH_QUEUE_FACTOR, { min: 0, max: 1_000_000 }),
    retryAfterSeconds: check.integer('retryAfterSeconds', input.retryAfterSeconds, 1, { min: 1, max: 3600 }),
    basicCacheTtlMs: check.integer('basicCacheTtlMs', input.basicCacheTtlMs, DEFAULT_BASIC_CACHE_TTL_MS, { min: 0, max: 3_600_000 }),
    basicCacheMax: check.integer('basicCacheMax', input.basicCacheMax, DEFAULT_BASIC_CACHE_MAX, { min: 1, max: 10_000_000 }),
    apiKeyCacheTtlMs: check.integer('apiKeyCacheTtlMs', input.apiKeyCacheTtlMs, DEFAULT_API_KEY_CACHE_TTL_MS, { min: 0, max: 3_600_000 }),
    apiKeyCacheMax: check.integer('apiKeyCacheMax', input.apiKeyCacheMax, DEFAULT_API_KEY_CACHE_MAX, { min: 1, max: 10_000_000 }),
    apiKeyTouchIntervalMs: check.integer('apiKeyTouchIntervalMs', input.apiKeyTouchIntervalMs, DEFAULT_API_KEY_TOUCH_INTERVAL_MS, { min: 0, max: 86_400_000 }),
    apiKeyPrefix
  })
}
