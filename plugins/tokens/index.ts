// gatehouse-tokens: the signing key ring and Gatehouse's own access tokens (CONTRACT §6).
//
//   fastify.tokens.sign(user, { sid | clientId, scope })  -> { access_token, expires_in }
//   fastify.tokens.verify(token)                          -> AuthUser (signature, claims, then
//                                                            revocation and current user state)
//   fastify.tokens.jwks()                                  -> the public keys
//
// A verified token is remembered (keyed by the whole token string, never past its exp) so a
// repeated token costs a map lookup; what can change after issuance (revoked sessions, user
// status, roles, token version) is checked on every request from in-memory state that the bus
// keeps current. The service is createTokens (service.ts).
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { resolveOptions, type TokensOptions } from './options.ts'
import { createTokens, type Tokens } from './service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
  }
}

async function tokensPlugin (fastify: FastifyInstance, options: TokensOptions): Promise<void> {
  const tokens = await createTokens(resolveOptions(options), { store: fastify.store, bus: fastify.bus, log: fastify.log })
  fastify.decorate('tokens', tokens)
  fastify.addHook('onClose', async () => { tokens.close() })
}

/** Needs gatehouse-store and a `fastify.bus` (gatehouse-redis, with or without a Redis URL). */
export const tokens = fp(tokensPlugin, { name: 'gatehouse-tokens', fastify: '5.x', dependencies: ['gatehouse-store'], decorators: { fastify: ['bus'] } })
export default tokens

export { createTokens } from './service.ts'
export type { Tokens, SignableUser, SignOptions, SignedAccessToken, TokensStats, TokensDeps } from './service.ts'
export {
  resolveOptions, DEFAULT_AUDIENCE, DEFAULT_ACCESS_TOKEN_TTL, DEFAULT_VERIFIED_CACHE_SIZE,
  DEFAULT_USER_STATE_CACHE_SIZE, DEFAULT_USER_STATE_TTL, DEFAULT_KEYS_RELOAD_INTERVAL
} from './options.ts'
export type { TokensOptions, ResolvedTokensOptions } from './options.ts'
export { KEY_RELOAD_MIN_INTERVAL_MS, KEYS_CHANNEL } from './key-ring.ts'
export { userLoader } from './state.ts'
export type { UserState, ClientState } from './state.ts'
export type { AccessTokenClaims } from './jwt.ts'
export { listKeys, rotateKey, retireKey, KeyRingError, KEY_ALGORITHMS } from './keys.ts'
export type { PublicJwk, KeyInfo } from './keys.ts'
