// The public types of the package, as an app sees them through its subpaths: decorators,
// options and request.user. `npm run test:types` (tstyche) fails when one of them loses its type.
import Fastify, { type preHandlerAsyncHookHandler } from 'fastify'
import { describe, expect, test } from 'tstyche'
import { trustedIssuers, type TrustedIssuerInput, type TrustedIssuers, type TrustedIssuersOptions } from 'gatehouse/trusted-issuers'
import { authenticate, errorHandler, type AuthenticateHook, type AuthenticateOptions, type AuthUser } from 'gatehouse/authenticate'
import { rbac, PERMISSION_PRESETS, ROLE_PRESETS, RbacConfigError, type Rbac, type RbacOptions } from 'gatehouse/rbac'
import { store, type Store, type StoreOptions } from 'gatehouse/store'
import { credentials, type Credentials, type CredentialsOptions } from 'gatehouse/credentials'
import { tokens, type Tokens, type TokensOptions } from 'gatehouse/tokens'
import { sessions, type SessionService, type SessionsOptions } from 'gatehouse/sessions'
import { rateLimit, type RateLimitPluginOptions } from 'gatehouse/rate-limit'
import { audit, type Audit } from 'gatehouse/audit'
import { users, type Users, type UsersOptions } from 'gatehouse/users'
import { orgs, type Orgs } from 'gatehouse/orgs'
import { providers, type Providers, type ProvidersOptions } from 'gatehouse/providers'
import { gatehouseServer, type GatehouseServerOptions } from 'gatehouse/server'
import { createClient, type GatehouseClient } from 'gatehouse/client'
import * as root from 'gatehouse'
import trustedIssuersDefault from 'gatehouse/trusted-issuers'
import authenticateDefault from 'gatehouse/authenticate'
import rbacDefault from 'gatehouse/rbac'
import storeDefault from 'gatehouse/store'
import credentialsDefault from 'gatehouse/credentials'
import tokensDefault from 'gatehouse/tokens'
import sessionsDefault from 'gatehouse/sessions'
import rateLimitDefault from 'gatehouse/rate-limit'
import auditDefault from 'gatehouse/audit'
import usersDefault from 'gatehouse/users'
import orgsDefault from 'gatehouse/orgs'
import providersDefault from 'gatehouse/providers'
import serverDefault from 'gatehouse/server'
import clientDefault from 'gatehouse/client'

const app = Fastify()

describe('decorators', () => {
  test('each plugin types what it decorates', () => {
    expect(app.trustedIssuers).type.toBe<TrustedIssuers>()
    expect(app.authenticate).type.toBe<AuthenticateHook>()
    expect(app.createAuthenticate).type.toBe<(options?: AuthenticateOptions) => AuthenticateHook>()
    expect(app.rbac).type.toBe<Rbac>()
    expect(app.requireRole).type.toBe<(...roles: string[]) => preHandlerAsyncHookHandler>()
    expect(app.requirePermission).type.toBe<(...permissions: string[]) => preHandlerAsyncHookHandler>()
    expect(app.store).type.toBe<Store>()
    expect(app.credentials).type.toBe<Credentials>()
    expect(app.tokens).type.toBe<Tokens>()
    expect(app.providers).type.toBe<Providers>()
    expect<ProvidersOptions['callbackBase']>().type.toBe<string>()
    expect(app.sessions).type.toBe<SessionService>()
    expect(app.audit).type.toBe<Audit>()
    expect(app.users).type.toBe<Users>()
    expect(app.orgs).type.toBe<Orgs>()
  })

  test('request.user is the authenticated principal, or null', () => {
    app.get('/me', { onRequest: app.authenticate }, async (request) => {
      expect(request.user).type.toBe<AuthUser | null>()
      expect(request.user!.roles).type.toBe<string[]>()
      expect(request.user!.external).type.toBe<boolean>()
      return {}
    })
  })

  test('a route guard goes in preHandler, the hook in onRequest', () => {
    expect(app.get).type.toBeCallableWith('/x', { onRequest: app.authenticate, preHandler: app.requireRole('admin') }, async () => ({}))
    expect(app.get).type.toBeCallableWith('/x', { config: { rbac: { role: 'admin' } } }, async () => ({}))
    expect(app.get).type.toBeCallableWith('/x', { config: { rateLimit: { max: 5, timeWindow: 1000 } } }, async () => ({}))
    expect(app.get).type.not.toBeCallableWith('/x', { config: { rbac: { role: 1 } } }, async () => ({}))
  })
})

