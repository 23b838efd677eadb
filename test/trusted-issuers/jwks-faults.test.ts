// Hostile or broken key sources: a server that never answers, garbage bodies, a 10 MB stream,
// too many keys, and keys that must never be used (symmetric, private, weak RSA, for
// encryption, contradicting alg, alg-less RSA under a non-RS alg).
import t from 'tap'
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto'
import { exportJWK, SignJWT } from 'jose'
import { createTrustedIssuers, resolveOptions, type TrustedIssuersOptions } from '../../plugins/trusted-issuers/index.ts'
import { addressProblem, importJwk } from '../../plugins/trusted-issuers/jwks.ts'
import { lookup } from 'node:dns/promises'
import { createServer } from 'node:net'
import { hostname } from 'node:os'
import { jwks, keyServer, manualClock, rejection, sign, testKey, type TestContext } from './helpers.ts'

const AUD = 'my-api'

function service (t: TestContext, options: TrustedIssuersOptions): ReturnType<typeof createTrustedIssuers> {
  const ti = createTrustedIssuers(resolveOptions(options))
  t.teardown(() => ti.close())
  return ti
}

t.test('a key source that never answers: aborted at the timeout, 503, and one fetch for many waiters', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t)
  ks.handle(() => { /* never answers */ })
  const timeoutMs = 300
  const ti = service(t, { timeoutMs, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const token = await sign(key, { iss: ks.url, sub: 's', aud: AUD })
  const started = performance.now()
  const errors = await Promise.all(Array.from({ length: 50 }, () => rejection(ti.verify(token))))
  const elapsed = performance.now() - started
  t.ok(errors.every((e) => e.code === 'JWKS_UNAVAILABLE' && e.statusCode === 503), 'all 503 JWKS_UNAVAILABLE')
  t.equal(ks.count('/jwks'), 1, 'one request for 50 waiting verifications')
  t.ok(elapsed / timeoutMs < 20, `answered after ${Math.round(elapsed)} ms for a ${timeoutMs} ms timeout`)
  t.match(ti.stats().issuers[ks.url].lastError, /did not answer within 300 ms/)
})

t.test('a slow body (headers sent, body trickling) is also cut at the timeout', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t)
  ks.handle((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.write('{"keys":[')
    const timer = setInterval(() => res.write(' '), 50)
    res.on('close', () => clearInterval(timer))
  })
  const ti = service(t, { timeoutMs: 300, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  const err = await rejection(ti.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD })))
  t.equal(err.code, 'JWKS_UNAVAILABLE')
})

