// The key cache against local JWKS servers we control: single flight, kid floods, the
// cooldown, stale-if-error, cold-cache outages, replacement of the key set, structured
// per-issuer keys, and issuers that must cost no fetch at all.
import t from 'tap'
import { createTrustedIssuers, resolveOptions, type TrustedIssuersOptions } from '../../plugins/trusted-issuers/index.ts'
import { jwks, keyServer, manualClock, rawToken, rejection, sign, testKey, type TestContext } from './helpers.ts'

const AUD = 'my-api'

function service (t: TestContext, options: TrustedIssuersOptions): ReturnType<typeof createTrustedIssuers> {
  const ti = createTrustedIssuers(resolveOptions(options))
  t.teardown(() => ti.close())
  return ti
}

t.test('500 concurrent first requests cause exactly one JWKS fetch', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t)
  // Hold the answer until all 500 verifications are waiting, so they truly overlap.
  let release: () => void = () => {}
  let arrived: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const fetched = new Promise<void>((resolve) => { arrived = resolve })
  ks.handle((_req, res) => {
    arrived()
    gate.then(() => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(jwks(key)))
    }, () => {})
  })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const tokens = await Promise.all(Array.from({ length: 500 }, (_, i) => sign(key, { iss: ks.url, sub: `user-${i}`, aud: AUD })))
  const pending = tokens.map((token) => ti.verify(token))
  // Every verification has joined the one fetch by the time the server sees it.
  await fetched
  release()
  const users = await Promise.all(pending)
  t.equal(users.length, 500)
  t.same(users.map((u) => u.sub), tokens.map((_, i) => `user-${i}`), 'each request got its own subject')
  t.equal(ks.count('/jwks'), 1, 'one outbound fetch for 500 concurrent misses')
  t.equal(ti.stats().fetches, 1)
})

t.test('1,000 random kids cause at most a handful of fetches', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t, jwks(key))
  const ti = service(t, { cooldownMs: 30_000, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  t.equal((await ti.verify(await sign(key, { iss: ks.url, sub: 'warm', aud: AUD }))).sub, 'warm')
  const codes = new Map<string, number>()
  for (let i = 0; i < 1000; i++) {
    const forged = await sign(key, { iss: ks.url, sub: 'x', aud: AUD }, { header: { kid: `random-${i}-${Math.random()}` } })
    const err = await rejection(ti.verify(forged))
    codes.set(err.code, (codes.get(err.code) ?? 0) + 1)
  }
  t.same([...codes], [['INVALID_TOKEN', 1000]], 'every random kid is an invalid token (401), never 503 or 200')
  t.ok(ks.count('/jwks') <= 2, `fetches: ${ks.count('/jwks')} (the warm-up plus at most one refetch per cooldown)`)
  t.equal(ti.stats().unknownKids, 1000)

  // Concurrent flood from a cold start: still bounded.
  const cold = await keyServer(t, jwks(key))
  const ti2 = service(t, { issuers: [{ issuer: cold.url, jwksUri: `${cold.url}/jwks`, audiences: [AUD] }] })
  const flood = await Promise.all(Array.from({ length: 1000 }, (_, i) => sign(key, { iss: cold.url, sub: 'x', aud: AUD }, { header: { kid: `r${i}` } })))
  const results = await Promise.all(flood.map((tok) => rejection(ti2.verify(tok))))
  t.ok(results.every((r) => r.code === 'INVALID_TOKEN'))
  t.ok(cold.count('/jwks') <= 2, `cold concurrent flood fetches: ${cold.count('/jwks')}`)

  // A tiny negative cache changes memory, not the fetch bound: the cooldown still holds.
  const small = await keyServer(t, jwks(key))
  const ti3 = service(t, { negativeCacheSize: 10, issuers: [{ issuer: small.url, jwksUri: `${small.url}/jwks`, audiences: [AUD] }] })
  for (let i = 0; i < 200; i++) {
    const tok = await sign(key, { iss: small.url, sub: 'x', aud: AUD }, { header: { kid: `s${i % 50}` } })
    t.equal((await rejection(ti3.verify(tok))).code, 'INVALID_TOKEN')
  }
  t.ok(small.count('/jwks') <= 2, `negativeCacheSize 10, 200 kid misses: ${small.count('/jwks')} fetches`)
})

