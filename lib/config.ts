// The standalone server's configuration, read from the environment of CONTRACT §2.
// A bad value stops start-up with one line that names the variable (ConfigError).
import { isIP } from 'node:net'
import { parseDatabaseUrl, DatabaseUrlError } from '../plugins/store/database-url.ts'
import { loadAccountsConfig, type AccountsConfig } from './accounts-config.ts'

export type SigningAlgorithm = 'RS256' | 'ES256' | 'EdDSA'
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['RS256', 'ES256', 'EdDSA']

export interface GatehouseConfig extends AccountsConfig {
  port: number
  host: string
  databaseUrl: string
  redisUrl?: string
  /** `iss` of issued tokens and of the discovery document. */
  issuer: string
  /** `aud` of issued access tokens. */
  audience: string
  keysDir: string
  signingAlgorithm: SigningAlgorithm
  /** Seconds. */
  accessTokenTtl: number
  /** Seconds of idle lifetime of a refresh token (rotation slides it). */
  refreshTokenTtl: number
  /** Seconds: absolute cap of a refresh family, however often it is rotated. */
  refreshTokenMaxTtl: number
  /**
   * Seconds during which a rotated refresh token presented again returns the same, still unused
   * successor instead of revoking the family (a client that lost the response). 0 to 5.
   */
  refreshReuseGrace: number
  /** Raw entries of TRUSTED_ISSUERS; validated by the trusted-issuers plugin. */
  trustedIssuers: unknown[]
  adminEmail?: string
  adminPassword?: string
  trustProxy?: boolean | number | string[]
  logLevel: string
}

export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly variable: string
  constructor (variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.variable = variable
  }
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

function integer (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(raw)}`)
  const value = Number(raw.trim())
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

function parseTrustProxy (raw: string | undefined): GatehouseConfig['trustProxy'] {
  if (raw === undefined || raw.trim() === '') return undefined
  const value = raw.trim()
  if (value === 'true') return true
  if (value === 'false') return false
  if (/^\d+$/.test(value)) return Number(value)
  const entries = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const entry of entries) {
    const [address, prefix, ...rest] = entry.split('/')
    const family = isIP(address)
    const maxPrefix = family === 6 ? 128 : 32
    if (family === 0 || rest.length > 0 || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= maxPrefix))) {
      throw new ConfigError('TRUST_PROXY', `must be true, a hop count, or a comma-separated list of addresses/CIDRs; ${JSON.stringify(entry)} is none of these`)
    }
  }
  return entries
}

function isLoopbackHost (hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

/** Reads and validates the configuration. Throws ConfigError naming the bad variable. */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): GatehouseConfig {
  const port = integer(env, 'PORT', 3000, 0, 65535)
  const host = env.HOST?.trim() || '127.0.0.1'

  const databaseUrl = env.DATABASE_URL?.trim() || 'file:./data/gatehouse.db'
  try {
    parseDatabaseUrl(databaseUrl)
  } catch (err) {
    if (err instanceof DatabaseUrlError) throw new ConfigError('DATABASE_URL', err.message.replace(/^DATABASE_URL /, ''))
    throw err
  }

  const redisUrl = env.REDIS_URL?.trim() || undefined
  if (redisUrl !== undefined && !/^rediss?:\/\/[^/]/.test(redisUrl)) {
    throw new ConfigError('REDIS_URL', 'must be a redis:// or rediss:// URL')
  }

  const issuer = (env.AUTH_ISSUER?.trim() || `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '')
  let issuerUrl: URL
  try {
    issuerUrl = new URL(issuer)
  } catch {
    throw new ConfigError('AUTH_ISSUER', `must be an absolute URL, got ${JSON.stringify(issuer)}`)
  }
  if (issuerUrl.protocol !== 'https:' && !(issuerUrl.protocol === 'http:' && (isLoopbackHost(issuerUrl.hostname) || env.AUTH_ISSUER === undefined))) {
    throw new ConfigError('AUTH_ISSUER', 'must be an https:// URL (http:// only for a loopback host)')
  }

  const audience = env.AUTH_AUDIENCE?.trim() || 'gatehouse'
  const keysDir = env.AUTH_KEYS_DIR?.trim() || './data/keys'
  const signingAlgorithm = (env.AUTH_SIGNING_ALG?.trim() || 'RS256') as SigningAlgorithm
  if (!SIGNING_ALGORITHMS.includes(signingAlgorithm)) {
    throw new ConfigError('AUTH_SIGNING_ALG', `unknown algorithm ${JSON.stringify(signingAlgorithm)}: use one of ${SIGNING_ALGORITHMS.join(', ')}`)
  }

  const accessTokenTtl = integer(env, 'ACCESS_TOKEN_TTL', 900, 30, 86_400)
  const refreshTokenMaxTtl = integer(env, 'REFRESH_TOKEN_MAX_TTL', 30 * 86_400, 60, 365 * 86_400)
  const refreshTokenTtl = integer(env, 'REFRESH_TOKEN_TTL', 604_800, 60, 365 * 86_400)
  const refreshReuseGrace = integer(env, 'REFRESH_REUSE_GRACE', 0, 0, 5)
  if (refreshTokenTtl > refreshTokenMaxTtl) {
    throw new ConfigError('REFRESH_TOKEN_TTL', `(${refreshTokenTtl} s) must not exceed REFRESH_TOKEN_MAX_TTL (${refreshTokenMaxTtl} s)`)
  }

  let trustedIssuers: unknown[] = []
  const rawIssuers = env.TRUSTED_ISSUERS?.trim()
  if (rawIssuers !== undefined && rawIssuers !== '') {
    let parsed: unknown
    try {
      parsed = JSON.parse(rawIssuers)
    } catch (err) {
      throw new ConfigError('TRUSTED_ISSUERS', `is not valid JSON (${(err as Error).message})`)
    }
    if (!Array.isArray(parsed)) throw new ConfigError('TRUSTED_ISSUERS', 'must be a JSON array of issuer objects')
    trustedIssuers = parsed
  }

  const adminEmail = env.ADMIN_EMAIL?.trim() || undefined
  const adminPassword = env.ADMIN_PASSWORD || undefined
  if ((adminEmail === undefined) !== (adminPassword === undefined)) {
    throw new ConfigError(adminEmail === undefined ? 'ADMIN_EMAIL' : 'ADMIN_PASSWORD', 'ADMIN_EMAIL and ADMIN_PASSWORD must be set together')
  }

  const logLevel = env.LOG_LEVEL?.trim() || 'info'
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${[...LOG_LEVELS].join(', ')}`)

  const accounts = loadAccountsConfig(env, issuer, (name, fallback, min, max) => integer(env, name, fallback, min, max), (variable, message) => new ConfigError(variable, message))

  return Object.freeze({
    ...accounts,
    port,
    host,
    databaseUrl,
    redisUrl,
    issuer,
    audience,
    keysDir,
    signingAlgorithm,
    accessTokenTtl,
    refreshTokenTtl,
    refreshTokenMaxTtl,
    refreshReuseGrace,
    trustedIssuers,
    adminEmail,
    adminPassword,
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    logLevel
  })
}
