// The client's own logic over real HTTP against a scripted server (scripted-server.ts) whose
// clock and failures the test controls: single flight under the lazy check and under 401s, no
// retry loop, clock offset, fallbacks, body replay, shared storage, API-key mode, redaction.
import t from 'tap'
import { inspect } from 'node:util'
import { scriptedServer, type ScriptedServer } from './scripted-server.ts'
import {
  createClient, GatehouseHttpError, GatehouseNetworkError, GatehouseSessionExpiredError, GatehouseClientError,
  memoryStorage, type ClientOptions, type StoredTokens, type TokenStorage
} from '../../client/index.ts'

const EMAIL = 'ada@example.com'
const PASSWORD = 'correct horse battery staple'

interface Ctx { teardown: (fn: () => unknown) => void }

async function setup (t: Ctx, options: Partial<ClientOptions> = {}): Promise<{ server: ScriptedServer, client: ReturnType<typeof createClient>, clock: { offset: number } }> {
  const server = await scriptedServer()
  t.teardown(() => server.close())
  const clock = { offset: 0 }
  server.setNow(() => Date.now() + clock.offset)
  const client = createClient({ baseUrl: server.url, now: () => Date.now() + clock.offset, random: () => 0, ...options })
  t.teardown(() => client.close())
  return { server, client, clock }
}

t.test('100 calls after the planned refresh time: one refresh before they are sent, 100 successes', async (t) => {
  const { server, client, clock } = await setup(t)
  server.refreshDelayMs = 50
  await client.login(EMAIL, PASSWORD)
  clock.offset = 61_000 // past expiry on both clocks
  const responses = await Promise.all(Array.from({ length: 100 }, () => client.fetch('/api/data')))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]))
  t.equal(server.count('POST /auth/refresh'), 1, 'exactly one refresh')
  t.equal(server.count('GET /api/data'), 100, 'no request went out with the expired token')
})

t.test('100 calls rejected with TOKEN_EXPIRED: one refresh, one retry each, 100 successes', async (t) => {
  const { server, client, clock } = await setup(t, { proactiveRefresh: false })
  server.refreshDelayMs = 50
  await client.login(EMAIL, PASSWORD)
  clock.offset = 61_000
  const refreshed: number[] = []
  client.on('refreshed', (e) => refreshed.push(e.expiresAt))
  const responses = await Promise.all(Array.from({ length: 100 }, () => client.fetch('/api/data')))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]))
  t.equal(server.count('POST /auth/refresh'), 1, 'exactly one refresh')
  t.equal(server.count('GET /api/data'), 200, 'each call: the rejected attempt and one retry')
  t.equal(refreshed.length, 1, 'one refreshed event')
})

t.test('late 401s after the refresh finished reuse the new token instead of refreshing again', async (t) => {
  const { server, client } = await setup(t, { proactiveRefresh: false })
  await client.login(EMAIL, PASSWORD)
  server.revokeAccessTokens()
  t.equal((await client.fetch('/api/one')).status, 200)
  t.equal(server.count('POST /auth/refresh'), 1)
  server.revokeAccessTokens()
  // Two sequential rounds of revocation: each round costs one refresh, not one per request.
  const responses = await Promise.all(Array.from({ length: 20 }, () => client.fetch('/api/two')))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]))
  t.equal(server.count('POST /auth/refresh'), 2)
})

t.test('a retry that is rejected again is returned, never retried in a loop', async (t) => {
  const { server, client } = await setup(t)
  await client.login(EMAIL, PASSWORD)
  server.apiAlways401 = 'TOKEN_EXPIRED'
  const response = await client.fetch('/api/data')
  t.equal(response.status, 401)
  t.equal((await response.json()).code, 'TOKEN_EXPIRED')
  t.equal(server.count('GET /api/data'), 2, 'the call and one retry')
  t.equal(server.count('POST /auth/refresh'), 1, 'one refresh')
  server.apiAlways401 = 'INVALID_SIGNATURE'
  const other = await client.fetch('/api/other')
  t.equal(other.status, 401)
  t.equal(server.count('GET /api/other'), 1, 'other 401 codes are not retried')
  t.equal(server.count('POST /auth/refresh'), 1)
  await t.rejects(client.json('/api/other'), { name: 'GatehouseHttpError', status: 401, code: 'INVALID_SIGNATURE' })
})

