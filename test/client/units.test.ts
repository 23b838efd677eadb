// Pure pieces of the client: JWT payload decoding, expiry and refresh planning, clock offset,
// single flight, redaction, option checks (HTTPS unless loopback), URL resolution, storage parsing.
import t from 'tap'
import { inspect } from 'node:util'
import { base64UrlDecode, decodeJwtPayload, tokenExp } from '../../client/jwt.ts'
import { clockOffsetMs, expiryFrom, refreshAtFrom, backgroundTimer } from '../../client/timing.ts'
import { singleFlight } from '../../client/single-flight.ts'
import { scrub, createLog, pathOf } from '../../client/redact.ts'
import { isLoopbackHost, resolveOptions, secureUrl } from '../../client/options.ts'
import { resolveUrl, prepareRequest, attemptInit } from '../../client/request.ts'
import { parseStoredTokens, memoryStorage, webStorage } from '../../client/storage.ts'
import { createClient, GatehouseClientError, GatehouseConfigError, GatehouseHttpError, GatehouseNetworkError } from '../../client/index.ts'

function b64url (value: string): string {
  return Buffer.from(value).toString('base64url')
}
function jwt (payload: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: 'RS256', typ: 'at+jwt' }))}.${b64url(JSON.stringify(payload))}.${b64url('signature-bytes')}`
}

t.test('decodeJwtPayload reads base64url payloads without verifying, and rejects non-JWTs', async (t) => {
  const token = jwt({ sub: 'u1', exp: 1_900_000_000, name: 'Zoë ✓' })
  t.same(decodeJwtPayload(token), { sub: 'u1', exp: 1_900_000_000, name: 'Zoë ✓' })
  t.equal(tokenExp(token), 1_900_000_000)
  t.equal(decodeJwtPayload('a.b'), null, 'two parts')
  t.equal(decodeJwtPayload('a.!!!.c'), null, 'not base64url')
  t.equal(decodeJwtPayload(`x.${b64url('[1,2]')}.y`), null, 'payload not an object')
  t.equal(decodeJwtPayload(`x.${b64url('not json')}.y`), null, 'payload not JSON')
  t.equal(tokenExp(jwt({ exp: 'soon' })), undefined, 'a non-numeric exp is ignored')
  // Every padding length decodes like Node's own decoder.
  for (const s of ['', 'a', 'ab', 'abc', 'abcd', '\u00ff\u00fe?>']) {
    t.same(Buffer.from(base64UrlDecode(Buffer.from(s, 'latin1').toString('base64url'))), Buffer.from(s, 'latin1'))
  }
  t.throws(() => base64UrlDecode('ab+/'), 'base64 (not url) alphabet is refused')
})

t.test('clock offset from the Date header, expiry from expires_in and exp', async (t) => {
  const local = Date.parse('2026-01-01T00:00:00Z')
  const serverAhead = new Date(local + 120_000).toUTCString()
  t.equal(clockOffsetMs(serverAhead, local - 100, local + 100), 120_000, 'midpoint of send and receive')
  t.equal(clockOffsetMs(null, 0, 0), undefined)
  t.equal(clockOffsetMs('garbage', 0, 0), undefined)

  // The server clock is 2 minutes ahead: exp (server time) converts back to local time.
  const exp = (local + 120_000 + 900_000) / 1000
  t.equal(expiryFrom({ expiresIn: 900, exp, sentAt: local, offsetMs: 120_000 }), local + 900_000)
  // Without a known offset only expires_in counts (exp would look 2 minutes later than true).
  t.equal(expiryFrom({ expiresIn: 900, exp, sentAt: local, offsetMs: undefined }), local + 900_000)
  // A token whose exp is earlier than expires_in says: the earlier wins.
  t.equal(expiryFrom({ expiresIn: 900, exp: (local + 300_000) / 1000, sentAt: local, offsetMs: 0 }), local + 300_000)
  t.equal(expiryFrom({ expiresIn: undefined, exp: undefined, sentAt: local, offsetMs: 0 }), undefined)
  t.equal(expiryFrom({ expiresIn: -5, exp: undefined, sentAt: local, offsetMs: 0 }), undefined, 'nonsense expires_in is ignored')
})

t.test('refresh is planned skew + jitter before expiry, never in the first half of the lifetime', async (t) => {
  const base = { issuedAt: 0, expiresAt: 900_000, skewMs: 30_000, jitterMs: 5_000 }
  t.equal(refreshAtFrom({ ...base, random: 0 }), 870_000)
  t.equal(refreshAtFrom({ ...base, random: 0.5 }), 867_500)
  const plans = Array.from({ length: 50 }, (_, i) => refreshAtFrom({ ...base, random: i / 50 }))
  t.ok(plans.every((p) => p > 865_000 && p <= 870_000), 'jitter stays within its bound')
  t.ok(new Set(plans).size > 40, 'jitter spreads clients out')
  // A 30 s token with a 30 s skew: refresh at half-life, not immediately (no refresh loop).
  t.equal(refreshAtFrom({ issuedAt: 0, expiresAt: 30_000, skewMs: 30_000, jitterMs: 5_000, random: 0.9 }), 15_000)
})

t.test('backgroundTimer fires, can be cancelled, and does not keep Node alive', async (t) => {
  let fired = 0
  // The background timer is unref'd: a plain timer keeps this test's process alive meanwhile.
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  await new Promise<void>((resolve) => backgroundTimer(() => { fired++; resolve() }, 5))
  t.equal(fired, 1)
  const cancel = backgroundTimer(() => { fired++ }, 5)
  cancel()
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.equal(fired, 1, 'a cancelled timer does not fire')
  // The handle is unref'd: a child process with only this timer pending exits at once.
  const { spawnSync } = await import('node:child_process')
  const script = "import { backgroundTimer } from './client/timing.ts'; backgroundTimer(() => { console.log('fired') }, 60000)"
  const child = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url), encoding: 'utf8', timeout: 20_000 })
  t.equal(child.status, 0, 'the process exited with the timer pending')
  t.notMatch(child.stdout, /fired/)
})

t.test('singleFlight shares one in-flight operation and starts a new one after it settles', async (t) => {
  let calls = 0
  let release: (v: number) => void = () => {}
  const flight = singleFlight(() => { calls++; return new Promise<number>((resolve) => { release = resolve }) })
  const waiting = Array.from({ length: 100 }, () => flight.run())
  t.equal(flight.pending, true)
  release(42)
  t.same(new Set(await Promise.all(waiting)), new Set([42]))
  t.equal(calls, 1, 'one operation for 100 callers')
  t.equal(flight.pending, false)
  const failing = singleFlight(async () => { calls++; throw new Error('boom') })
  await t.rejects(Promise.all([failing.run(), failing.run()]), /boom/)
  t.equal(calls, 2, 'a failure is shared too')
  await t.rejects(failing.run(), /boom/)
  t.equal(calls, 3, 'and not cached: the next caller tries again')
})

t.test('scrub removes known secrets, JWT-shaped strings and Authorization values', async (t) => {
  const token = jwt({ sub: 'x' })
  const out = scrub(`got ${token} and fam.abcdefghijklmnop and Bearer xyz123 ApiKey gh_live_123 short`, ['fam.abcdefghijklmnop', 'short'])
  t.notMatch(out, token)
  t.notMatch(out, 'fam.abcdefghijklmnop')
  t.notMatch(out, 'xyz123')
  t.notMatch(out, 'gh_live_123')
  t.match(out, 'short', 'strings under 8 characters are not treated as secrets')
  const seen: unknown[] = []
  const log = createLog({ info: (m, i) => seen.push(m, i), warn: () => { throw new Error('logger broke') } }, () => ['hunter2-password'])
  log('info', 'msg hunter2-password', { path: '/x hunter2-password', status: 200, nested: { token } as unknown as string, ok: true })
  t.same(seen, ['msg [redacted]', { path: '/x [redacted]', status: 200, ok: true }], 'only scalar fields, scrubbed')
  t.doesNotThrow(() => log('warn', 'x'), 'a throwing logger is contained')
  t.equal(pathOf('https://a.example/p/q?token=abc#frag'), '/p/q', 'paths in logs drop the query')
})

t.test('base URLs: https anywhere, http only to loopback hosts', async (t) => {
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]', 'LOCALHOST']) {
    t.doesNotThrow(() => secureUrl(`http://${host}:3000`, 'baseUrl'), `http://${host} is loopback`)
  }
  for (const url of ['http://example.com', 'http://10.0.0.1', 'http://127.0.0.1.nip.io', 'http://localhost.example.com', 'http://[::2]', 'http://128.0.0.1', 'ftp://localhost', 'ws://localhost']) {
    t.throws(() => createClient({ baseUrl: url }), { code: 'INSECURE_BASE_URL', kind: 'config' }, `${url} is refused`)
  }
  t.notOk(isLoopbackHost('127.0.0.256'))
  t.throws(() => createClient({ baseUrl: 'not a url' }), { code: 'INVALID_OPTION' })
  t.throws(() => createClient({ baseUrl: 'https://user:pw@example.com' }), { code: 'INVALID_OPTION' })
  t.throws(() => createClient({ baseUrl: 'https://example.com/?x=1' }), { code: 'INVALID_OPTION' })
  t.throws(() => createClient({ baseUrl: 'https://example.com', allowedOrigins: ['http://api.example.com'] }), { code: 'INSECURE_BASE_URL' }, 'allowed origins are held to the same rule')
  t.throws(() => createClient({ baseUrl: 'https://example.com', apiKey: 'a key' }), { code: 'INVALID_OPTION' })
  t.throws(() => createClient({ baseUrl: 'https://example.com', apiKey: 'k', credentials: async () => ({ email: 'a', password: 'b' }) }), { code: 'INVALID_OPTION' })
  t.throws(() => createClient({ baseUrl: 'https://example.com', refreshSkewSeconds: -1 }), { code: 'INVALID_OPTION' })
  t.throws(() => createClient({ baseUrl: 'https://example.com', storage: {} as never }), { code: 'INVALID_OPTION' })
  const err = (() => { try { createClient({ baseUrl: 'http://example.com' }) } catch (e) { return e } })()
  t.ok(err instanceof GatehouseConfigError && err instanceof GatehouseClientError)
  const options = { baseUrl: 'https://auth.example.com/gatehouse/' }
  const resolved = resolveOptions(options)
  t.equal(resolved.base, 'https://auth.example.com/gatehouse', 'path prefix kept, trailing slash dropped')
  t.ok(Object.isFrozen(resolved))
  t.same(options, { baseUrl: 'https://auth.example.com/gatehouse/' }, 'the caller\'s object is not mutated')
})

