// The /auth route group (CONTRACT §3, §9, §10, §11): account routes (register, login, me, password,
// API keys), session routes (refresh, logout, logout-all, the sessions list), the mail-based flows
// (verification, email change, password reset), second factors (/auth/mfa/*) and passkeys
// (/auth/webauthn/*) and sign-in with external providers (/auth/providers/*). Register it with `{ prefix: '/auth' }`.
//
// Two rules hold for the whole group (CONTRACT §14):
//  - its endpoints take JSON only: a form or text/plain body (what an HTML form on another site can
//    send without a preflight) is answered 415 before any handler runs, so no login CSRF;
//  - no answer is stored by a cache (`Cache-Control: no-store`): they carry tokens, keys or account data.
import type { FastifyInstance } from 'fastify'
import accountRoutes from './account.ts'
import sessionRoutes from './session.ts'
import mfaRoutes from './mfa.ts'
import webauthnRoutes from './webauthn.ts'
import emailRoutes from './email.ts'
import sessionListRoutes from './sessions-list.ts'
import { createCookieSession } from './cookie-session.ts'
import providerRoutes from './providers.ts'

export default async function authRoutes (fastify: FastifyInstance): Promise<void> {
  for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data']) {
    if (fastify.hasContentTypeParser(type)) fastify.removeContentTypeParser(type)
  }
  fastify.addHook('onRequest', function noStore (_request, reply, done) {
    reply.header('cache-control', 'no-store')
    reply.header('pragma', 'no-cache')
    done()
  })
  // The refresh cookie is scoped to this group's path, wherever the group is mounted.
  fastify.decorate('cookieSession', createCookieSession(fastify, fastify.prefix === '' ? '/' : fastify.prefix))

  await fastify.register(accountRoutes)
  await fastify.register(sessionRoutes)
  if (fastify.hasDecorator('mfa')) {
    await fastify.register(mfaRoutes)
    await fastify.register(webauthnRoutes)
  }
  if (fastify.hasDecorator('accounts')) await fastify.register(emailRoutes)
  await fastify.register(sessionListRoutes)
  if (fastify.hasDecorator('providers')) await fastify.register(providerRoutes)
}
