// gatehouse-credentials: `fastify.credentials`, the verifier of passwords (argon2id), HTTP Basic
// credentials and API keys. See docs/credentials.md.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { belowOwaspFloor, resolveOptions, type CredentialsOptions } from './options.ts'
import { createCredentials, type Credentials, type LoginThrottle } from './service.ts'
import type { Audit } from '../audit/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    credentials: Credentials
  }
}

async function credentialsPlugin (fastify: FastifyInstance, input: CredentialsOptions): Promise<void> {
  const options = resolveOptions(input)
  if (belowOwaspFloor(options.argon2)) {
    fastify.log.warn({ argon2: options.argon2 }, 'credentials: the argon2id parameters are below the OWASP minimum (m=19456 KiB, t=2, p=1)')
  }
  const credentials = await createCredentials(options, {
    prisma: fastify.store.prisma,
    sqlite: fastify.store.sqlite,
    postgres: fastify.store.postgres,
    bus: fastify.bus,
    audit: fastify.hasDecorator('audit') ? fastify.getDecorator<Audit>('audit') : null,
    loginThrottle: () => fastify.hasDecorator('loginThrottle') ? fastify.getDecorator<LoginThrottle>('loginThrottle') : null,
    secondFactor: () => fastify.hasDecorator('mfa') ? fastify.getDecorator<{ hasSecondFactor: (userId: string) => Promise<boolean> }>('mfa').hasSecondFactor : null,
    log: fastify.log
  })
  fastify.decorate('credentials', credentials)
  fastify.addHook('onClose', async () => { await credentials.drain() })
}

export const credentials = fp(credentialsPlugin, {
  name: 'gatehouse-credentials',
  fastify: '5.x',
  dependencies: ['gatehouse-store', 'gatehouse-redis']
})
export default credentials
export { resolveOptions } from './options.ts'
export type { CredentialsOptions, Argon2Parameters } from './options.ts'
export type { Credentials, ApiKeyCreated, LoginThrottle, ThrottleAttempt, SignInCheck, SignInChannel } from './service.ts'
export { normalizeEmail, isPlausibleEmail } from './policy.ts'
export { CredentialsOptionsError } from './options.ts'
export { parseRoles } from '../../lib/roles.ts'
export { MissingPeerError } from '../../lib/peer.ts'
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