t.test('request URLs resolve against the base and stay on allowed origins', async (t) => {
  const origins = new Set(['https://auth.example.com', 'https://api.example.com'])
  const base = 'https://auth.example.com/gh'
  t.equal(resolveUrl('/auth/me', base, origins), 'https://auth.example.com/gh/auth/me')
  t.equal(resolveUrl('auth/me', base, origins), 'https://auth.example.com/gh/auth/me')
  t.equal(resolveUrl('https://api.example.com/v1/things', base, origins), 'https://api.example.com/v1/things')
  t.throws(() => resolveUrl('https://evil.example.com/steal', base, origins), { code: 'UNTRUSTED_ORIGIN' })
  t.throws(() => resolveUrl('//evil.example.com/steal', base, origins), { code: 'UNTRUSTED_ORIGIN' }, 'protocol-relative URLs are absolute')
  t.throws(() => resolveUrl('http://auth.example.com/x', base, origins), { code: 'UNTRUSTED_ORIGIN' }, 'same host over http is another origin')
})

t.test('bodies: streams and Request bodies are buffered so a retry can resend them', async (t) => {
  const origins = new Set(['https://a.example'])
  const stream = new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode('{"a":')); c.enqueue(new TextEncoder().encode('1}')); c.close() } })
  const fromStream = await prepareRequest('/x', { method: 'post', body: stream, headers: { 'content-type': 'application/json', authorization: 'Bearer caller-set' } }, 'https://a.example', origins)
  t.equal(fromStream.method, 'POST')
  t.equal(new TextDecoder().decode(fromStream.body as Uint8Array), '{"a":1}')
  const init1 = attemptInit(fromStream, 'Bearer one')
  const init2 = attemptInit(fromStream, 'Bearer two')
  t.equal(new Headers(init1.headers).get('authorization'), 'Bearer one', 'the client sets Authorization, replacing the caller\'s')
  t.equal(new Headers(init2.headers).get('authorization'), 'Bearer two')
  t.equal(await new Response(init1.body).text(), await new Response(init2.body).text(), 'both attempts send the same body')
  async function * chunks (): AsyncGenerator<string> { yield 'x='; yield '1' }
  t.equal(new TextDecoder().decode((await prepareRequest('/x', { method: 'POST', body: chunks() as unknown as BodyInit }, 'https://a.example', origins)).body as Uint8Array), 'x=1', 'async iterables (Node Readable) too')
  const request = new Request('https://a.example/y', { method: 'PUT', body: 'payload', headers: { 'x-h': '1' } })
  const fromRequest = await prepareRequest(request, undefined, 'https://a.example', origins)
  t.equal(fromRequest.method, 'PUT')
  t.equal(fromRequest.headers.get('x-h'), '1')
  t.equal(new TextDecoder().decode(fromRequest.body as Uint8Array), 'payload')
  const form = new URLSearchParams({ a: 'b' })
  t.equal((await prepareRequest('/z', { method: 'POST', body: form }, 'https://a.example', origins)).body, form, 'replayable bodies are kept as they are')
})