t.test('garbage answers are refused, and a previous good key set is kept', async (t) => {
  const key = await testKey()
  const garbage: Array<[string, string, string]> = [
    ['HTML', 'text/html', '<html><body>Login</body></html>'],
    ['invalid JSON', 'application/json', '{"keys": [ {'],
    ['empty object', 'application/json', '{}'],
    ['empty key list', 'application/json', '{"keys":[]}'],
    ['keys not an array', 'application/json', '{"keys":{"kty":"RSA"}}'],
    ['JSON array', 'application/json', '[]'],
    ['JSON null', 'application/json', 'null'],
    ['empty body', 'application/json', ''],
    ['UTF-16 BOM', 'application/json', '\ufeff{"keys":[]}']
  ]
  for (const [name, type, body] of garbage) {
    const ks = await keyServer(t)
    ks.handle((_req, res) => { res.setHeader('content-type', type); res.end(body) })
    const clock = manualClock()
    const ti = service(t, { clock: clock.now, cooldownMs: 50, cacheMaxAgeMs: 100, issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
    const token = await sign(key, { iss: ks.url, sub: 's', aud: AUD })
    t.equal((await rejection(ti.verify(token))).code, 'JWKS_UNAVAILABLE', `cold cache, ${name}: 503`)

    // A good set first, then garbage: the good set stays in use.
    ks.serve(jwks(key))
    clock.advance(60)
    t.equal((await ti.verify(token)).sub, 's', `${name}: recovered`)
    ks.handle((_req, res) => { res.setHeader('content-type', type); res.end(body) })
    clock.advance(120)
    t.equal((await ti.verify(token)).sub, 's', `${name}: previous keys kept`)
    t.equal(ti.stats().fetchFailures, 2)
  }
})

t.test('a 10 MB JWKS stream is aborted at the size cap with bounded memory', async (t) => {
  const key = await testKey()
  const ks = await keyServer(t)
  const total = 10 * 1024 * 1024
  let written = 0
  let closedEarly = false
  let closed: () => void = () => {}
  const connectionClosed = new Promise<void>((resolve) => { closed = resolve })
  ks.handle((_req, res) => {
    res.setHeader('content-type', 'application/json')
    const chunk = Buffer.alloc(16 * 1024, 0x20)
    res.write('{"keys":[')
    const pump = (): void => {
      while (written < total) {
        written += chunk.length
        if (!res.write(chunk)) { res.once('drain', pump); return }
      }
      res.end(']}')
    }
    res.on('close', () => { closedEarly = written < total; closed() })
    pump()
  })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  global.gc?.()
  const heapBefore = process.memoryUsage().heapUsed
  const err = await rejection(ti.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD })))
  const heapAfter = process.memoryUsage().heapUsed
  t.equal(err.code, 'JWKS_UNAVAILABLE')
  await connectionClosed
  t.ok(closedEarly, `the connection was closed after ${(written / 1024).toFixed(0)} KiB of ${total / 1024} KiB`)
  t.match(ti.stats().issuers[ks.url].lastError, /more than 262144 bytes/)
  t.comment(`heap delta ${((heapAfter - heapBefore) / 1024 / 1024).toFixed(1)} MiB; server wrote ${(written / 1024).toFixed(0)} KiB`)

  // A lying Content-Length does not help: the cap counts bytes actually read.
  const liar = await keyServer(t)
  liar.handle((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.setHeader('content-length', '20')
    res.end(JSON.stringify(jwks(key)).slice(0, 20))
  })
  const ti2 = service(t, { issuers: [{ issuer: liar.url, jwksUri: `${liar.url}/jwks`, audiences: [AUD] }] })
  t.equal((await rejection(ti2.verify(await sign(key, { iss: liar.url, sub: 's', aud: AUD })))).code, 'JWKS_UNAVAILABLE')
})

t.test('a compressed answer (a possible decompression bomb) is refused', async (t) => {
  const { gzipSync } = await import('node:zlib')
  const key = await testKey()
  const ks = await keyServer(t)
  // 64 MiB of spaces compress to ~64 KiB: under the byte cap on the wire, huge once inflated.
  const bomb = gzipSync(Buffer.concat([Buffer.from('{"keys":['), Buffer.alloc(64 * 1024 * 1024, 0x20), Buffer.from(']}')]))
  ks.handle((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.setHeader('content-encoding', 'gzip')
    res.end(bomb)
  })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  t.equal((await rejection(ti.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD })))).code, 'JWKS_UNAVAILABLE')
  t.match(ti.stats().issuers[ks.url].lastError, /content-encoding gzip/)
  t.comment(`bomb: ${(bomb.length / 1024).toFixed(0)} KiB on the wire`)
})

t.test('a JWKS with more keys than maxKeys is refused as a whole', async (t) => {
  const key = await testKey('RS256', 'real')
  const filler = { kty: 'EC', crv: 'P-256', x: key.jwk.n?.slice(0, 43), y: key.jwk.n?.slice(0, 43) }
  const many = { keys: [key.jwk, ...Array.from({ length: 150 }, (_, i) => ({ ...filler, kid: `f${i}` }))] }
  const ks = await keyServer(t, many)
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD] }] })
  t.equal((await rejection(ti.verify(await sign(key, { iss: ks.url, sub: 's', aud: AUD })))).code, 'JWKS_UNAVAILABLE')
  t.match(ti.stats().issuers[ks.url].lastError, /151 keys, more than the 100 allowed/)
})

