// Against a real OpenID provider (oidc-provider v9) issuing JWT access tokens for a resource
// through the client_credentials grant: acceptance, discovery, a second provider that is not on
// the allowlist, audience and algorithm pinning, and key rotation at the provider.
import t from 'tap'
import { createTrustedIssuers, resolveOptions } from '../../plugins/trusted-issuers/index.ts'
import { decodePart, oidcProvider, providerKeys, rejection, RESOURCE, verifierApp, manualClock } from './helpers.ts'

t.test('a provider token is accepted (via the decorator and over HTTP)', async (t) => {
  const op = await oidcProvider(t)
  const token = await op.token()
  t.equal(decodePart(token, 0).typ, 'at+jwt', 'the provider issues RFC 9068 access tokens')
  const app = await verifierApp(t, { issuers: [{ issuer: op.issuer, jwksUri: `${op.issuer}/jwks`, audiences: [RESOURCE], algorithms: ['RS256'], allowedTypes: ['at+jwt'] }] })

  const user = await app.trustedIssuers.verify(token)
  t.equal(user.iss, op.issuer)
  t.equal(user.sub, 'service-a', 'client_credentials: sub is the client id')
  t.equal(user.id, user.sub)
  t.equal(user.external, true)
  t.equal(user.scheme, 'bearer')
  t.same(user.roles, [])
  t.equal(user.clientId, 'service-a')
  t.equal(user.claims?.aud, RESOURCE)

  const res = await app.inject({ url: '/whoami', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { sub: 'service-a', iss: op.issuer, roles: [], external: true })
  t.equal(op.server.count('/jwks'), 1, 'the JWKS was fetched once')
  t.equal(app.trustedIssuers.stats().cacheHits, 1, 'the second verification used the cache')
})

t.test('discovery: jwks_uri is read from the provider metadata', async (t) => {
  const op = await oidcProvider(t)
  const ti = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: op.issuer, discovery: true, audiences: [RESOURCE] }] }))
  t.teardown(() => ti.close())
  const user = await ti.verify(await op.token())
  t.equal(user.sub, 'service-a')
  t.equal(op.server.count('/.well-known/openid-configuration'), 1)
  t.equal(op.server.count('/jwks'), 1)
  const stats = ti.stats()
  t.equal(stats.discoveryFetches, 1)
  t.equal(stats.fetches, 1)
})

t.test('a second provider that is not allowlisted: UNTRUSTED_ISSUER and its JWKS is never requested', async (t) => {
  const trusted = await oidcProvider(t)
  const other = await oidcProvider(t)
  const ti = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: trusted.issuer, jwksUri: `${trusted.issuer}/jwks`, audiences: [RESOURCE] }] }))
  t.teardown(() => ti.close())
  const before = other.server.total()
  const foreign = await other.token()
  t.equal(other.server.total(), before + 1, 'only the token request reached the second provider')
  for (let i = 0; i < 20; i++) {
    const err = await rejection(ti.verify(foreign))
    t.equal(err.code, 'UNTRUSTED_ISSUER')
    t.equal(err.statusCode, 401)
    t.match(err.headers, { 'www-authenticate': 'Bearer error="invalid_token"' })
  }
  t.equal(ti.has(other.issuer), false)
  t.equal(ti.has(trusted.issuer), true)
  t.equal(other.server.count('/jwks'), 0, 'the JWKS of the unknown issuer was never requested')
  t.equal(other.server.count('/.well-known/openid-configuration'), 0)
  t.equal(trusted.server.count('/jwks'), 0, 'no key of the trusted issuer was needed either')
  t.equal(ti.stats().rejectedIssuers, 20)
  t.equal(ti.stats().fetches, 0)
})

t.test('wrong audience and a disallowed algorithm are rejected', async (t) => {
  const op = await oidcProvider(t)
  const token = await op.token()
  const wrongAud = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: op.issuer, jwksUri: `${op.issuer}/jwks`, audiences: ['https://another-api.example.test'] }] }))
  t.teardown(() => wrongAud.close())
  const err = await rejection(wrongAud.verify(token))
  t.equal(err.code, 'INVALID_TOKEN', 'aud does not intersect the configured audiences')

  const es = await oidcProvider(t, { alg: 'ES256' })
  const esToken = await es.token()
  t.equal(decodePart(esToken, 0).alg, 'ES256')
  const rsOnly = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: es.issuer, jwksUri: `${es.issuer}/jwks`, audiences: [RESOURCE], algorithms: ['RS256'] }] }))
  t.teardown(() => rsOnly.close())
  t.equal((await rejection(rsOnly.verify(esToken))).code, 'INVALID_TOKEN', 'ES256 is not on the allowlist')
  t.equal(es.server.count('/jwks'), 0, 'a disallowed alg is refused before any key is fetched')
  t.equal(rsOnly.stats().rejectedAlgorithms, 1)

  const esAllowed = createTrustedIssuers(resolveOptions({ issuers: [{ issuer: es.issuer, jwksUri: `${es.issuer}/jwks`, audiences: [RESOURCE], algorithms: ['ES256'] }] }))
  t.teardown(() => esAllowed.close())
  t.equal((await esAllowed.verify(esToken)).sub, 'service-a', 'the same token passes when ES256 is allowed')
})

t.test('key rotation at the provider is picked up after the cooldown', async (t) => {
  const oldKey = await providerKeys('RS256', 'old')
  const newKey = await providerKeys('RS256', 'new')
  const op = await oidcProvider(t, { keys: [oldKey] })
  // Both tokens are issued up front, so the timed part below has no slow step in it.
  const first = await op.token()
  await op.rotate([newKey])
  const rotated = await op.token()
  t.equal(decodePart(first, 0).kid, 'old')
  t.equal(decodePart(rotated, 0).kid, 'new')
  await op.rotate([oldKey])

  const cooldownMs = 1000
  const clock = manualClock()
  const ti = createTrustedIssuers(resolveOptions({ clock: clock.now, cooldownMs, issuers: [{ issuer: op.issuer, jwksUri: `${op.issuer}/jwks`, audiences: [RESOURCE] }] }))
  t.teardown(() => ti.close())
  await ti.verify(first)
  t.equal(op.server.count('/jwks'), 1)
  // The provider rotates: its JWKS now holds only the new key.
  await op.rotate([newKey])
  // Within the cooldown of the first fetch the unknown kid may not trigger a refetch.
  const early = await rejection(ti.verify(rotated))
  t.equal(early.code, 'INVALID_TOKEN', 'unknown kid inside the cooldown')
  t.equal(op.server.count('/jwks'), 1)

  clock.advance(cooldownMs)
  const user = await ti.verify(rotated)
  t.equal(user.sub, 'service-a', 'the new key is used after the cooldown')
  t.equal(op.server.count('/jwks'), 2)
  const gone = await rejection(ti.verify(first))
  t.equal(gone.code, 'INVALID_TOKEN', 'the refresh replaced the set: the removed key no longer verifies')
})
