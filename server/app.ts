// The standalone Gatehouse server, composed from the plugins (shared services, wrapped in
// fastify-plugin) and the route groups (encapsulated):
//  - gatehouseServer: the whole server as one encapsulated plugin, to mount in any Fastify app,
//    under a prefix if wanted (examples/embedded);
//  - buildApp(config): a Fastify instance with the server options, the OpenAPI UI at /docs and
//    every plugin and route registered at its root (registerGatehouse), decorators included. Tests build it with `inject`; the top-level server.ts adds listen and signals.
import Fastify, { type FastifyInstance, type FastifyServerOptions, type RouteOptions } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import formbody from '@fastify/formbody'
import { parse as parseForm } from 'node:querystring'
import { assertSafeInput } from '../lib/input.ts'
import type { GatehouseConfig } from './config.ts'
import { loggerOptions } from './logger.ts'
import { errorHandler, errorSchema } from '../lib/error-handler.ts'
import { gatehouseError } from '../lib/errors.ts'
import { store, type StoreOptions } from '../plugins/store/index.ts'
import { redis } from '../plugins/redis/index.ts'
import { audit } from '../plugins/audit/index.ts'
import healthRoutes from '../routes/health.ts'
import { credentials, type CredentialsOptions } from '../plugins/credentials/index.ts'
import { tokens, type TokensOptions } from '../plugins/tokens/index.ts'
import wellKnownRoutes from '../routes/well-known/index.ts'
import { sessions, type SessionsOptions } from '../plugins/sessions/index.ts'
import oauthRoutes from '../routes/oauth/index.ts'
import { trustedIssuers, type TrustedIssuerInput, type TrustedIssuersOptions } from '../plugins/trusted-issuers/index.ts'
import { rateLimit, type RateLimitPluginOptions } from '../plugins/rate-limit/index.ts'
import { rbac, type RbacOptions } from '../plugins/rbac/index.ts'
import { bootstrapAdmin } from './bootstrap-admin.ts'
import { users } from '../plugins/users/index.ts'
import { orgs, type OrgsOptions } from '../plugins/orgs/index.ts'
import { authenticate, type AuthenticateOptions } from '../plugins/authenticate/index.ts'
import { mfa, type MfaOptions } from '../plugins/mfa/index.ts'
import { accountsOptionsFromConfig, browserOptionsFromConfig, mailerOptionsFromConfig, mfaOptionsFromConfig, orgsOptionsFromConfig, providersOptionsFromConfig, sessionsOptionsFromConfig, tokensOptionsFromConfig } from './plugin-options.ts'
import authRoutes from '../routes/auth/index.ts'
import orgRoutes from '../routes/orgs/index.ts'
import adminRoutes from '../routes/admin/index.ts'
import { browser } from '../plugins/browser/index.ts'
import { mailer, type MailerOptions } from '../plugins/mailer/index.ts'
import { accounts } from '../plugins/accounts/index.ts'
import { providers, type ProvidersOptions } from '../plugins/providers/index.ts'

export interface AppOptions {
  /** gatehouse-tokens overrides (cache sizes, state TTL, key reload interval). */
  tokens?: Partial<TokensOptions>
  /** gatehouse-sessions overrides (reuse grace window, clock); lifetimes come from the config. */
  sessions?: SessionsOptions
  /** gatehouse-authenticate options (accepted schemes). */
  authenticate?: AuthenticateOptions
  /** gatehouse-credentials options (argon2 parameters, password policy, caches). */
  credentials?: CredentialsOptions
  /** Fastify's logger option; defaults to pino at config.logLevel with secrets redacted. */
  logger?: FastifyServerOptions['logger']
  /** Store overrides (e.g. an existing Prisma client). */
  store?: Partial<StoreOptions>
  /** Trusted-issuers limits (timeouts, cooldown, caps); the allowlist itself comes from config.trustedIssuers. */
  trustedIssuers?: Omit<TrustedIssuersOptions, 'issuers'>
  /** Called for every route as it is registered (used to check the OpenAPI document is complete). */
  onRoute?: (route: RouteOptions) => void
  /** gatehouse-rate-limit overrides (e.g. higher limits in tests); the Redis client comes from gatehouse-redis. */
  rateLimit?: RateLimitPluginOptions
  /** RBAC hierarchies, claims and membership resolution (plugins/rbac). */
  rbac?: RbacOptions
  /** gatehouse-mfa overrides (clock, attempts, lifetimes); keys and WebAuthn settings come from the config. */
  mfa?: Partial<MfaOptions>
  /** gatehouse-mailer overrides (templates, retries, a transport of your own); SMTP and addresses come from the config. */
  mailer?: Partial<MailerOptions>
  /** gatehouse-orgs overrides (clock); the invitation lifetime and APP_URL come from the config. */
  orgs?: Partial<OrgsOptions>
  /** gatehouse-providers overrides (lifetimes, timeout, clock); the providers and redirect URIs come from the config. */
  providers?: Partial<ProvidersOptions>
}

export const VERSION = '0.1.0'

export interface GatehouseServerOptions extends Omit<AppOptions, 'logger' | 'onRoute'> {
  config: GatehouseConfig
}

/**
 * Registers every Gatehouse service and route group, with Gatehouse's error handler, into `app`
 * itself: the decorators (`app.store`, `app.tokens`, `app.authenticate`, ...) land on `app`.
 */
