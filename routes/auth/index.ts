// The /auth route group (CONTRACT §3, §11): account routes (register, login, me, password, API
// keys), session routes (refresh, logout, logout-all), second factors (/auth/mfa/*) and passkeys
// (/auth/webauthn/*). Register it with `{ prefix: '/auth' }`.
import type { FastifyInstance } from 'fastify'
import accountRoutes from './account.ts'
import sessionRoutes from './session.ts'
import mfaRoutes from './mfa.ts'
import webauthnRoutes from './webauthn.ts'

export default async function authRoutes (fastify: FastifyInstance): Promise<void> {
  await fastify.register(accountRoutes)
  await fastify.register(sessionRoutes)
  if (fastify.hasDecorator('mfa')) {
    await fastify.register(mfaRoutes)
    await fastify.register(webauthnRoutes)
  }
}