t.test('keys that must never be used are ignored; tokens needing them get 401', async (t) => {
  const rsa = await testKey('RS256', 'rsa')
  const secret = Buffer.alloc(32, 7)
  const octJwk = { kty: 'oct', k: secret.toString('base64url'), kid: 'oct', alg: 'HS256' }

  // The JWKS holds only an oct key: HS256 is not allowed for a JWKS issuer, and even with the
  // token's alg set to RS256 no symmetric key ever becomes a verification key.
  const ks = await keyServer(t, { keys: [octJwk] })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], algorithms: ['RS256'] }] })
  const hsToken = await new SignJWT({ iss: ks.url, sub: 'forged', aud: AUD, exp: Math.floor(Date.now() / 1000) + 60 })
    .setProtectedHeader({ alg: 'HS256', kid: 'oct' }).sign(secret)
  t.equal((await rejection(ti.verify(hsToken))).code, 'INVALID_TOKEN', 'HS256 with the published oct key: refused before any key is read')
  const rsaKidOct = await sign(rsa, { iss: ks.url, sub: 'x', aud: AUD }, { header: { kid: 'oct' } })
  t.equal((await rejection(ti.verify(rsaKidOct))).code, 'INVALID_TOKEN', 'kid points at the oct key: no usable key')
  t.equal(ti.stats().skippedKeys, 1)

  // Private RSA key (has d), 1024-bit RSA, use: enc, key_ops without verify, alg contradicting the kty.
  const { privateKey: weakPriv, publicKey: weakPub } = generateKeyPairSync('rsa', { modulusLength: 1024 })
  const weakJwk = { ...await exportJWK(weakPub), kid: 'weak', alg: 'RS256' }
  const privJwk = { ...await exportJWK((await testKey('RS256')).privateKey), kid: 'private', alg: 'RS256' }
  const encKey = await testKey('RS256', 'enc')
  const opsKey = await testKey('RS256', 'ops')
  const lieKey = await testKey('RS256', 'lie')
  const docs = { keys: [weakJwk, privJwk, { ...encKey.jwk, use: 'enc' }, { ...opsKey.jwk, key_ops: ['encrypt'] }, { ...lieKey.jwk, alg: 'ES256' }, rsa.jwk] }
  const ks2 = await keyServer(t, docs)
  const ti2 = service(t, { issuers: [{ issuer: ks2.url, jwksUri: `${ks2.url}/jwks`, audiences: [AUD], algorithms: ['RS256', 'ES256'] }] })
  // jose refuses to sign with RSA 1024, so this token is signed by hand (RS256 = PKCS#1 v1.5 SHA-256).
  const input = [{ alg: 'RS256', kid: 'weak' }, { iss: ks2.url, sub: 'weak', aud: AUD, exp: Math.floor(Date.now() / 1000) + 60 }]
    .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.')
  const weakToken = `${input}.${cryptoSign('sha256', Buffer.from(input), weakPriv).toString('base64url')}`
  t.equal((await rejection(ti2.verify(weakToken))).code, 'INVALID_TOKEN', 'RSA 1024 key ignored')
  for (const k of [encKey, opsKey]) {
    t.equal((await rejection(ti2.verify(await sign(k, { iss: ks2.url, sub: 's', aud: AUD })))).code, 'INVALID_TOKEN', `${k.kid} key ignored`)
  }
  t.equal((await rejection(ti2.verify(await sign(lieKey, { iss: ks2.url, sub: 's', aud: AUD })))).code, 'INVALID_TOKEN', 'RSA key labelled ES256 ignored')
  t.equal((await ti2.verify(await sign(rsa, { iss: ks2.url, sub: 'ok', aud: AUD }))).sub, 'ok', 'the one good key still works')
  t.equal(ti2.stats().skippedKeys, 5)
})

t.test('an RSA key without alg verifies only RS* tokens, and a key verifies only its own alg', async (t) => {
  const ps = await testKey('PS256', 'noalg')
  const rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const noAlg = { ...await exportJWK(rsaPair.publicKey), kid: 'noalg' }
  const ks = await keyServer(t, { keys: [noAlg] })
  const ti = service(t, { issuers: [{ issuer: ks.url, jwksUri: `${ks.url}/jwks`, audiences: [AUD], algorithms: ['RS256', 'PS256'] }] })
  const rsToken = await new SignJWT({ iss: ks.url, sub: 'rs', aud: AUD, exp: Math.floor(Date.now() / 1000) + 60 })
    .setProtectedHeader({ alg: 'RS256', kid: 'noalg' }).sign(rsaPair.privateKey)
  t.equal((await ti.verify(rsToken)).sub, 'rs')
  // Same RSA key, PS256 signature: a PS256 token must not be verified with an alg-less key.
  const psSameKey = await new SignJWT({ iss: ks.url, sub: 'ps', aud: AUD, exp: Math.floor(Date.now() / 1000) + 60 })
    .setProtectedHeader({ alg: 'PS256', kid: 'noalg' }).sign(rsaPair.privateKey)
  t.equal((await rejection(ti.verify(psSameKey))).code, 'INVALID_TOKEN')
  t.equal((await rejection(ti.verify(await sign(ps, { iss: ks.url, sub: 'ps', aud: AUD })))).code, 'INVALID_TOKEN')

  const es = await testKey('ES256', 'es')
  t.equal(typeof importJwk({ ...es.jwk, alg: 'ES384' }), 'string', 'P-256 labelled ES384 is refused')
  t.equal(typeof importJwk({ ...es.jwk, alg: 'none' }), 'string', 'alg none is refused')
  t.equal(typeof importJwk({ ...es.jwk, crv: 'secp256k1' }), 'string', 'unsupported curve refused')
  t.equal(typeof importJwk({ ...es.jwk, use: 'sig', key_ops: ['verify'] }), 'object', 'a well-formed key is imported')
})