t.test('a kid published later is picked up after the cooldown, not before', async (t) => {
  const a = await testKey('RS256', 'a')
  const b = await testKey('ES256', 'b')
  const ks = await keyServer(t, jwks(a))
  const clock = manualClock()
  const ti = service(t, { clock: clock.now, cooldownMs: 1000, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], algorithms: ['RS256', 'ES256'] }] })
  const tokenB = await sign(b, { iss: ks.url, sub: 'b', aud: AUD })
  t.equal((await rejection(ti.verify(tokenB))).code, 'INVALID_TOKEN')
  t.equal(ks.count('/jwks'), 1)
  ks.serve(jwks(a, b))
  t.equal((await rejection(ti.verify(tokenB))).code, 'INVALID_TOKEN', 'remembered as unknown during the cooldown')
  t.equal(ks.count('/jwks'), 1)
  clock.advance(999)
  t.equal((await rejection(ti.verify(tokenB))).code, 'INVALID_TOKEN', 'one millisecond before the cooldown ends')
  t.equal(ks.count('/jwks'), 1)
  clock.advance(1)
  t.equal((await ti.verify(tokenB)).sub, 'b')
  t.equal(ks.count('/jwks'), 2)
})

t.test('a refresh replaces the key set: a removed key stops verifying after cacheMaxAge', async (t) => {
  const a = await testKey('RS256', 'a')
  const b = await testKey('RS256', 'b')
  const ks = await keyServer(t, jwks(a, b))
  const clock = manualClock()
  const ti = service(t, { clock: clock.now, cooldownMs: 100, cacheMaxAgeMs: 1000, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const tokenA = await sign(a, { iss: ks.url, sub: 'a', aud: AUD })
  t.equal((await ti.verify(tokenA)).sub, 'a')
  ks.serve(jwks(b))
  clock.advance(999)
  t.equal((await ti.verify(tokenA)).sub, 'a', 'still cached before the max age')
  clock.advance(1)
  t.equal((await rejection(ti.verify(tokenA))).code, 'INVALID_TOKEN', 'gone after the max age (replaced, not merged)')
  t.equal(ks.count('/jwks'), 2)
})

t.test('provider down: a warm cache keeps working (stale-if-error), a cold cache answers 503', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t, jwks(key))
  const clock = manualClock()
  const opts = { clock: clock.now, cooldownMs: 100, cacheMaxAgeMs: 200, maxStaleMs: 60_000 }
  const ti = service(t, { ...opts, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const token = await sign(key, { iss: ks.url, sub: 'warm', aud: AUD })
  await ti.verify(token)
  await new Promise<void>((resolve) => {
    ks.server.closeAllConnections()
    ks.server.close(() => resolve())
  })
  clock.advance(250)
  t.equal((await ti.verify(token)).sub, 'warm', 'accepted from the stale cache while the provider is down')
  const stats = ti.stats()
  t.equal(stats.fetchFailures, 1)
  t.equal(stats.staleServed, 1)
  t.match(stats.issuers[ks.url].lastError, /could not be fetched/)

  // Same provider, cold cache: 503 JWKS_UNAVAILABLE with Retry-After, never 200 or 401.
  const cold = service(t, { ...opts, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const err = await rejection(cold.verify(token))
  t.equal(err.code, 'JWKS_UNAVAILABLE')
  t.equal(err.statusCode, 503)
  t.match(err.headers, { 'retry-after': /^\d+$/ })
})

t.test('cold cache outage is not remembered: the first request after recovery succeeds', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t)
  ks.handle((_req, res) => { res.statusCode = 502; res.end('bad gateway') })
  const clock = manualClock()
  const ti = service(t, { clock: clock.now, cooldownMs: 1000, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const token = await sign(key, { iss: ks.url, sub: 'back', aud: AUD })
  t.equal((await rejection(ti.verify(token))).code, 'JWKS_UNAVAILABLE')
  t.equal((await rejection(ti.verify(token))).code, 'JWKS_UNAVAILABLE', 'inside the cooldown: no new fetch, still 503')
  t.equal(ks.count('/jwks'), 1)
  ks.serve(jwks(key))
  clock.advance(1000)
  t.equal((await ti.verify(token)).sub, 'back')
  t.equal(ks.count('/jwks'), 2)
})

t.test('after a failure the next fetch waits only the failure backoff, not the whole cooldown', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t)
  ks.handle((_req, res) => { res.statusCode = 503; res.end() })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const token = await sign(key, { iss: ks.url, sub: 'blip', aud: AUD })
  const err = await rejection(ti.verify(token))
  t.equal(err.code, 'JWKS_UNAVAILABLE')
  t.match(err.headers, { 'retry-after': /^[1-5]$/ }, 'default backoff 5 s (the cooldown is 30 s)')

  const quick = await keyServer(t)
  quick.handle((_req, res) => { res.statusCode = 503; res.end() })
  const clock = manualClock()
  const ti2 = service(t, { clock: clock.now, failureBackoffMs: 200, issuers: [{ issuer: quick.url, jwksUri: `${quick.url}/jwks`, audiences: [AUD] }] })
  const token2 = await sign(key, { iss: quick.url, sub: 'blip', aud: AUD })
  t.equal((await rejection(ti2.verify(token2))).code, 'JWKS_UNAVAILABLE')
  quick.serve(jwks(key))
  clock.advance(199)
  t.equal((await rejection(ti2.verify(token2))).code, 'JWKS_UNAVAILABLE', 'inside the backoff: still 503, no fetch')
  t.equal(quick.count('/jwks'), 1)
  clock.advance(1)
  t.equal((await ti2.verify(token2)).sub, 'blip', 'recovered after the backoff although the 30 s cooldown has not passed')
  t.equal(quick.count('/jwks'), 2)
})

t.test('beyond maxStale a down provider means 503', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t, jwks(key))
  const clock = manualClock()
  const ti = service(t, { clock: clock.now, cooldownMs: 50, cacheMaxAgeMs: 100, maxStaleMs: 1500, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const token = await sign(key, { iss: ks.url, sub: 'old', aud: AUD })
  await ti.verify(token)
  ks.handle((_req, res) => { res.statusCode = 500; res.end() })
  clock.advance(150)
  t.equal((await ti.verify(token)).sub, 'old', 'stale but within maxStale')
  clock.advance(1350)
  t.equal((await ti.verify(token)).sub, 'old', 'exactly maxStale old')
  clock.advance(1)
  t.equal((await rejection(ti.verify(token))).code, 'JWKS_UNAVAILABLE', 'older than maxStale')
})

t.test('an unknown kid while the provider is down is an outage (503), not a bad token', async (t) => {
  const key = await testKey('RS256', 'known')
  const ks = await keyServer(t, jwks(key))
  const clock = manualClock()
  const ti = service(t, { clock: clock.now, cooldownMs: 50, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  await ti.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD }))
  ks.handle((_req, res) => { res.statusCode = 503; res.end() })
  clock.advance(80)
  const rotated = await sign(key, { iss: ks.url, sub: 's', aud: AUD }, { header: { kid: 'rotated' } })
  const err = await rejection(ti.verify(rotated))
  t.equal(err.code, 'JWKS_UNAVAILABLE')
  t.equal((await ti.verify(await sign(key, { iss: ks.url, sub: 's2', aud: AUD }))).sub, 's2', 'known kids keep working')
})

t.test("issuer A's token signed with issuer B's key under the same kid is rejected", async (t) => {
  const keyA = await testKey('RS256', 'shared-kid')
  const keyB = await testKey('RS256', 'shared-kid')
  const ksA = await keyServer(t, jwks(keyA))
  const ksB = await keyServer(t, jwks(keyB))
  const ti = service(t, {
    issuers: [
      { issuer: ksA.url, jwksUri: `${ksA.url}/jwks`, audiences: [AUD] },
      { issuer: ksB.url, jwksUri: `${ksB.url}/jwks`, audiences: [AUD] }
    ]
  })
  // Warm both caches with genuine tokens.
  t.equal((await ti.verify(await sign(keyA, { iss: ksA.url, sub: 'a', aud: AUD }))).iss, ksA.url)
  t.equal((await ti.verify(await sign(keyB, { iss: ksB.url, sub: 'b', aud: AUD }))).iss, ksB.url)
  const forged = await sign(keyB, { iss: ksA.url, sub: 'admin', aud: AUD })
  t.equal((await rejection(ti.verify(forged))).code, 'INVALID_SIGNATURE')
  const forgedOther = await sign(keyA, { iss: ksB.url, sub: 'admin', aud: AUD })
  t.equal((await rejection(ti.verify(forgedOther))).code, 'INVALID_SIGNATURE')
})

t.test('iss arrays, non-strings and near-miss issuers are rejected with zero fetches', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t, jwks(key))
  const evil = await keyServer(t, jwks(key))
  const issuer = `${ks.url}/realms/main`
  const ti = service(t, { issuers: [{ issuer, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const host = ks.url.replace('http://', '')
  const cases: Array<[string, unknown, string]> = [
    ['array with the good issuer last', [evil.url, issuer], 'UNTRUSTED_ISSUER'],
    ['array with only the good issuer', [issuer], 'UNTRUSTED_ISSUER'],
    ['object', { iss: issuer }, 'UNTRUSTED_ISSUER'],
    ['number', 1, 'UNTRUSTED_ISSUER'],
    ['null', null, 'UNTRUSTED_ISSUER'],
    ['trailing slash', `${issuer}/`, 'UNTRUSTED_ISSUER'],
    ['upper case', issuer.toUpperCase(), 'UNTRUSTED_ISSUER'],
    ['userinfo', `http://${host}@${evil.url.replace('http://', '')}/realms/main`, 'UNTRUSTED_ISSUER'],
    ['suffix host', `${ks.url}.evil.test/realms/main`, 'UNTRUSTED_ISSUER'],
    ['leading space', ` ${issuer}`, 'UNTRUSTED_ISSUER'],
    ['prefix', `${ks.url}/realms/mai`, 'UNTRUSTED_ISSUER'],
    ['metadata address', 'http://169.254.169.254/', 'UNTRUSTED_ISSUER'],
    ['local redis', 'http://localhost:6379/', 'UNTRUSTED_ISSUER'],
    ['empty', '', 'UNTRUSTED_ISSUER']
  ]
  for (const [name, iss, code] of cases) {
    const token = await sign(key, { iss: iss as string, sub: 's', aud: AUD }, { header: { jku: `${evil.url}/jwks`, x5u: `${evil.url}/x5u` } })
    t.equal((await rejection(ti.verify(token))).code, code, name)
    t.equal(ti.has(iss), false, `has() is false for ${name}`)
  }
  t.equal((await rejection(ti.verify(await sign(key, { sub: 's', aud: AUD })))).code, 'MISSING_CLAIM', 'no iss at all')
  t.equal(ks.total(), 0, 'the allowlisted key source was never asked')
  t.equal(evil.total(), 0, 'no request to any other host')
  t.equal(ti.stats().fetches, 0)
  t.equal(ti.stats().rejectedIssuers, cases.length)
})

t.test('jku, x5u, jwk and x5c headers are ignored: keys come only from configuration', async (t) => {
  const good = await testKey('RS256', 'good')
  const attacker = await testKey('RS256', 'good')
  const ks = await keyServer(t, jwks(good))
  const evil = await keyServer(t, jwks(attacker))
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const forged = await sign(attacker, { iss: ks.url, sub: 'admin', aud: AUD }, {
    header: { jku: `${evil.url}/jwks`, x5u: `${evil.url}/cert`, jwk: attacker.jwk, x5c: ['MIIB'] }
  })
  t.equal((await rejection(ti.verify(forged))).code, 'INVALID_SIGNATURE')
  t.equal(evil.total(), 0, 'the attacker host was never contacted')
  t.equal(ks.count('/jwks'), 1)
  const genuine = await sign(good, { iss: ks.url, sub: 'u', aud: AUD }, { header: { jku: `${evil.url}/jwks` } })
  t.equal((await ti.verify(genuine)).sub, 'u', 'a genuine token with a stray jku still verifies against the configured keys')
  t.equal(evil.total(), 0)
})

t.test('an HTTP redirect from the key source is not followed', async (t) => {
  const key = await testKey()
  const target = await keyServer(t, jwks(key))
  const ks = await keyServer(t)
  ks.handle((_req, res) => { res.statusCode = 302; res.setHeader('location', `${target.url}/jwks`); res.end() })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const err = await rejection(ti.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD })))
  t.equal(err.code, 'JWKS_UNAVAILABLE')
  t.equal(target.total(), 0, 'the redirect target was never requested')
})