export async function registerGatehouse (app: FastifyInstance, { config, ...options }: GatehouseServerOptions): Promise<void> {
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((request, reply) => {
    const err = gatehouseError('NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`)
    reply.code(404).send({ statusCode: 404, code: err.code, error: 'Not Found', message: err.message })
  })
  if (app.getSchema(errorSchema.$id) === undefined) app.addSchema(errorSchema)
  // Bodies holding a NUL character or an unpaired surrogate are refused with a 400 as they are
  // parsed, before any route, service or database sees them (CONTRACT §14).
  const json = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    json(request, body as string, (err: Error | null, value?: unknown) => {
      if (err !== null) return done(err)
      try {
        done(null, assertSafeInput(value))
      } catch (unsafe) {
        done(unsafe as Error)
      }
    })
  })
  await app.register(formbody, { parser: (text: string) => assertSafeInput({ ...parseForm(text) }) })
  await app.register(browser, browserOptionsFromConfig(config))

  await app.register(store, { databaseUrl: config.databaseUrl, ...options.store })
  await app.register(redis, { url: config.redisUrl })
  if (app.store.provider === 'postgresql' && config.redisUrl === undefined) {
    // PostgreSQL usually means several instances; without Redis they would not hear each other.
    app.log.warn('PostgreSQL without REDIS_URL: revocations (logout, password change, disabled accounts), cached credentials and rate limits are not shared between instances. Run a single instance, or set REDIS_URL (docs/deployment.md)')
  }
  await app.register(audit)
  await app.register(rateLimit, { ...options.rateLimit })
  await app.register(credentials, options.credentials ?? {})
  await app.register(tokens, { ...tokensOptionsFromConfig(config), ...options.tokens })
  await app.register(sessions, { ...sessionsOptionsFromConfig(config), ...options.sessions })
  await app.register(trustedIssuers, { ...options.trustedIssuers, issuers: config.trustedIssuers as TrustedIssuerInput[] })
  await app.register(authenticate, options.authenticate ?? {})
  await app.register(rbac, options.rbac ?? {})
  await app.register(users)
  await app.register(bootstrapAdmin, { email: config.adminEmail, password: config.adminPassword })
  await app.register(mfa, { ...mfaOptionsFromConfig(config), ...options.mfa })
  await app.register(mailer, { ...mailerOptionsFromConfig(config), ...options.mailer })
  await app.register(accounts, accountsOptionsFromConfig(config))
  await app.register(orgs, { ...orgsOptionsFromConfig(config), ...options.orgs })
  await app.register(providers, { ...providersOptionsFromConfig(config), ...options.providers })

  await app.register(healthRoutes)
  await app.register(authRoutes, { prefix: '/auth' })
  await app.register(oauthRoutes, { prefix: '/oauth' })
  await app.register(orgRoutes, { prefix: '/orgs' })
  await app.register(adminRoutes, { prefix: '/admin', requireMfa: config.adminRequireMfa })
  await app.register(wellKnownRoutes)
}

/**
 * The whole server as one encapsulated plugin: `host.register(gatehouseServer, { prefix, config })`
 * mounts it inside another app; its decorators, error handler and 404 stay inside its scope.
 */
export async function gatehouseServer (app: FastifyInstance, options: GatehouseServerOptions): Promise<void> {
  await registerGatehouse(app, options)
}

/**
 * The Fastify server options Gatehouse's routes are written for: strict validation (no type
 * coercion, no silent removal of properties), a 64 KiB body limit, TRUST_PROXY. A host app that
 * embeds gatehouseServer should create its instance with them too.
 */
export function serverOptions (config: GatehouseConfig, logger?: FastifyServerOptions['logger']): FastifyServerOptions {
  return {
    logger: logger ?? loggerOptions(config.logLevel),
    trustProxy: (config.trustProxy ?? false) as FastifyServerOptions['trustProxy'],
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    // Start-up connects to the database, loads or makes signing keys and may wait for Redis: on a
    // loaded machine that can pass avvio's 10 s default, which would fail a healthy start.
    pluginTimeout: 60_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } }
  }
}

export async function buildApp (config: GatehouseConfig, options: AppOptions = {}): Promise<FastifyInstance> {
  const { logger, onRoute, ...rest } = options
  const app: FastifyInstance = Fastify(serverOptions(config, logger))

  if (onRoute !== undefined) app.addHook('onRoute', onRoute)
  // The error body schema first, so the OpenAPI document can resolve its references.
  app.addSchema(errorSchema)

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Gatehouse',
        description: 'Authentication server: accounts, tokens, organizations, admin and audit.',
        version: VERSION
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          basicAuth: { type: 'http', scheme: 'basic' },
          apiKey: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'The value `ApiKey <key>`' }
        }
      },
      tags: [
        { name: 'auth', description: 'Accounts, sessions and API keys' },
        { name: 'oauth', description: 'OAuth 2.0 endpoints (RFC 6749, 7009, 7662)' },
        { name: 'discovery', description: 'JWKS and OpenID discovery' },
        { name: 'orgs', description: 'Organizations and memberships' },
        { name: 'admin', description: 'Administration (global admin role)' },
        { name: 'health', description: 'Liveness and readiness probes' }
      ]
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await registerGatehouse(app, { config, ...rest })
  return app
}
