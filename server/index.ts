// gatehouse/server: the standalone server as one plugin (`gatehouseServer`), its app factory and
// the configuration it reads from the environment (CONTRACT §2).
export { gatehouseServer, gatehouseServer as default, buildApp, registerGatehouse, serverOptions, VERSION } from './app.ts'
export type { AppOptions, GatehouseServerOptions } from './app.ts'
export { loadConfig, ConfigError, type GatehouseConfig } from './config.ts'
export { errorHandler, errorSchema } from '../lib/error-handler.ts'
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../lib/errors.ts'
export { OptionsError, isOptionsError } from '../lib/options.ts'
export { StartupError, isStartupError, STARTUP_ERROR_CODES, type StartupErrorCode } from '../lib/startup-error.ts'
export { MissingPeerError } from '../lib/peer.ts'
export { DatabaseUrlError, MigrationError } from '../plugins/store/index.ts'
