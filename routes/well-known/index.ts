// Discovery: the public signing keys (RFC 7517) and the server metadata (OpenID Connect
// Discovery 1.0 §3 / RFC 8414) that resource servers and client libraries read.
import type { FastifyInstance } from 'fastify'

/** Resource servers may cache keys for this long; a rotation publishes the new key before it signs. */
export const JWKS_MAX_AGE_SECONDS = 300
export const DISCOVERY_MAX_AGE_SECONDS = 300

// Only public members are listed: the serializer drops anything else (a private `d`, `p`, ...).
const jwkSchema = {
  type: 'object',
  properties: {
    kty: { type: 'string' },
    kid: { type: 'string' },
    alg: { type: 'string' },
    use: { type: 'string', enum: ['sig'] },
    n: { type: 'string' },
    e: { type: 'string' },
    crv: { type: 'string' },
    x: { type: 'string' },
    y: { type: 'string' }
  },
  required: ['kty', 'kid', 'alg', 'use'],
  additionalProperties: false
} as const

const jwksSchema = {
  type: 'object',
  properties: { keys: { type: 'array', items: jwkSchema } },
  required: ['keys'],
  additionalProperties: false
} as const

const stringArray = { type: 'array', items: { type: 'string' } } as const

const discoverySchema = {
  type: 'object',
  properties: {
    issuer: { type: 'string' },
    jwks_uri: { type: 'string' },
    token_endpoint: { type: 'string' },
    revocation_endpoint: { type: 'string' },
    introspection_endpoint: { type: 'string' },
    grant_types_supported: stringArray,
    response_types_supported: stringArray,
    subject_types_supported: stringArray,
    id_token_signing_alg_values_supported: stringArray,
    token_endpoint_auth_methods_supported: stringArray,
    revocation_endpoint_auth_methods_supported: stringArray,
    introspection_endpoint_auth_methods_supported: stringArray,
    claims_supported: stringArray
  },
  required: ['issuer', 'jwks_uri', 'token_endpoint', 'grant_types_supported', 'id_token_signing_alg_values_supported'],
  additionalProperties: false
} as const

export interface DiscoveryDocument {
  issuer: string
  jwks_uri: string
  token_endpoint: string
  revocation_endpoint: string
  introspection_endpoint: string
  grant_types_supported: string[]
  response_types_supported: string[]
  subject_types_supported: string[]
  id_token_signing_alg_values_supported: string[]
  token_endpoint_auth_methods_supported: string[]
  revocation_endpoint_auth_methods_supported: string[]
  introspection_endpoint_auth_methods_supported: string[]
  claims_supported: string[]
}

/** The metadata of `issuer`, whose tokens are signed with `algorithms`. */
export function discoveryDocument (issuer: string, algorithms: string[]): DiscoveryDocument {
  const clientAuth = ['client_secret_basic', 'client_secret_post']
  return {
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    token_endpoint: `${issuer}/oauth/token`,
    revocation_endpoint: `${issuer}/oauth/revoke`,
    introspection_endpoint: `${issuer}/oauth/introspect`,
    grant_types_supported: ['password', 'refresh_token', 'client_credentials'],
    // No authorization endpoint: tokens come only from the token endpoint.
    response_types_supported: [],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algorithms,
    token_endpoint_auth_methods_supported: [...clientAuth, 'none'],
    revocation_endpoint_auth_methods_supported: [...clientAuth, 'none'],
    introspection_endpoint_auth_methods_supported: clientAuth,
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'roles', 'sid', 'ver', 'client_id', 'scope']
  }
}

export default async function wellKnownRoutes (fastify: FastifyInstance): Promise<void> {
  const { tokens } = fastify

  fastify.get('/.well-known/jwks.json', {
    schema: {
      tags: ['discovery'],
      summary: 'Public keys that verify this server\'s access tokens (RFC 7517)',
      description: 'Every key that is not retired: the current signing key and older keys whose tokens may still be valid.',
      security: [],
      response: { 200: jwksSchema }
    },
    logLevel: 'warn'
  }, async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
    return tokens.jwks()
  })

  fastify.get('/.well-known/openid-configuration', {
    schema: {
      tags: ['discovery'],
      summary: 'Authorization server metadata (OpenID Connect Discovery 1.0, RFC 8414)',
      security: [],
      response: { 200: discoverySchema }
    },
    logLevel: 'warn'
  }, async (_request, reply) => {
    reply.header('cache-control', `public, max-age=${DISCOVERY_MAX_AGE_SECONDS}`)
    const algorithms = [...new Set(tokens.jwks().keys.map((k) => k.alg))]
    return discoveryDocument(tokens.issuer, algorithms)
  })
}
