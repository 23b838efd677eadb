// Failures that stop a plugin (and so the server) from starting: each carries a stable code that
// callers switch on (server.ts turns them into one line), never a message to match.

export const STARTUP_ERROR_CODES = [
  /** The database cannot be reached or used (connection refused, unknown database, bad credentials). */
  'STORE_UNREACHABLE',
  /** REDIS_URL is set but Redis cannot be reached. */
  'REDIS_UNREACHABLE',
  /** The keys folder holds no usable signing key (and none may be generated). */
  'KEYS_MISSING',
  /** The database schema is behind or ahead of the migrations, or a migration failed. */
  'MIGRATION_FAILED'
] as const
export type StartupErrorCode = typeof STARTUP_ERROR_CODES[number]

export class StartupError extends Error {
  override name = 'StartupError'
  readonly code: StartupErrorCode
  constructor (code: StartupErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

export function isStartupError (err: unknown, code?: StartupErrorCode): err is StartupError {
  return err instanceof StartupError && (code === undefined || err.code === code)
}
