// A standard client library (jose) verifies our access tokens from our JWKS, served by a
// listening server, for every signing algorithm.
import t from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { buildProtected, createUser, tokenFor } from './helpers.ts'

for (const alg of ['RS256', 'ES256', 'EdDSA']) {
  t.test(`jose createRemoteJWKSet + jwtVerify (${alg})`, async (t) => {
    const { app, config } = await buildProtected(t, { env: { AUTH_SIGNING_ALG: alg } })
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    const user = await createUser(app)
    const { token, sid } = await tokenFor(app, user, { roles: ['user'] })
    const jwks = createRemoteJWKSet(new URL(`${address}/.well-known/jwks.json`))
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: config.issuer,
      audience: config.audience,
      typ: 'at+jwt',
      algorithms: [alg],
      requiredClaims: ['sub', 'jti', 'iat', 'exp']
    })
    t.equal(protectedHeader.alg, alg)
    t.equal(protectedHeader.typ, 'at+jwt')
    t.equal(payload.sub, user.id)
    t.equal(payload.sid, sid)
    t.same(payload.roles, ['user'])
    t.equal(payload.exp! - payload.iat!, config.accessTokenTtl, 'lifetime is ACCESS_TOKEN_TTL')

    const discovery = await (await fetch(`${address}/.well-known/openid-configuration`)).json() as { jwks_uri: string }
    t.equal(discovery.jwks_uri, `${config.issuer}/.well-known/jwks.json`)
  })
}
