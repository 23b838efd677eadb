// A resource server that accepts ONLY tokens from external identity providers: no database,
// no signing keys of its own. gatehouse-trusted-issuers verifies the tokens, gatehouse-
// authenticate turns the Authorization header into `request.user`, gatehouse-rbac guards a route.
//
//   TRUSTED_ISSUERS='[{"issuer":"https://YOUR_DOMAIN.auth0.com/","discovery":true,"audiences":["https://api.example.com"]}]' \
//   PORT=4000 npx tsx examples/resource-server/index.ts
//   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:4000/api/me
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { trustedIssuers, type TrustedIssuerInput, type TrustedIssuersOptions } from 'gatehouse/trusted-issuers'
import { authenticate, errorHandler } from 'gatehouse/authenticate'
import { rbac } from 'gatehouse/rbac'

export interface ResourceServerOptions {
  /** The allowlist, same shape as TRUSTED_ISSUERS. */
  issuers: readonly TrustedIssuerInput[]
  /** JWKS fetch limits (timeouts, cooldown, caps). */
  limits?: Omit<TrustedIssuersOptions, 'issuers'>
  /** Claim holding the roles RBAC checks (the same claim as the issuers' rolesClaim). @default 'roles' */
  rolesClaim?: string
  logger?: FastifyServerOptions['logger']
}

export async function buildResourceServer (options: ResourceServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  app.setErrorHandler(errorHandler)
  await app.register(trustedIssuers, { ...options.limits, issuers: options.issuers })
  await app.register(authenticate)
  await app.register(rbac, { roles: ['admin', 'reader'], rolesClaim: options.rolesClaim ?? 'roles', orgsClaim: null })

  app.get('/health', async () => ({ status: 'ok' }))

  // Everything under /api needs a valid external token (plugin scoping, not URL matching).
  await app.register(async (api) => {
    api.addHook('onRequest', api.authenticate)
    api.get('/me', async (request) => {
      const user = request.user!
      return { sub: user.sub, iss: user.iss, roles: user.roles, external: user.external }
    })
    api.get('/reports', { preHandler: api.requireRole('reader') }, async () => ({ reports: ['q1', 'q2'] }))
    api.get('/stats', { preHandler: api.requireRole('admin') }, async () => api.trustedIssuers.stats())
  }, { prefix: '/api' })
  return app
}

if (process.argv[1]?.endsWith('examples/resource-server/index.ts')) {
  let issuers: TrustedIssuerInput[]
  try {
    issuers = JSON.parse(process.env.TRUSTED_ISSUERS ?? '[]') as TrustedIssuerInput[]
  } catch (err) {
    process.stderr.write(`resource-server: TRUSTED_ISSUERS is not valid JSON (${(err as Error).message})\n`)
    process.exit(1)
  }
  buildResourceServer({ issuers, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
    .then((app) => app.listen({ port: Number(process.env.PORT ?? 4000), host: process.env.HOST ?? '127.0.0.1' }))
    .catch((err: Error) => {
      process.stderr.write(`resource-server: ${err.message}\n`)
      process.exit(1)
    })
}
