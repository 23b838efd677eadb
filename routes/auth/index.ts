// The /auth route group (CONTRACT §3, §9, §10): account routes (register, login, me, password, API
// keys), session routes (refresh, logout, logout-all, the sessions list) and the mail-based flows
// (verification, email change, password reset). Register it with `{ prefix: '/auth' }`.
// Every body here is JSON: form and text posts answer 415 (CONTRACT §14), which also keeps the
// simple cross-site requests of classic CSRF out. Every answer is `Cache-Control: no-store`.
import type { FastifyInstance } from 'fastify'
import accountRoutes from './account.ts'
import sessionRoutes from './session.ts'
import emailRoutes from './email.ts'
import sessionListRoutes from './sessions-list.ts'
import { createCookieSession } from './cookie-session.ts'

export default async function authRoutes (fastify: FastifyInstance): Promise<void> {
  for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data']) {
    if (fastify.hasContentTypeParser(type)) fastify.removeContentTypeParser(type)
  }
  fastify.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
  })
  // The refresh cookie is scoped to this group's path, wherever the group is mounted.
  fastify.decorate('cookieSession', createCookieSession(fastify, fastify.prefix === '' ? '/' : fastify.prefix))

  await fastify.register(accountRoutes)
  await fastify.register(sessionRoutes)
  if (fastify.hasDecorator('accounts')) await fastify.register(emailRoutes)
  await fastify.register(sessionListRoutes)
}