t.test('discovery: an issuer mismatch or a non-https jwks_uri in the metadata is refused', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t)
  let metadata: Record<string, unknown> = {}
  ks.handle((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(req.url === '/.well-known/openid-configuration' ? metadata : jwks(key)))
  })
  const cases: Array<[string, Record<string, unknown>]> = [
    ['trailing slash issuer', { issuer: `${ks.url}/`, jwks_uri: `${ks.url}/jwks` }],
    ['other issuer', { issuer: 'https://evil.example', jwks_uri: `${ks.url}/jwks` }],
    ['no issuer', { jwks_uri: `${ks.url}/jwks` }],
    ['http jwks_uri on a public host', { issuer: ks.url, jwks_uri: 'http://keys.example.com/jwks' }],
    ['no jwks_uri', { issuer: ks.url }]
  ]
  for (const [name, doc] of cases) {
    metadata = doc
    const ti = service(t, { issuers: [{ issuer: ks.url, discovery: true, audiences: [AUD] }] })
    const err = await rejection(ti.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD })))
    t.equal(err.code, 'JWKS_UNAVAILABLE', name)
  }
  t.equal(ks.count('/jwks'), 0, 'no JWKS was fetched from a refused discovery document')
  metadata = { issuer: ks.url, jwks_uri: `${ks.url}/jwks` }
  const ok = service(t, { issuers: [{ issuer: ks.url, discovery: true, audiences: [AUD] }] })
  t.equal((await ok.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD }))).sub, 's')
})

