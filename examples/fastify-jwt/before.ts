// A resource server that verifies Gatehouse's access tokens with @fastify/jwt and get-jwks, the
// recipe of @fastify/jwt's README: the key comes from Gatehouse's JWKS
// (<issuer>/.well-known/jwks.json), picked by the token's kid. See docs/fastify-jwt.md.
//
//   GATEHOUSE_ISSUER=http://127.0.0.1:3000 PORT=4000 npx tsx examples/fastify-jwt/before.ts
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import buildGetJwks from 'get-jwks'

export interface ResourceServerOptions {
  /** Gatehouse's AUTH_ISSUER. */
  issuer: string
  /** Gatehouse's AUTH_AUDIENCE. @default 'gatehouse' */
  audience?: string
}

export async function buildWithFastifyJwt (options: ResourceServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  // Only Gatehouse's issuer: get-jwks would otherwise fetch keys from whatever `iss` a token names.
  const getJwks = buildGetJwks({ issuersWhitelist: [options.issuer], providerDiscovery: false })
  await app.register(fastifyJwt, {
    decode: { complete: true },
    secret: (_request: FastifyRequest, token: unknown) => {
      const { header: { kid, alg }, payload: { iss } } = token as { header: { kid: string, alg: string }, payload: { iss: string } }
      return getJwks.getPublicKey({ kid, domain: iss, alg })
    },
    verify: { allowedIss: options.issuer, allowedAud: options.audience ?? 'gatehouse', algorithms: ['RS256', 'ES256', 'EdDSA'] }
  })

  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      await request.jwtVerify()
    } catch (err) {
      reply.send(err)
    }
  }
  app.get('/me', { onRequest: authenticate }, async (request) => {
    const claims = request.user as { sub: string, roles?: string[] }
    return { sub: claims.sub, roles: claims.roles ?? [] }
  })
  return app
}

if (process.argv[1]?.endsWith('examples/fastify-jwt/before.ts')) {
  const app = await buildWithFastifyJwt({ issuer: process.env.GATEHOUSE_ISSUER ?? 'http://127.0.0.1:3000' })
  await app.listen({ port: Number(process.env.PORT ?? 4000), host: '127.0.0.1' })
}
