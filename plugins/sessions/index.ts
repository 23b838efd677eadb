// gatehouse-sessions: rotating refresh tokens and session revocation (fastify.sessions).
// The logic lives in service.ts; this entry resolves options and wires the collaborators.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { resolveOptions, type SessionsOptions } from './options.ts'
import { createSessionService, type AuditSink, type SessionService, type TokenIssuer } from './service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionService
  }
}

async function sessionsPlugin (fastify: FastifyInstance, input: SessionsOptions): Promise<void> {
  const options = resolveOptions(input)
  const tokens = (fastify as unknown as { tokens: TokenIssuer }).tokens
  const audit = fastify.hasDecorator('audit') ? (fastify as unknown as { audit: AuditSink }).audit : undefined
  fastify.decorate('sessions', createSessionService({ prisma: fastify.store.prisma, provider: fastify.store.provider, sqlite: fastify.store.sqlite, postgres: fastify.store.postgres, tokens, audit, log: fastify.log, options }))
}

export const sessions = fp(sessionsPlugin, {
  name: 'gatehouse-sessions',
  fastify: '5.x',
  dependencies: ['gatehouse-store', 'gatehouse-tokens']
})
export default sessions
export { resolveOptions, type SessionsOptions } from './options.ts'
export { createSessionService, tokenResponseSchema, type SessionService, type TokenIssuer, type TokenResponse } from './service.ts'
export { createOAuthClient, findOAuthClient, verifyClientSecret, GRANT_TYPES, type GrantType } from './clients.ts'
export { DEFAULT_CLIENT_ID, REVOCATION_MARGIN_SECONDS, SessionsOptionsError } from './options.ts'
export { MissingPeerError } from '../../lib/peer.ts'
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
