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