t.test('the server clock runs ahead and expires_in is missing: exp with the Date offset plans the refresh', async (t) => {
  const server = await scriptedServer()
  t.teardown(() => server.close())
  server.setNow(() => Date.now() + 3_600_000) // one hour ahead
  server.ttlSeconds = 120
  let local = Date.now()
  // Without the offset, exp (server time) would look an hour away.
  const realFetch = globalThis.fetch
  const stripped = createClient({
    baseUrl: server.url,
    now: () => local,
    random: () => 0,
    refreshSkewSeconds: 30,
    fetch: async (input, init) => {
      const response = await realFetch(input, init)
      if (!String(input).endsWith('/auth/login')) return response
      const body = await response.json()
      delete body.expires_in
      const headers = new Headers(response.headers)
      headers.delete('content-length')
      return new Response(JSON.stringify(body), { status: response.status, headers })
    }
  })
  t.teardown(() => stripped.close())
  await stripped.login(EMAIL, PASSWORD)
  local += 85_000 // 85 s later on both clocks: 35 s of the 120 s left, beyond the 30 s skew
  t.equal((await stripped.fetch('/api/a')).status, 200)
  t.equal(server.count('POST /auth/refresh'), 0, 'not refreshed yet')
  local += 10_000 // 25 s left: within the skew
  t.equal((await stripped.fetch('/api/b')).status, 200)
  t.equal(server.count('POST /auth/refresh'), 1, 'refreshed by exp converted with the measured offset')
})

t.test('refresh-token reuse ends the session: one sessionExpired event, typed errors for every waiting call', async (t) => {
  const { server, client, clock } = await setup(t)
  server.refreshDelayMs = 50
  await client.login(EMAIL, PASSWORD)
  server.refreshFails = 'REFRESH_TOKEN_REUSED'
  const events: unknown[] = []
  client.on('sessionExpired', (e) => events.push(e))
  clock.offset = 61_000
  const results = await Promise.allSettled(Array.from({ length: 30 }, () => client.fetch('/api/data')))
  t.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof GatehouseSessionExpiredError && r.reason.code === 'REFRESH_TOKEN_REUSED'))
  t.equal(events.length, 1, 'one event for 30 waiting calls')
  t.equal(server.count('POST /auth/refresh'), 1)
  t.equal(await client.isAuthenticated(), false, 'tokens cleared')
  await t.rejects(client.fetch('/api/data'), { name: 'GatehouseSessionExpiredError', kind: 'session_expired' }, 'later calls get the same typed error')
  t.equal(server.count('POST /auth/refresh'), 1, 'and do not try again')
  t.equal(events.length, 1)
})

t.test('onSessionExpired option, refresh failure on the timer in the background', async (t) => {
  const expired: GatehouseSessionExpiredError[] = []
  const { server, client } = await setup(t, { onSessionExpired: ({ error }) => expired.push(error) })
  server.ttlSeconds = 1 // refresh at half-life: 500 ms
  await client.login(EMAIL, PASSWORD)
  server.refreshFails = 'INVALID_REFRESH_TOKEN'
  const keepAlive = setInterval(() => {}, 100)
  t.teardown(() => clearInterval(keepAlive))
  const started = Date.now()
  while (expired.length === 0 && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(expired.length, 1)
  t.equal(expired[0].code, 'INVALID_REFRESH_TOKEN')
  t.equal(server.count('POST /auth/refresh'), 1, 'the timer refreshed without any request')
})

t.test('the credentials callback re-authenticates once for every waiting call', async (t) => {
  let asked = 0
  const { server, client, clock } = await setup(t, { credentials: async () => { asked++; return { email: EMAIL, password: PASSWORD } } })
  const logins: string[] = []
  client.on('loggedIn', (e) => logins.push(e.via))
  t.equal((await client.fetch('/api/first')).status, 200, 'the first call logs in through the callback')
  t.equal(asked, 1)
  server.refreshFails = 'INVALID_REFRESH_TOKEN'
  clock.offset = 61_000
  const responses = await Promise.all(Array.from({ length: 50 }, () => client.fetch('/api/data')))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]))
  t.equal(asked, 2, 'asked once more')
  t.equal(server.count('POST /auth/login'), 2)
  t.equal(server.count('POST /auth/refresh'), 1)
  t.same(logins, ['credentials', 'credentials'])
})

t.test('refused credentials are never retried automatically', async (t) => {
  let asked = 0
  const { server, client } = await setup(t, { credentials: () => { asked++; return { email: EMAIL, password: 'wrong password!!' } } })
  const events: GatehouseSessionExpiredError[] = []
  client.on('sessionExpired', ({ error }) => events.push(error))
  const err = await client.fetch('/api/x').catch((e: unknown) => e)
  t.ok(err instanceof GatehouseSessionExpiredError)
  t.equal((err as GatehouseSessionExpiredError).code, 'INVALID_CREDENTIALS')
  await t.rejects(client.fetch('/api/x'), { name: 'GatehouseSessionExpiredError' })
  t.equal(asked, 1)
  t.equal(server.count('POST /auth/login'), 1, 'one login attempt in all')
  t.equal(events.length, 1)
  await t.rejects(client.login(EMAIL, 'another wrong one'), { name: 'GatehouseHttpError', code: 'INVALID_CREDENTIALS', status: 401 })
  t.equal(server.count('POST /auth/login'), 2, 'an explicit login is sent once')
  await client.login(EMAIL, PASSWORD)
  t.equal((await client.fetch('/api/x')).status, 200, 'an explicit login restores the session')
})

