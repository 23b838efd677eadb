// The verified-token cache of external tokens, against local JWKS servers: admission on the second
// verification, hits that need the whole token, expiry at exp, keys dropped from the JWKS, the
// doorkeeper, the size bound, and per-issuer rules that still hold on a hit. Both signature
// paths (thread pool and inline) run every case.
import t from 'tap'
import { createHmac } from 'node:crypto'
import { SignJWT } from 'jose'
import { createTrustedIssuers, resolveOptions, type TrustedIssuersOptions } from '../../plugins/trusted-issuers/index.ts'
import { jwks, keyServer, manualClock, rejection, sign, testKey, type TestContext } from './helpers.ts'

const AUD = 'my-api'
const now = (): number => Math.floor(Date.now() / 1000)

function service (t: TestContext, options: TrustedIssuersOptions): ReturnType<typeof createTrustedIssuers> {
  const ti = createTrustedIssuers(resolveOptions(options))
  t.teardown(() => ti.close())
  return ti
}

/** The token with the signature byte at `index` (of the decoded signature) changed. */
function flipSignatureByte (token: string, index: number): string {
  const [h, p, s] = token.split('.')
  const bytes = Buffer.from(s, 'base64url')
  const at = index < 0 ? bytes.length + index : index
  bytes[at] ^= 0x01
  return `${h}.${p}.${bytes.toString('base64url')}`
}