t.test('a token without kid is accepted only when one key fits', async (t) => {
  const a = await testKey('RS256', 'a')
  const b = await testKey('RS256', 'b')
  const ks = await keyServer(t, jwks(a))
  const clock = manualClock()
  const ti = service(t, { clock: clock.now, cooldownMs: 50, cacheMaxAgeMs: 100, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const noKid = await sign(a, { iss: ks.url, sub: 'single', aud: AUD }, { header: { kid: undefined } })
  t.notOk('kid' in JSON.parse(Buffer.from(noKid.split('.')[0], 'base64url').toString()))
  t.equal((await ti.verify(noKid)).sub, 'single')
  ks.serve(jwks(a, b))
  clock.advance(150)
  t.equal((await rejection(ti.verify(noKid))).code, 'INVALID_TOKEN', 'two candidate keys: ambiguous')
})

t.test('malformed tokens never reach the network', async (t) => {
  const ks = await keyServer(t, { keys: [] })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const header = { alg: 'RS256', kid: 'k' }
  const payload = { iss: ks.url, sub: 's', aud: AUD, exp: Math.floor(Date.now() / 1000) + 60 }
  const bad = [
    '',
    'abc',
    'a.b',
    'a.b.c.d.e',
    `${rawToken(header, payload)}.extra`,
    rawToken(header, payload, ''),
    rawToken(header, payload).replace(/\.[^.]+$/, '.c2ln+/='),
    rawToken(header, [payload]),
    rawToken(header, null),
    rawToken(header, 'str'),
    rawToken(header, 123),
    rawToken([header], payload),
    rawToken({ ...header, alg: 'none' }, payload),
    rawToken({ ...header, alg: 'NONE' }, payload),
    rawToken({ ...header, alg: 'HS256' }, payload),
    rawToken({ ...header, kid: 'x'.repeat(300) }, payload),
    rawToken({ ...header, kid: "x' UNION SELECT 'k'--" }, payload),
    rawToken({ ...header, kid: 5 }, payload),
    rawToken({ ...header, crit: ['exp'] }, payload),
    rawToken({ ...header, b64: false, crit: ['b64'] }, payload),
    'x'.repeat(9000)
  ]
  for (const token of bad) {
    const err = await rejection(ti.verify(token))
    t.equal(err.statusCode, 401, `401 for ${token.slice(0, 40)}`)
  }
  t.equal(ks.total(), 0)
})