t.test('storage: stored tokens are validated; memory storage never shows its content', async (t) => {
  t.equal(parseStoredTokens(null), null)
  t.equal(parseStoredTokens('{bad json'), null)
  t.equal(parseStoredTokens({ accessToken: 'a', refreshToken: '', expiresAt: 1 }), null)
  t.same(parseStoredTokens({ accessToken: 'a', refreshToken: 'r', expiresAt: 10 }), { accessToken: 'a', refreshToken: 'r', expiresAt: 10, refreshAt: 10 })
  t.same(parseStoredTokens('{"accessToken":"a","refreshToken":"r","expiresAt":10,"refreshAt":50}'), { accessToken: 'a', refreshToken: 'r', expiresAt: 10, refreshAt: 10 }, 'refreshAt never after expiry')
  const memory = memoryStorage()
  const secret = { accessToken: jwt({ sub: 's' }), refreshToken: 'family.SECRETSECRETSECRET', expiresAt: 1, refreshAt: 1 }
  await memory.set(secret)
  for (const shown of [String(memory), JSON.stringify(memory), inspect(memory, { depth: 10, showHidden: true })]) {
    t.notMatch(shown, secret.refreshToken)
    t.notMatch(shown, secret.accessToken)
  }
  t.same(await memory.get(), secret)
  const map = new Map<string, string>()
  const web = webStorage({ getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, v), removeItem: (k) => map.delete(k) }, 'k')
  await web.set(secret)
  t.same(await web.get(), secret)
  await web.clear()
  t.equal(await web.get(), null)
})

