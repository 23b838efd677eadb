// gatehouse-providers: sign-in with external providers (OpenID Connect and plain OAuth 2.0) as
// `fastify.providers`: the configured providers, the relying-party client (openid-client:
// authorization code with PKCE S256, state bound to the browser, nonce and ID token validation),
// identities with their linking rules and one-time login codes. The HTTP surface is
// routes/auth/providers.ts; see docs/providers.md.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Audit } from '../audit/index.ts'
import { createKeyFileBox, loadSecretKeys, type SecretBox } from '../mfa/index.ts'
import { PLUGIN, resolveOptions, type ProviderEntry, type ProvidersOptions, type ResolvedProvidersOptions } from './options.ts'
import { createProviderClient, type ProviderClient } from './client.ts'
import { createProvidersService, type ProvidersService } from './service.ts'

export interface Providers extends Omit<ProvidersService, 'options'> {
  options: ResolvedProvidersOptions
  client: ProviderClient
  /** The entry of `id`, or undefined. */
  get: (id: string) => ProviderEntry | undefined
  /** `[{id, name}]` in configuration order. */
  list: () => Array<{ id: string, name: string }>
}

declare module 'fastify' {
  interface FastifyInstance {
    providers: Providers
  }
}

async function providersPlugin (fastify: FastifyInstance, input: ProvidersOptions): Promise<void> {
  const options = resolveOptions(input)
  let box: SecretBox | null = null
  if (options.keysDir !== null) box = createKeyFileBox(options.keysDir, loadSecretKeys(options.keysDir).keys)
  const service = createProvidersService({
    prisma: fastify.store.prisma,
    audit: fastify.hasDecorator('audit') ? fastify.getDecorator<Audit>('audit') : null,
    log: fastify.log.child({ plugin: 'providers' }),
    options,
    box
  })
  const client = createProviderClient({ callbackBase: options.callbackBase, timeoutMs: options.timeoutMs, clock: options.clock })
  const entries = [...options.providers.values()]
  if (entries.length > 0) {
    fastify.log.info({ providers: entries.map((p) => ({ id: p.id, type: p.type, issuer: p.issuer, callback: client.callbackUrl(p) })) }, 'sign-in providers')
    if (options.redirectUris.size === 0) fastify.log.warn('LOGIN_PROVIDERS is set but LOGIN_REDIRECT_URIS is empty: no sign-in flow can return to an app')
  }
  const providers: Providers = {
    ...service,
    options,
    client,
    get: (id) => options.providers.get(id),
    list: () => entries.map((p) => ({ id: p.id, name: p.name }))
  }
  fastify.decorate('providers', providers)
}

export const providers = fp(providersPlugin, { name: PLUGIN, fastify: '5.x', dependencies: ['gatehouse-store'] })
export default providers
export { resolveOptions, resolveProviders, urlProblem, DEFAULT_OIDC_SCOPES, TOKEN_ENDPOINT_AUTH_METHODS } from './options.ts'
export type { ProvidersOptions, ProviderInput, ProviderEntry, OidcProviderEntry, OAuth2ProviderEntry, ResolvedProvidersOptions, TokenEndpointAuthMethod } from './options.ts'
export { createProviderClient, ProviderError, type ProviderClient, type ProviderProfile } from './client.ts'
export { createProvidersService, SignInRefused, type ProvidersService, type SignInRefusal, type LinkedIdentity } from './service.ts'