for (const signatureCheck of ['pool', 'inline'] as const) {
  const path = signatureCheck === 'pool' ? 'thread pool' : 'inline'

  t.test(`${path}: a token enters the cache on its second verification; hits need no key lookup`, async (t) => {
    const key = await testKey()
    const ks = await keyServer(t, jwks(key))
    const ti = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], rolesClaim: 'roles', adminApi: true }] })
    const token = await sign(key, { iss: ks.url, sub: 'alice', aud: AUD, roles: ['reader'], client_id: 'app-1', realm: { nested: ['x'] } })
    const first = await ti.verify(token)
    t.equal(ti.stats().verifiedCacheSize, 0, 'seen once: only marked')
    const second = await ti.verify(token)
    t.equal(ti.stats().verifiedCacheSize, 1, 'seen twice: cached')
    t.equal(ti.stats().verifiedCacheHits, 0)
    const lookups = ti.stats().cacheHits + ti.stats().cacheMisses
    const third = await ti.verify(token)
    const fourth = await ti.verify(token)
    t.equal(ti.stats().verifiedCacheHits, 2, 'then hits')
    t.equal(ti.stats().cacheHits + ti.stats().cacheMisses, lookups, 'a hit does not look the key up')
    t.equal(ti.stats().verified, 4)
    t.equal(ks.count('/jwks'), 1)
    for (const user of [second, third, fourth]) t.same(user, first, 'a hit gives the same AuthUser as a full verification')
    t.same(third, { id: 'alice', sub: 'alice', iss: ks.url, roles: ['reader'], scheme: 'bearer', external: true, claims: first.claims, adminApi: true, clientId: 'app-1' })
    t.not(third, fourth, 'each request gets its own AuthUser object')
    t.ok(Object.isFrozen(third.claims) && Object.isFrozen((third.claims as { realm: { nested: string[] } }).realm.nested), 'shared claims are frozen all the way down')
    t.throws(() => { third.roles.push('admin') }, TypeError, 'shared roles cannot be changed')
  })

  t.test(`${path}: a token differing from a cached one in one signature byte is never served`, async (t) => {
    const key = await testKey()
    const ks = await keyServer(t, jwks(key))
    const ti = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
    const token = await sign(key, { iss: ks.url, sub: 'alice', aud: AUD })
    await ti.verify(token)
    await ti.verify(token)
    t.equal(ti.stats().verifiedCacheSize, 1)
    // The cache is indexed by the token's last characters: one variant shares them, one does not.
    for (const [name, index] of [['first byte', 0], ['middle byte', 100], ['last byte', -1], ['eighth byte from the end', -8]] as const) {
      const tampered = flipSignatureByte(token, index)
      t.not(tampered, token)
      t.equal((await rejection(ti.verify(tampered))).code, 'INVALID_SIGNATURE', `${name} changed: INVALID_SIGNATURE`)
    }
    const [h, p, s] = token.split('.')
    const payload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'admin' })).toString('base64url')
    t.equal((await rejection(ti.verify(`${h}.${payload}.${s}`))).code, 'INVALID_SIGNATURE', 'the cached signature on another payload')
    t.equal((await rejection(ti.verify(`${h}.${p}.${s}x`))).code, 'INVALID_SIGNATURE', 'one character appended')
    t.equal((await ti.verify(token)).sub, 'alice', 'the genuine token is still a hit')
    t.equal(ti.stats().verifiedCacheHits, 1)
    t.equal(ti.stats().verifiedCacheSize, 1, 'no tampered token was cached')
  })

  t.test(`${path}: a cached token stops verifying at exp; one inside the tolerance is not cached`, { timeout: 30_000 }, async (t) => {
    const key = await testKey()
    const ks = await keyServer(t, jwks(key))
    const ti = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], clockToleranceSeconds: 0 }] })
    const exp = now() + 2
    const token = await sign(key, { iss: ks.url, sub: 'short', aud: AUD, exp })
    await ti.verify(token)
    await ti.verify(token)
    t.equal(ti.stats().verifiedCacheSize, 1)
    t.equal((await ti.verify(token)).sub, 'short', 'a hit before exp')
    t.equal(ti.stats().verifiedCacheHits, 1)
    // Claims are checked against the real time: wait until exp has passed.
    while (Date.now() <= exp * 1000) await new Promise((resolve) => setTimeout(resolve, 100))
    t.equal((await rejection(ti.verify(token))).code, 'TOKEN_EXPIRED', 'expired, although it was cached')
    t.equal(ti.stats().verifiedCacheHits, 1, 'no hit after exp')

    const tolerant = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], clockToleranceSeconds: 30 }] })
    const late = await sign(key, { iss: ks.url, sub: 'late', aud: AUD, iat: now() - 60, exp: now() - 20 })
    for (let i = 0; i < 3; i++) t.equal((await tolerant.verify(late)).sub, 'late', 'accepted inside the tolerance')
    t.equal(tolerant.stats().verifiedCacheSize, 0, 'past exp: never cached')
    t.equal(tolerant.stats().verifiedCacheHits, 0)
  })

  t.test(`${path}: a key dropped from the JWKS stops verifying its cached tokens at the next fetch`, async (t) => {
    const a = await testKey('RS256', 'a')
    const b = await testKey('RS256', 'b')
    const ks = await keyServer(t, jwks(a, b))
    const clock = manualClock()
    const ti = service(t, { signatureCheck, clock: clock.now, cooldownMs: 1000, cacheMaxAgeMs: 60_000, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
    const tokenA = await sign(a, { iss: ks.url, sub: 'a', aud: AUD })
    const tokenB = await sign(b, { iss: ks.url, sub: 'b', aud: AUD })
    for (const token of [tokenA, tokenA, tokenB, tokenB]) await ti.verify(token)
    t.equal(ti.stats().verifiedCacheSize, 2)
    t.equal((await ti.verify(tokenA)).sub, 'a', 'a hit')
    t.equal(ti.stats().verifiedCacheHits, 1)

    // The provider retires a; a token with an unknown kid makes us refetch (after the cooldown).
    ks.serve(jwks(b))
    clock.advance(1000)
    const c = await testKey('RS256', 'c')
    t.equal((await rejection(ti.verify(await sign(c, { iss: ks.url, sub: 'c', aud: AUD })))).code, 'INVALID_TOKEN')
    t.equal(ks.count('/jwks'), 2, 'the JWKS was fetched again')
    t.equal((await rejection(ti.verify(tokenA))).code, 'INVALID_TOKEN', 'the cached token of the dropped key is refused at once')
    t.equal((await ti.verify(tokenB)).sub, 'b', 'a key still published keeps its cached tokens')
    t.equal(ti.stats().verifiedCacheHits, 2, 'that was a hit')
    t.equal(ks.count('/jwks'), 2)
  })

  t.test(`${path}: cached tokens are re-verified once the key set is older than cacheMaxAge`, async (t) => {
    const a = await testKey('RS256', 'a')
    const ks = await keyServer(t, jwks(a))
    const clock = manualClock()
    const ti = service(t, { signatureCheck, clock: clock.now, cooldownMs: 100, cacheMaxAgeMs: 1000, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
    const token = await sign(a, { iss: ks.url, sub: 'a', aud: AUD })
    await ti.verify(token)
    await ti.verify(token)
    clock.advance(999)
    t.equal((await ti.verify(token)).sub, 'a')
    t.equal(ti.stats().verifiedCacheHits, 1, 'a hit while the key set is fresh')
    clock.advance(1)
    t.equal((await ti.verify(token)).sub, 'a', 're-verified with the refetched key set')
    t.equal(ks.count('/jwks'), 2, 'which the stale set made us fetch')
    t.equal(ti.stats().verifiedCacheHits, 1, 'that was no hit')
    t.equal((await ti.verify(token)).sub, 'a')
    t.equal(ti.stats().verifiedCacheHits, 2, 'and it is cached again at once (the key did not change)')

    // The provider goes down: a stale key set still verifies (stale-if-error) but serves no hit.
    await new Promise<void>((resolve) => { ks.server.closeAllConnections(); ks.server.close(() => resolve()) })
    clock.advance(1000)
    t.equal((await ti.verify(token)).sub, 'a', 'verified with the stale key set')
    t.equal(ti.stats().verifiedCacheHits, 2, 'not from the cache')
    t.ok(ti.stats().staleServed >= 1)
  })

  t.test(`${path}: the doorkeeper keeps one-off tokens from evicting hot ones; the size is bounded`, async (t) => {
    const key = await testKey()
    const ks = await keyServer(t, jwks(key))
    const ti = service(t, { signatureCheck, verifiedCacheSize: 16, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
    const hot = await Promise.all([1, 2, 3, 4].map((i) => sign(key, { iss: ks.url, sub: `hot-${i}`, aud: AUD })))
    // Three rounds: the doorkeeper is a small probabilistic filter, a mark may be lost once.
    for (const token of [...hot, ...hot, ...hot]) await ti.verify(token)
    t.equal(ti.stats().verifiedCacheSize, 4)
    for (let i = 0; i < 200; i++) t.equal((await ti.verify(await sign(key, { iss: ks.url, sub: `once-${i}`, aud: AUD }))).sub, `once-${i}`)
    t.equal(ti.stats().verifiedCacheSize, 4, '200 one-off tokens: the cache is unchanged')
    const hits = ti.stats().verifiedCacheHits
    for (const token of hot) await ti.verify(token)
    t.equal(ti.stats().verifiedCacheHits, hits + 4, 'every hot token is still a hit')

    const repeated = await Promise.all(Array.from({ length: 40 }, (_, i) => sign(key, { iss: ks.url, sub: `r-${i}`, aud: AUD })))
    for (const token of repeated) for (let i = 0; i < 3; i++) t.equal((await ti.verify(token)).sub.startsWith('r-'), true)
    t.equal(ti.stats().verifiedCacheSize, 16, `40 tokens seen three times each, size 16: ${ti.stats().verifiedCacheSize} cached`)
  })

  t.test(`${path}: per-issuer rules hold on a hit; two instances never share entries`, async (t) => {
    const key = await testKey()
    const ks = await keyServer(t, jwks(key))
    const strict = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: ['other-api'], requiredClaims: ['tenant'] }] })
    const open = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
    const token = await sign(key, { iss: ks.url, sub: 's', aud: AUD })
    for (let i = 0; i < 3; i++) t.equal((await open.verify(token)).sub, 's')
    t.equal(open.stats().verifiedCacheHits, 1)
    t.equal((await rejection(strict.verify(token))).code, 'INVALID_TOKEN', 'another instance: its own audience')
    const withTenant = await sign(key, { iss: ks.url, sub: 's', aud: 'other-api' })
    for (let i = 0; i < 3; i++) t.equal((await rejection(strict.verify(withTenant))).code, 'MISSING_CLAIM', 'its own required claims, every time')
    t.equal(strict.stats().verifiedCacheSize, 0)

    const long = await sign(key, { iss: ks.url, sub: 's', aud: AUD, iat: now(), exp: now() + 7200 })
    const capped = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], maxTokenLifetime: 3600 }] })
    for (let i = 0; i < 3; i++) t.equal((await rejection(capped.verify(long))).code, 'INVALID_TOKEN', 'maxTokenLifetime, every time')
    for (let i = 0; i < 3; i++) t.equal((await open.verify(long)).adminApi, undefined, 'no adminApi without the entry saying so')
  })

  t.test(`${path}: HS issuers are cached too, and a changed HMAC byte is refused`, async (t) => {
    const secret = 'k'.repeat(32)
    const iss = 'kalamdb-test'
    const ti = service(t, { signatureCheck, issuers: [{ issuer: iss, secret, algorithms: ['HS256'], audiences: [AUD] }] })
    const token = await new SignJWT({ iss, sub: 'svc', aud: AUD, exp: now() + 60 }).setProtectedHeader({ alg: 'HS256', kid: 'h1' }).sign(Buffer.from(secret))
    for (let i = 0; i < 3; i++) t.equal((await ti.verify(token)).sub, 'svc')
    t.equal(ti.stats().verifiedCacheHits, 1)
    t.equal((await rejection(ti.verify(flipSignatureByte(token, 5)))).code, 'INVALID_SIGNATURE')
    t.equal((await rejection(ti.verify(flipSignatureByte(token, -1)))).code, 'INVALID_SIGNATURE')
    const [h, p] = token.split('.')
    const other = createHmac('sha256', 'x'.repeat(32)).update(`${h}.${p}`).digest('base64url')
    t.equal((await rejection(ti.verify(`${h}.${p}.${other}`))).code, 'INVALID_SIGNATURE', 'another secret')
    t.equal(ti.stats().verifiedCacheHits, 1)
  })

  t.test(`${path}: tokens without kid are verified each time (their key must stay unambiguous)`, async (t) => {
    const a = await testKey('RS256', 'a')
    const ks = await keyServer(t, jwks(a))
    const ti = service(t, { signatureCheck, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
    const noKid = await sign(a, { iss: ks.url, sub: 'single', aud: AUD }, { header: { kid: undefined } })
    for (let i = 0; i < 3; i++) t.equal((await ti.verify(noKid)).sub, 'single')
    t.equal(ti.stats().verifiedCacheSize, 0)
  })
}

t.test('verifiedCacheSize and signatureCheck are validated', async (t) => {
  for (const bad of [0, -1, 1.5, '10']) t.throws(() => resolveOptions({ verifiedCacheSize: bad as never }), /TRUSTED_ISSUERS: option verifiedCacheSize/)
  t.throws(() => resolveOptions({ signatureCheck: 'threads' as never }), /TRUSTED_ISSUERS: option signatureCheck/)
  t.equal(resolveOptions({}).verifiedCacheSize, 10_000)
  t.ok(['pool', 'inline'].includes(resolveOptions({}).signatureCheck))
})

t.test('cached() answers hits synchronously, and authenticate serves repeated external tokens from it', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { trustedIssuers, authenticate } = await import('../../index.ts')
  const key = await testKey()
  const idp = await keyServer(t, jwks(key))
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(trustedIssuers, { issuers: [{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: [AUD], rolesClaim: 'roles' }] })
  await app.register(authenticate)
  app.get('/me', { onRequest: app.authenticate }, async (request) => ({ sub: request.user?.sub, roles: request.user?.roles, external: request.user?.external }))
  const token = await sign(key, { iss: idp.url, sub: 'q', aud: AUD, roles: ['reader'] })
  t.equal(app.trustedIssuers.cached(token), undefined, 'not cached yet')
  const me = async (tok: string) => app.inject({ url: '/me', headers: { authorization: `Bearer ${tok}` } })
  for (let i = 0; i < 2; i++) t.same((await me(token)).json(), { sub: 'q', roles: ['reader'], external: true })
  t.equal(app.trustedIssuers.stats().verifiedCacheSize, 1)
  t.same(app.trustedIssuers.cached(token), await app.trustedIssuers.verify(token), 'cached() answers what verify() answers')
  t.equal(app.trustedIssuers.cached(flipSignatureByte(token, 0)), undefined, 'never for a tampered token')
  const hits = app.trustedIssuers.stats().verifiedCacheHits
  t.same((await me(token)).json(), { sub: 'q', roles: ['reader'], external: true })
  t.equal(app.trustedIssuers.stats().verifiedCacheHits, hits + 1, 'the request was served from the cache')
  for (const index of [0, -1]) {
    const res = await me(flipSignatureByte(token, index))
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'INVALID_SIGNATURE', 'a tampered copy over HTTP: INVALID_SIGNATURE')
  }
})
