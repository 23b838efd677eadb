// The /auth route group (CONTRACT §3): account routes (register, login, me, password, API keys)
// and session routes (refresh, logout, logout-all). Register it with `{ prefix: '/auth' }`.
import type { FastifyInstance } from 'fastify'
import accountRoutes from './account.ts'
import sessionRoutes from './session.ts'

export default async function authRoutes (fastify: FastifyInstance): Promise<void> {
  await fastify.register(accountRoutes)
  await fastify.register(sessionRoutes)
}