t.test('no session and no callback: NOT_AUTHENTICATED; register starts a session; WEAK_PASSWORD is typed', async (t) => {
  const { server, client } = await setup(t)
  await t.rejects(client.fetch('/api/x'), { kind: 'not_authenticated', code: 'NOT_AUTHENTICATED' })
  await t.rejects(client.register('bob@example.com', 'short'), { name: 'GatehouseHttpError', code: 'WEAK_PASSWORD', status: 400 })
  t.equal(server.count('POST /auth/register'), 1, 'not retried')
  const user = await client.register('bob@example.com', 'a long enough password', 'Bob')
  t.same(user, { id: 'bob@example.com', email: 'bob@example.com', name: 'Bob' })
  t.equal((await client.me()).email, 'bob@example.com')
})

t.test('network errors are typed; a still-valid token survives a failed refresh', async (t) => {
  const { server, client, clock } = await setup(t)
  await client.login(EMAIL, PASSWORD)
  server.refreshFails = 'SERVICE_UNAVAILABLE'
  clock.offset = 31_000 // past the planned refresh, before expiry
  t.equal((await client.fetch('/api/data')).status, 200, 'the current token is used')
  t.equal(server.count('POST /auth/refresh'), 1)
  clock.offset = 61_000 // expired: the failure is surfaced
  await t.rejects(client.fetch('/api/data'), { name: 'GatehouseHttpError', code: 'SERVICE_UNAVAILABLE', status: 503 })
  t.equal(await client.isAuthenticated(), true, 'a 503 does not end the session')
  server.refreshFails = null
  t.equal((await client.fetch('/api/data')).status, 200, 'and it recovers')
  await server.close()
  const err = await client.fetch('/api/data').catch((e: unknown) => e)
  t.ok(err instanceof GatehouseNetworkError, 'connection refused is a GatehouseNetworkError')
  t.equal((err as GatehouseClientError).code, 'NETWORK_ERROR')
  const offline = createClient({ baseUrl: 'http://127.0.0.1:1' })
  await t.rejects(offline.login(EMAIL, PASSWORD), { name: 'GatehouseNetworkError', kind: 'network' })
})

t.test('a stream body is buffered and sent again on the retry', async (t) => {
  const { server, client } = await setup(t, { proactiveRefresh: false })
  await client.login(EMAIL, PASSWORD)
  server.revokeAccessTokens()
  const body = new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode('{"n":')); c.enqueue(new TextEncoder().encode('42}')); c.close() } })
  const response = await client.fetch('/api/echo', { method: 'POST', body, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit)
  t.equal(response.status, 200)
  t.same(server.echoed, ['{"n":42}'], 'the retry carried the whole body')
  t.equal(server.count('POST /api/echo'), 2)
})

t.test('clients sharing a storage adopt each other\'s rotated tokens instead of reusing a refresh token', async (t) => {
  const server = await scriptedServer()
  t.teardown(() => server.close())
  let local = Date.now()
  server.setNow(() => local)
  const shared = memoryStorage()
  const a = createClient({ baseUrl: server.url, storage: shared, now: () => local, random: () => 0 })
  const b = createClient({ baseUrl: server.url, storage: shared, now: () => local, random: () => 0 })
  t.teardown(() => { a.close(); b.close() })
  await a.login(EMAIL, PASSWORD)
  t.equal((await b.fetch('/api/x')).status, 200, 'b loads the session from the storage')
  local += 45_000
  t.equal((await a.fetch('/api/x')).status, 200)
  t.equal(server.count('POST /auth/refresh'), 1)
  t.equal((await b.fetch('/api/x')).status, 200, 'b adopts a\'s rotated tokens')
  t.equal(server.count('POST /auth/refresh'), 1, 'no second refresh with the rotated-away token (which the server would treat as reuse)')
})

t.test('logout revokes the family (renewing an expired access token first) and clears tokens', async (t) => {
  const { server, client, clock } = await setup(t, { proactiveRefresh: false })
  await client.login(EMAIL, PASSWORD)
  clock.offset = 61_000
  const out: boolean[] = []
  client.on('loggedOut', (e) => out.push(e.all))
  await client.logout()
  t.equal(server.count('POST /auth/logout'), 2, 'rejected as expired, then sent again after one refresh')
  t.equal(server.count('POST /auth/refresh'), 1)
  t.same(out, [false])
  t.equal(await client.isAuthenticated(), false)
  await t.rejects(client.fetch('/api/x'), { code: 'NOT_AUTHENTICATED' })
})

