// gatehouse/client: a dependency-free client for a Gatehouse server, for Node 20+ and browsers.
// See docs/client.md.
export { createClient, createClient as default, RENEWABLE_CODES, type GatehouseClient, type ClientMode } from './client.ts'
export type { ClientOptions, Credentials, FetchFunction, MfaPrompt, MfaAnswer } from './options.ts'
export { isLoopbackHost, DEFAULT_REFRESH_SKEW_SECONDS, DEFAULT_REFRESH_JITTER_SECONDS } from './options.ts'
export type { ClientEvents, ClientEventName, Listener } from './events.ts'
export {
  GatehouseClientError, GatehouseHttpError, GatehouseNetworkError, GatehouseSessionExpiredError,
  GatehouseConfigError, isGatehouseClientError, CLIENT_CODES,
  type ClientErrorKind, type ClientCode
} from './errors.ts'
export { memoryStorage, webStorage, MemoryTokenStorage, type TokenStorage, type StoredTokens, type WebStorageLike } from './storage.ts'
export type { ClientLogger, LogInfo } from './redact.ts'
export type { GatehouseUser, GatehouseOrgMembership } from './types.ts'
export { decodeJwtPayload } from './jwt.ts'