t.test('key sources on non-public addresses are refused at connect time', async (t) => {
  const key = await testKey()
  const token = (iss: string): Promise<string> => sign(key, { iss, sub: 's', aud: AUD })

  // Address literals: refused before any connection.
  for (const uri of ['https://10.0.0.1/jwks', 'https://169.254.169.254/latest/meta-data', 'https://[fd00::1]/jwks', 'https://[::ffff:127.0.0.1]/jwks', 'https://0.0.0.0/jwks']) {
    const ti = service(t, { issuers: [{ issuer: 'https://idp.example.com', jwksUri: uri, audiences: [AUD] }] })
    t.equal((await rejection(ti.verify(await token('https://idp.example.com')))).code, 'JWKS_UNAVAILABLE', uri)
    t.match(ti.stats().issuers['https://idp.example.com'].lastError, /is the non-public address/, `${uri}: refused as non-public`)
  }

  // A discovery document cannot point the fetcher at an internal address either.
  const ks = await keyServer(t, { issuer: '', jwks_uri: 'https://169.254.169.254/jwks' })
  ks.serve({ issuer: ks.url, jwks_uri: 'https://169.254.169.254/jwks' })
  const disc = service(t, { issuers: [{ issuer: ks.url, discovery: true, audiences: [AUD] }] })
  t.equal((await rejection(disc.verify(await token(ks.url)))).code, 'JWKS_UNAVAILABLE')
  t.match(disc.stats().issuers[ks.url].lastError, /non-public address 169\.254\.169\.254/)
})

// The machine's own host name usually resolves (through /etc/hosts) to a loopback or container
// address: a real name -> non-public address resolution, with no DNS server needed.
const name = hostname()
const resolved = await lookup(name, { all: true }).catch(() => [])
const internal = name !== 'localhost' && resolved.length > 0 && resolved.every(({ address }) => addressProblem(address, false, false) !== null)

t.test('a configured name that resolves to a non-public address gets no connection', { skip: internal ? false : `the host name ${name} does not resolve to a non-public address here` }, async (t) => {
  let connections = 0
  const server = createServer((socket) => { connections++; socket.destroy() })
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as { port: number }).port
  const key = await testKey()
  const issuer = 'https://idp.example.com'
  const token = await sign(key, { iss: issuer, sub: 's', aud: AUD })

  const guarded = service(t, { issuers: [{ issuer, jwksUri: `https://${name}:${port}/jwks`, audiences: [AUD] }] })
  t.equal((await rejection(guarded.verify(token))).code, 'JWKS_UNAVAILABLE')
  t.match(guarded.stats().issuers[issuer].lastError, new RegExp(`${name} resolves to the non-public address`))
  t.equal(connections, 0, `${name} -> ${resolved.map((r) => r.address).join(', ')}: no connection was made`)

  // The same source with allowPrivateNetwork: the connection is made (and fails TLS here).
  const internalIdp = service(t, { issuers: [{ issuer, jwksUri: `https://${name}:${port}/jwks`, audiences: [AUD], allowPrivateNetwork: true }] })
  t.equal((await rejection(internalIdp.verify(token))).code, 'JWKS_UNAVAILABLE')
  t.ok(connections >= 1, 'allowPrivateNetwork lets it connect')
})
