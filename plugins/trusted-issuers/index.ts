// gatehouse-trusted-issuers: accept access tokens from allowlisted external identity providers
// (Google, Auth0, Keycloak, any OIDC provider, or an HS256 system with a shared secret) with no
// database. `fastify.trustedIssuers = { has(iss), verify(token), stats() }`; the `authenticate`
// plugin calls it for bearer tokens whose `iss` is not this server. See docs/trusted-issuers.md.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { resolveOptions, type TrustedIssuersOptions } from './options.ts'
import { createTrustedIssuers, type TrustedIssuers } from './verifier.ts'

export { resolveOptions, type TrustedIssuersOptions, type TrustedIssuerInput, type ResolvedOptions } from './options.ts'
export { createTrustedIssuers, type TrustedIssuers, type TrustedIssuersStats } from './verifier.ts'

declare module 'fastify' {
  interface FastifyInstance {
    trustedIssuers: TrustedIssuers
  }
}

async function trustedIssuersPlugin (fastify: FastifyInstance, options: TrustedIssuersOptions): Promise<void> {
  const resolved = resolveOptions(options)
  const log = fastify.log.child({ plugin: 'trusted-issuers' })
  const service = createTrustedIssuers(resolved, {
    warn: (obj, msg) => log.warn(obj, msg),
    info: (obj, msg) => log.info(obj, msg)
  })
  if (resolved.issuers.size > 0) {
    log.info({ issuers: [...resolved.issuers.values()].map((i) => ({ issuer: i.issuer, keys: i.kind, algorithms: i.algorithms })) }, 'trusted external issuers')
  }
  fastify.decorate('trustedIssuers', service)
  fastify.addHook('onClose', async () => service.close())
}

export const trustedIssuers = fp(trustedIssuersPlugin, { name: 'gatehouse-trusted-issuers', fastify: '5.x' })
export default trustedIssuers
export { ConfigError } from '../../lib/options.ts'
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
export type { AuthUser } from '../../lib/auth-user.ts'