t.test('logout with the server unreachable still clears the tokens, then reports the network error', async (t) => {
  const { server, client } = await setup(t)
  await client.login(EMAIL, PASSWORD)
  const out: boolean[] = []
  client.on('loggedOut', (e) => out.push(e.all))
  await server.close()
  await t.rejects(client.logout(), { name: 'GatehouseNetworkError', code: 'NETWORK_ERROR' })
  t.same(out, [false])
  t.equal(await client.isAuthenticated(), false)
})

t.test('a logout while a refresh is in flight is not undone by the refresh', async (t) => {
  const { server, client } = await setup(t)
  server.refreshDelayMs = 200
  await client.login(EMAIL, PASSWORD)
  const expired: unknown[] = []
  client.on('sessionExpired', (e) => expired.push(e))
  const refreshing = client.refresh().then(() => 'resolved', (err: GatehouseClientError) => err.code)
  await new Promise((resolve) => setTimeout(resolve, 50))
  await client.logout()
  t.equal(await refreshing, 'NOT_AUTHENTICATED')
  t.equal(server.count('POST /auth/refresh'), 1)
  t.equal(await client.isAuthenticated(), false, 'nothing was stored')
  t.same(expired, [], 'no sessionExpired after an explicit logout')
})

t.test('API-key mode: ApiKey scheme, no refresh, session methods throw a typed error', async (t) => {
  const server = await scriptedServer()
  t.teardown(() => server.close())
  const client = createClient({ baseUrl: server.url, apiKey: 'gh_scripted_key_0123456789' })
  t.same(await client.json('/api/data'), { ok: true, via: 'apiKey' })
  t.equal(server.authorizations.at(-1), 'ApiKey gh_scripted_key_0123456789')
  for (const call of [() => client.login(EMAIL, PASSWORD), () => client.register(EMAIL, PASSWORD), () => client.logout(), () => client.logoutAll(), () => client.refresh()]) {
    await t.rejects(call() as Promise<unknown>, { kind: 'unsupported', code: 'API_KEY_MODE' })
  }
  t.equal(server.count('POST /auth/refresh') + server.count('POST /auth/login'), 0)
  t.equal(client.mode, 'apiKey')
  const shown = [String(client), JSON.stringify(client), inspect(client, { depth: 10, showHidden: true })].join('\n')
  t.notMatch(shown, 'gh_scripted_key_0123456789')
  await t.rejects(client.fetch('https://elsewhere.example.com/'), { code: 'UNTRUSTED_ORIGIN' }, 'the key is not sent to another origin')
})

t.test('nothing the client shows or logs contains a token, refresh token or password', async (t) => {
  const seen: string[] = []
  const stored: StoredTokens[] = []
  const inner = memoryStorage()
  const storage: TokenStorage = { get: () => inner.get(), set: (tokens) => { stored.push(tokens); return inner.set(tokens) }, clear: () => inner.clear() }
  const log = (level: string) => (message: string, info?: unknown) => seen.push(`${level} ${message} ${JSON.stringify(info)}`)
  const { server, client, clock } = await setup(t, { storage, logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } })
  await client.login(EMAIL, PASSWORD)
  clock.offset = 61_000
  await client.fetch('/api/data?token=not-logged')
  server.refreshFails = 'REFRESH_TOKEN_REUSED'
  clock.offset = 130_000
  const err = await client.fetch('/api/data').catch((e: unknown) => e)
  t.ok(err instanceof GatehouseSessionExpiredError)
  seen.push(String(client), JSON.stringify(client), inspect(client, { depth: 10, showHidden: true }))
  seen.push(String(err), JSON.stringify(err), inspect(err, { depth: 10, showHidden: true }), String((err as Error).stack))
  const cause = (err as Error).cause as GatehouseHttpError
  seen.push(String(cause), inspect(cause), JSON.stringify(cause))
  t.ok(stored.length >= 2, 'tokens were issued and rotated')
  t.ok(seen.some((line) => line.includes('token refreshed')), 'the logger did receive entries')
  const secrets = [PASSWORD, ...stored.flatMap((s) => [s.accessToken, s.refreshToken])]
  const all = seen.join('\n')
  for (const secret of secrets) t.notOk(all.includes(secret), 'no secret in what was shown or logged')
  t.notMatch(all, 'not-logged', 'query strings are not logged')
})
