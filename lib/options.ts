// Errors in options, raised once at registration (or start-up), never during a request: they
// carry a stable code and name the plugin and the option at fault, so a caller can switch on
// them without reading the message.

export class OptionsError extends Error {
  override name = 'OptionsError'
  readonly code: string = 'GATEHOUSE_INVALID_OPTION'
  /** The plugin whose options are wrong, e.g. `gatehouse-rate-limit`. */
  readonly plugin: string
  /** The option at fault, as a path from the options object (`classes.login.max`). */
  readonly option: string
  constructor (plugin: string, option: string, message: string) {
    super(message)
    this.plugin = plugin
    this.option = option
  }
}

/**
 * An environment variable of the standalone server with a bad value (or a plugin option that
 * comes straight from one, such as TRUSTED_ISSUERS). The message starts with the variable.
 */
export class ConfigError extends OptionsError {
  override name = 'ConfigError'
  override readonly code: string = 'GATEHOUSE_INVALID_CONFIG'
  readonly variable: string
  constructor (variable: string, message: string, plugin = 'gatehouse-server') {
    super(plugin, variable, `${variable}: ${message}`)
    this.variable = variable
  }
}

export function isOptionsError (err: unknown): err is OptionsError {
  return err instanceof OptionsError
}

export type OptionsErrorClass = new (plugin: string, option: string, message: string) => OptionsError

export interface IntegerRange {
  /** @default 0 */
  min?: number
  /** @default Number.MAX_SAFE_INTEGER */
  max?: number
}

/**
 * The checks every plugin's resolveOptions uses, bound to the plugin's name and error class.
 * Each throws the coded OptionsError naming the plugin and the option, with a message that
 * starts with both; `undefined` gives the fallback.
 */
export function optionChecks (plugin: string, ErrorClass: OptionsErrorClass = OptionsError) {
  function fail (option: string, message: string): never {
    throw new ErrorClass(plugin, option, `${plugin}: ${option} ${message}`)
  }

  return {
    fail,

    /** A safe integer within the range. */
    integer (option: string, value: unknown, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER }: IntegerRange = {}): number {
      if (value === undefined) return fallback
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
        fail(option, `${max === Number.MAX_SAFE_INTEGER ? `must be a whole number >= ${min}` : `must be a whole number between ${min} and ${max}`}, got ${String(value)}`)
      }
      return value
    },

    /** One of the allowed strings. */
    oneOf<T extends string> (option: string, value: unknown, allowed: readonly T[], fallback: T): T {
      if (value === undefined) return fallback
      if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) fail(option, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`)
      return value as T
    },

    boolean (option: string, value: unknown, fallback: boolean): boolean {
      if (value === undefined) return fallback
      if (typeof value !== 'boolean') fail(option, 'must be true or false')
      return value
    },

    /** A non-empty string (required when there is no fallback). */
    string (option: string, value: unknown, fallback?: string): string {
      if (value === undefined && fallback !== undefined) return fallback
      if (typeof value !== 'string' || value === '') fail(option, value === undefined ? 'is required' : 'must be a non-empty string')
      return value
    }
  }
}