describe('options', () => {
  test('the trusted issuers allowlist is typed', () => {
    expect<TrustedIssuerInput>().type.toBeAssignableFrom({ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks', audiences: ['api'] })
    expect<TrustedIssuerInput>().type.not.toBeAssignableFrom({ issuer: 'https://idp.example', jwks_uri: 'https://idp.example/jwks', audiences: ['api'] })
    expect<TrustedIssuerInput>().type.not.toBeAssignableFrom({ issuer: 'https://idp.example', jwksUri: 'https://idp.example/jwks' })
    expect<TrustedIssuersOptions['issuers']>().type.toBe<readonly TrustedIssuerInput[] | undefined>()
  })

  test('register checks each plugin\'s options', () => {
    expect(app.register).type.toBeCallableWith(trustedIssuers, { issuers: [{ issuer: 'https://idp.example', discovery: true, audiences: ['api'] }] })
    expect(app.register).type.not.toBeCallableWith(trustedIssuers, { issuers: [{ issuer: 'https://idp.example', jwks_uri: 'x', audiences: ['api'] }] })
    expect(app.register).type.toBeCallableWith(authenticate, { schemes: ['bearer'] })
    expect(app.register).type.not.toBeCallableWith(authenticate, { schemes: ['cookie'] })
    expect(app.register).type.toBeCallableWith(rbac, { roles: 'database', rolesClaim: 'realm_access.roles' })
    expect(app.register).type.not.toBeCallableWith(rbac, { roles: 'nosuchpreset' })
    expect(app.register).type.toBeCallableWith(store, { databaseUrl: 'file:./data/app.db' })
    expect(app.register).type.not.toBeCallableWith(store, { migrations: 'sometimes' })
    expect(app.register).type.toBeCallableWith(tokens, { issuer: 'https://auth.example', keysDir: './keys' })
    expect(app.register).type.not.toBeCallableWith(tokens, { keysDir: './keys' })
    expect(app.register).type.toBeCallableWith(credentials, {})
    expect(app.register).type.toBeCallableWith(sessions, { refreshTokenTtl: 3600 })
    expect(app.register).type.not.toBeCallableWith(sessions, { refreshTokenTtl: '1h' })
    expect(app.register).type.toBeCallableWith(rateLimit, {})
    expect(app.register).type.toBeCallableWith(audit)
    expect(app.register).type.toBeCallableWith(users, { adminRole: 'owner' })
    expect(app.register).type.not.toBeCallableWith(users, { adminRole: 1 })
    expect(app.register).type.toBeCallableWith(orgs)
  })

  test('the documented option types are exported', () => {
    expect<RbacOptions['roles']>().type.toBeAssignableFrom(['admin', 'reader'] as const)
    expect<StoreOptions['migrations']>().type.toBe<'apply' | 'check' | 'skip' | undefined>()
    expect<CredentialsOptions>().type.toBeAssignableFrom({})
    expect<SessionsOptions>().type.toBeAssignableFrom({})
    expect<TokensOptions['issuer']>().type.toBe<string>()
    expect<RateLimitPluginOptions>().type.toBeAssignableFrom({})
    expect<UsersOptions['adminRole']>().type.toBe<string | undefined>()
    expect<GatehouseServerOptions>().type.toHaveProperty('config')
    expect(PERMISSION_PRESETS.global).type.toBeAssignableTo<Readonly<Record<string, readonly string[]>>>()
    expect(ROLE_PRESETS.org).type.toBe<readonly string[]>()
    expect(new RbacConfigError('x')).type.toBeAssignableTo<Error>()
  })
})

describe('the root and the other subpaths', () => {
  test('the root re-exports the plugins and the error handler', () => {
    expect(root.trustedIssuers).type.toBe(trustedIssuers)
    expect(root.authenticate).type.toBe(authenticate)
    expect(root.rbac).type.toBe(rbac)
    expect(root.errorHandler).type.toBe(errorHandler)
    expect(root.gatehouseServer).type.toBe(gatehouseServer)
    expect(root.users).type.toBe(users)
    expect(root.orgs).type.toBe(orgs)
    expect(root.providers).type.toBe(providers)
  })

  test('each subpath exports its plugin as default too', () => {
    expect(trustedIssuersDefault).type.toBe(trustedIssuers)
    expect(authenticateDefault).type.toBe(authenticate)
    expect(rbacDefault).type.toBe(rbac)
    expect(storeDefault).type.toBe(store)
    expect(credentialsDefault).type.toBe(credentials)
    expect(tokensDefault).type.toBe(tokens)
    expect(sessionsDefault).type.toBe(sessions)
    expect(rateLimitDefault).type.toBe(rateLimit)
    expect(auditDefault).type.toBe(audit)
    expect(usersDefault).type.toBe(users)
    expect(orgsDefault).type.toBe(orgs)
    expect(providersDefault).type.toBe(providers)
    expect(serverDefault).type.toBe(gatehouseServer)
    expect(clientDefault).type.toBe(createClient)
  })

  test('gatehouse/client', () => {
    expect(createClient({ baseUrl: 'https://auth.example' })).type.toBe<GatehouseClient>()
    expect(createClient).type.not.toBeCallableWith({})
  })
})
