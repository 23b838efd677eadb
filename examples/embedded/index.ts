// The whole standalone Gatehouse server mounted inside another Fastify app under /identity,
// next to the host app's own routes. gatehouseServer is one encapsulated plugin: its error
// handler, 404 handler, decorators and hooks stay under the prefix; the host keeps its own.
//
// AUTH_ISSUER includes the prefix, so the discovery document names the mounted URLs
// (<issuer>/.well-known/jwks.json is served at /identity/.well-known/jwks.json).
//
// The host's own API verifies Gatehouse access tokens like any resource server: with the
// trusted-issuers plugin pointed at the embedded JWKS (signature, iss, aud, exp, typ). Those
// checks need no database, but a token revoked by logout keeps working on the host's routes
// until it expires (ACCESS_TOKEN_TTL, 15 minutes by default); routes under /identity check
// revocation at once.
//
//   PORT=4000 npx tsx examples/embedded/index.ts
//   curl -X POST localhost:4000/identity/auth/register -H 'content-type: application/json' \
//     -d '{"email":"ada@example.com","password":"correct horse battery staple"}'
//   curl localhost:4000/api/hello -H "authorization: Bearer <access_token>"
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { gatehouseServer, type AppOptions } from '../../server/app.ts'
import { loadConfig } from '../../server/config.ts'
import { trustedIssuers } from '../../plugins/trusted-issuers/index.ts'
import { authenticate } from '../../plugins/authenticate/index.ts'

export const PREFIX = '/identity'

export interface EmbeddedOptions {
  /** Public origin of the host app, e.g. 'http://127.0.0.1:4000'; the issuer is origin + PREFIX. */
  origin: string
  /** Environment of the embedded server (CONTRACT §2: DATABASE_URL, AUTH_KEYS_DIR, ...). */
  env?: Record<string, string | undefined>
  /** Overrides of the embedded server's plugins (same as buildApp's options). */
  gatehouse?: Omit<AppOptions, 'logger' | 'onRoute'>
  logger?: FastifyServerOptions['logger']
}

export async function buildHost (options: EmbeddedOptions): Promise<FastifyInstance> {
  const issuer = `${options.origin}${PREFIX}`
  const config = loadConfig({ ...options.env, AUTH_ISSUER: issuer })
  // Gatehouse's routes are compiled with the host's server options: use the ones the
  // standalone server uses (no type coercion or silent removal in validation, 64 KiB bodies,
  // room for refresh tokens in URL params, TRUST_PROXY).
  const app = Fastify({
    logger: options.logger ?? false,
    trustProxy: (config.trustProxy ?? false) as FastifyServerOptions['trustProxy'],
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } }
  })

  // The host's own error handler and 404 handler; Gatehouse's apply only under /identity.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500
    if (status >= 500) request.log.error({ err: error }, 'host route failed')
    const headers = (error as { headers?: Record<string, string> }).headers
    if (headers !== undefined) reply.headers(headers)
    reply.code(status).send({ host: true, status, code: error.code, message: status >= 500 ? 'Something went wrong' : error.message })
  })

  await app.register(gatehouseServer, { prefix: PREFIX, config, ...options.gatehouse })

  app.get('/', async () => ({ app: 'host', identity: `${issuer}/.well-known/openid-configuration` }))
  app.get('/boom', async () => { throw new Error('host failure') })

  // The host's API: accepts the embedded server's access tokens, verified against its JWKS.
  await app.register(async (api) => {
    await api.register(trustedIssuers, {
      issuers: [{
        issuer,
        jwksUri: `${issuer}/.well-known/jwks.json`,
        audiences: [config.audience],
        algorithms: [config.signingAlgorithm],
        allowedTypes: ['at+jwt'],
        rolesClaim: 'roles'
      }]
    })
    await api.register(authenticate, { schemes: ['bearer'] })
    api.addHook('onRequest', api.authenticate)
    api.get('/hello', async (request) => ({ hello: request.user!.sub, roles: request.user!.roles }))
  }, { prefix: '/api' })

  return app
}

if (process.argv[1]?.endsWith('examples/embedded/index.ts')) {
  const host = process.env.HOST ?? '127.0.0.1'
  const port = Number(process.env.PORT ?? 4000)
  const dataDir = mkdtempSync(join(tmpdir(), 'embedded-'))
  try {
    const app = await buildHost({
      origin: process.env.PUBLIC_ORIGIN ?? `http://${host}:${port}`,
      env: {
        ...process.env,
        DATABASE_URL: process.env.DATABASE_URL ?? `file:${join(dataDir, 'gatehouse.db')}`,
        AUTH_KEYS_DIR: process.env.AUTH_KEYS_DIR ?? join(dataDir, 'keys')
      },
      logger: { level: process.env.LOG_LEVEL ?? 'info' }
    })
    const shutdown = async (): Promise<void> => {
      await app.close()
      process.exit(0)
    }
    process.once('SIGTERM', () => { void shutdown() })
    process.once('SIGINT', () => { void shutdown() })
    await app.listen({ port, host })
  } catch (err) {
    process.stderr.write(`embedded: ${(err as Error).message}\n`)
    process.exit(1)
  }
}