t.test('errors show status, code and message only', async (t) => {
  const err = new GatehouseHttpError({ kind: 'http', status: 401, code: 'TOKEN_EXPIRED', message: `expired ${jwt({ a: 1 })}` })
  t.equal(err.toString(), 'GatehouseHttpError [TOKEN_EXPIRED 401]: expired [redacted]')
  t.same(JSON.parse(JSON.stringify(err)), { name: 'GatehouseHttpError', kind: 'http', status: 401, code: 'TOKEN_EXPIRED', message: 'expired [redacted]' })
  t.equal(inspect(err), err.toString())
  const net = new GatehouseNetworkError({ kind: 'network', code: 'NETWORK_ERROR', cause: new Error('ECONNREFUSED') })
  t.equal(net.status, 0)
  t.equal(net.message, 'The server could not be reached')
})

t.test('the client\'s loopback rule is the server\'s (lib/loopback.ts)', async (t) => {
  const { isLoopbackHost: serverRule } = await import('../../lib/loopback.ts')
  const hosts = ['localhost', 'LOCALHOST', '127.0.0.1', '127.255.255.255', '127.0.0.256', '127.1', '[::1]', '::1', '[::2]', '128.0.0.1', '10.0.0.1', 'localhost.example.com', '127.0.0.1.nip.io', '', '127.0.0.01']
  for (const host of hosts) t.equal(isLoopbackHost(host), serverRule(host), JSON.stringify(host))
})
