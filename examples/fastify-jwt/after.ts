// The same resource server on gatehouse/trusted-issuers + gatehouse/authenticate: Gatehouse is
// one allowlisted issuer, its JWKS fetched with timeouts, a cooldown and a negative cache, and a
// failed token answers a coded 401 with its WWW-Authenticate challenge. See docs/fastify-jwt.md.
//
//   GATEHOUSE_ISSUER=http://127.0.0.1:3000 PORT=4000 npx tsx examples/fastify-jwt/after.ts
import Fastify, { type FastifyInstance } from 'fastify'
import { trustedIssuers } from 'gatehouse/trusted-issuers'
import { authenticate, errorHandler } from 'gatehouse/authenticate'
import { rbac } from 'gatehouse/rbac'
import type { ResourceServerOptions } from './before.ts'

export async function buildWithGatehouse (options: ResourceServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  app.setErrorHandler(errorHandler)
  await app.register(trustedIssuers, {
    issuers: [{
      issuer: options.issuer,
      jwksUri: `${options.issuer}/.well-known/jwks.json`,
      audiences: [options.audience ?? 'gatehouse'],
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      allowedTypes: ['at+jwt'],
      rolesClaim: 'roles'
    }]
  })
  await app.register(authenticate, { schemes: ['bearer'] })
  await app.register(rbac)

  app.get('/me', { onRequest: app.authenticate }, async (request) => {
    const user = request.user!
    return { sub: user.sub, roles: user.roles }
  })
  app.get('/admin', { onRequest: app.authenticate, preHandler: app.requireRole('admin') }, async () => ({ admin: true }))
  return app
}

if (process.argv[1]?.endsWith('examples/fastify-jwt/after.ts')) {
  const app = await buildWithGatehouse({ issuer: process.env.GATEHOUSE_ISSUER ?? 'http://127.0.0.1:3000' })
  await app.listen({ port: Number(process.env.PORT ?? 4000), host: '127.0.0.1' })
}
