// The client against the real Gatehouse server listening on a port (issue 8, "Done when"):
// 100 concurrent calls with an expired and with a revoked access token each cost exactly one
// POST /auth/refresh; refresh-token reuse ends in sessionExpired; re-authentication through the
// credentials callback; http to a non-loopback host is refused; API-key mode; and a scan of every
// log line (server and client) and everything the client showed for tokens, keys and passwords.
import t from 'tap'
import { rmSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { inspect } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../server/app.ts'
import { captureLogs, testConfig } from '../helpers/build.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import {
  createClient, decodeJwtPayload, memoryStorage, GatehouseSessionExpiredError,
  type ClientOptions, type GatehouseClient, type StoredTokens, type TokenStorage
} from '../../client/index.ts'

interface Ctx { teardown: (fn: () => unknown) => void }

/** Everything shown or logged during this file's run, scanned for secrets at the end. */
const shown: string[] = []
const serverLogs: string[][] = []
/** Every secret that existed during the run. */
const secrets = new Set<string>()

interface Server {
  app: FastifyInstance
  url: string
  /** Requests per "METHOD /route" since the last reset. */
  count: (key: string) => number
  reset: () => void
}

async function startServer (t: Ctx, env: Record<string, string> = {}, host = '127.0.0.1'): Promise<Server> {
  const db = await createTestDatabase('sqlite')
  const config = testConfig({ DATABASE_URL: db.url, ...env })
  const { logger, logs } = captureLogs()
  serverLogs.push(logs)
  // A 1 s clock tolerance (default 30 s) so an expired token is refused 31 s after issue.
  const app = await buildApp(config, { logger, tokens: { clockTolerance: 1 } })
  const counts = new Map<string, number>()
  app.addHook('onRequest', async (request) => {
    const key = `${request.method} ${request.url.split('?')[0]}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  })
  const address = await app.listen({ port: 0, host })
  t.teardown(async () => {
    await app.close()
    await db.drop()
    rmSync(config.keysDir, { recursive: true, force: true })
  })
  const port = new URL(address).port
  return { app, url: `http://127.0.0.1:${port}`, count: (key) => counts.get(key) ?? 0, reset: () => counts.clear() }
}

/** A storage that remembers every token it is given (to scan the logs for them). */
function recordingStorage (): TokenStorage & { last: () => StoredTokens } {
  const inner = memoryStorage()
  let last: StoredTokens | null = null
  return {
    get: () => inner.get(),
    set: (tokens) => {
      secrets.add(tokens.accessToken)
      secrets.add(tokens.refreshToken)
      last = tokens
      return inner.set(tokens)
    },
    clear: () => inner.clear(),
    last: () => { if (last === null) throw new Error('no tokens stored yet'); return last }
  }
}

function logger (): NonNullable<ClientOptions['logger']> {
  const at = (level: string) => (message: string, info?: unknown) => { shown.push(`client ${level}: ${message} ${JSON.stringify(info)}`) }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

function client (t: Ctx, server: Server, options: Partial<ClientOptions> = {}): GatehouseClient & { storage: ReturnType<typeof recordingStorage> } {
  const storage = recordingStorage()
  const c = createClient({ baseUrl: server.url, storage, logger: logger(), ...options })
  t.teardown(() => {
    shown.push(String(c), JSON.stringify(c), inspect(c, { depth: 10, showHidden: true }))
    c.close()
  })
  return Object.assign(c, { storage })
}

function rememberError (err: unknown): unknown {
  shown.push(String(err), JSON.stringify(err), inspect(err, { depth: 10, showHidden: true }), String((err as Error)?.stack))
  return err
}

let n = 0
function account (): { email: string, password: string } {
  const password = `client-test passphrase ${++n} ${Math.random().toString(36).slice(2)}`
  secrets.add(password)
  return { email: `client-${n}-${Date.now()}@example.com`, password }
}

async function raw (server: Server, path: string, init: RequestInit = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const response = await fetch(server.url + path, init)
  const text = await response.text()
  return { status: response.status, body: text === '' ? {} : JSON.parse(text) }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('100 concurrent calls with a really expired access token: exactly one refresh, 100 successes', { timeout: 120_000 }, async (t) => {
  const server = await startServer(t, { ACCESS_TOKEN_TTL: '30' })
  // reactive: refreshes only when the server answers 401 TOKEN_EXPIRED.
  const reactive = client(t, server, { proactiveRefresh: false })
  // lazy: its refresh timer is stopped (a sleeping laptop, a throttled background tab), so the
  // check before each request is what notices the expiry.
  const lazy = client(t, server)
  const a = account()
  const b = account()
  const userA = await reactive.register(a.email, a.password, 'Reactive')
  const userB = await lazy.register(b.email, b.password)
  lazy.close()
  t.ok(userA?.id && userB?.id)

  const tokenA = reactive.storage.last().accessToken
  const exp = decodeJwtPayload(tokenA)?.exp as number
  t.ok(exp * 1000 - Date.now() <= 30_000, 'the server issued a 30 s token')
  await sleep(exp * 1000 + 2_500 - Date.now())
  const direct = await raw(server, '/auth/me', { headers: { authorization: `Bearer ${tokenA}` } })
  t.equal(direct.status, 401, 'the server really refuses the token now')
  t.equal(direct.body.code, 'TOKEN_EXPIRED')

  server.reset()
  const responses = await Promise.all(Array.from({ length: 100 }, () => reactive.fetch('/auth/me')))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]), '100 successes')
  const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ id: string }>))
  t.ok(bodies.every((body) => body.id === userA?.id))
  t.equal(server.count('POST /auth/refresh'), 1, 'exactly one refresh request')
  t.equal(server.count('GET /auth/me'), 200, '100 refused with TOKEN_EXPIRED, 100 retried once')

  server.reset()
  const lazyResponses = await Promise.all(Array.from({ length: 100 }, () => lazy.fetch('/auth/me')))
  t.same(new Set(lazyResponses.map((r) => r.status)), new Set([200]), '100 successes')
  t.equal(server.count('POST /auth/refresh'), 1, 'exactly one refresh request')
  t.equal(server.count('GET /auth/me'), 100, 'no call was sent with the expired token')
  const after = await lazy.me()
  t.equal(after.id, userB?.id)
})

t.test('100 concurrent calls with a revoked token (logout-all elsewhere): one refresh, one re-authentication, 100 successes', async (t) => {
  const server = await startServer(t)
  const who = account()
  await client(t, server).register(who.email, who.password)
  let asked = 0
  const app = client(t, server, { credentials: async () => { asked++; return who } })
  const events: string[] = []
  app.on('loggedIn', (e) => events.push(`loggedIn:${e.via}`))
  app.on('refreshed', () => events.push('refreshed'))
  app.on('sessionExpired', () => events.push('sessionExpired'))

  const me = await app.me()
  t.equal(me.email, who.email, 'the first call logged in through the credentials callback')
  t.equal(asked, 1)

  const other = client(t, server)
  await other.login(who.email, who.password)
  await other.logoutAll()
  const direct = await raw(server, '/auth/me', { headers: { authorization: `Bearer ${app.storage.last().accessToken}` } })
  t.equal(direct.status, 401)
  t.equal(direct.body.code, 'TOKEN_REVOKED', 'the server really refuses the token')

  server.reset()
  const responses = await Promise.all(Array.from({ length: 100 }, () => app.fetch('/auth/me')))
  t.same(new Set(responses.map((r) => r.status)), new Set([200]), '100 successes')
  t.equal(server.count('POST /auth/refresh'), 1, 'one refresh (refused: logout-all revoked the refresh token too)')
  t.equal(server.count('POST /auth/login'), 1, 'one re-authentication')
  t.equal(asked, 2, 'the callback was asked once more')
  t.equal(server.count('GET /auth/me'), 200)
  t.same(events, ['loggedIn:credentials', 'loggedIn:credentials'], 'no sessionExpired: the callback started a new session')
})

t.test('refresh-token reuse ends in sessionExpired', async (t) => {
  const server = await startServer(t)
  const who = account()
  const victim = client(t, server)
  const expired: GatehouseSessionExpiredError[] = []
  victim.on('sessionExpired', ({ error }) => expired.push(error))
  await victim.register(who.email, who.password)
  const stolen = victim.storage.last().refreshToken

  // Someone else uses the refresh token first (a copy stolen from storage).
  const thief = await raw(server, '/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: stolen }) })
  t.equal(thief.status, 200)
  secrets.add(thief.body.access_token as string)
  secrets.add(thief.body.refresh_token as string)

  // The rightful client's next refresh presents the rotated-away token: reuse.
  const err = rememberError(await victim.refresh().catch((e: unknown) => e))
  t.ok(err instanceof GatehouseSessionExpiredError, 'a typed error')
  t.equal((err as GatehouseSessionExpiredError).code, 'REFRESH_TOKEN_REUSED')
  t.equal(expired.length, 1, 'one sessionExpired event')
  t.equal(expired[0].code, 'REFRESH_TOKEN_REUSED')
  t.equal(await victim.isAuthenticated(), false, 'tokens cleared')
  await t.rejects(victim.me(), { name: 'GatehouseSessionExpiredError' }, 'later calls get the typed error')
  t.equal(expired.length, 1, 'and no further event')

  // The server revoked the whole family: the thief's tokens are dead too.
  const thiefRefresh = await raw(server, '/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: thief.body.refresh_token }) })
  t.equal(thiefRefresh.status, 401)
  const thiefCall = await raw(server, '/auth/me', { headers: { authorization: `Bearer ${thief.body.access_token as string}` } })
  t.equal(thiefCall.status, 401)
  t.equal(thiefCall.body.code, 'TOKEN_REVOKED')

  await victim.login(who.email, who.password)
  t.equal((await victim.me()).email, who.email, 'an explicit login starts over')
})

t.test('refused credentials from the callback are not retried; non-retryable errors are typed', async (t) => {
  const server = await startServer(t)
  const who = account()
  await client(t, server).register(who.email, who.password)
  let asked = 0
  const wrong = `wrong ${who.password}`
  secrets.add(wrong)
  const app = client(t, server, { credentials: () => { asked++; return { email: who.email, password: wrong } } })
  const err = rememberError(await app.me().catch((e: unknown) => e))
  t.ok(err instanceof GatehouseSessionExpiredError)
  t.equal((err as GatehouseSessionExpiredError).code, 'INVALID_CREDENTIALS')
  await t.rejects(app.me(), { name: 'GatehouseSessionExpiredError' })
  t.equal(asked, 1, 'the callback was asked once')
  t.equal(server.count('POST /auth/login'), 1, 'one login attempt')
  const weak = rememberError(await app.register(`weak-${who.email}`, 'short').catch((e: unknown) => e))
  t.match(weak, { name: 'GatehouseHttpError', code: 'WEAK_PASSWORD', status: 400 })
  t.equal(server.count('POST /auth/register'), 2, 'WEAK_PASSWORD is not retried')
  const taken = rememberError(await app.register(who.email, who.password).catch((e: unknown) => e))
  t.match(taken, { name: 'GatehouseHttpError', code: 'EMAIL_TAKEN', status: 409 })
})

t.test('http to a non-loopback host is refused before anything is sent', async (t) => {
  const lan = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)
  const server = await startServer(t, {}, lan === undefined ? '127.0.0.1' : '0.0.0.0')
  const port = new URL(server.url).port
  const err = rememberError((() => { try { createClient({ baseUrl: `http://gatehouse.example.com:${port}` }) } catch (e) { return e } })())
  t.match(err, { name: 'GatehouseConfigError', kind: 'config', code: 'INSECURE_BASE_URL' })
  const who = account()
  const local = client(t, server)
  await local.register(who.email, who.password)
  if (lan !== undefined) {
    const lanUrl = `http://${lan.address}:${port}`
    t.equal((await fetch(`${lanUrl}/health`)).status, 200, `the server answers on ${lan.address}`)
    server.reset()
    t.throws(() => createClient({ baseUrl: lanUrl }), { code: 'INSECURE_BASE_URL' }, 'but the client refuses http to it')
    t.throws(() => createClient({ baseUrl: server.url, allowedOrigins: [lanUrl] }), { code: 'INSECURE_BASE_URL' })
    await t.rejects(local.fetch(`${lanUrl}/auth/me`), { code: 'UNTRUSTED_ORIGIN' }, 'a loopback client does not send its token to another origin')
    t.equal(server.count('GET /auth/me'), 0, 'nothing reached the server')
  } else {
    t.comment('no non-loopback IPv4 interface: only the refusal of a non-loopback name is checked')
  }
  t.equal((await local.me()).email, who.email, 'http to the loopback address works')
})

t.test('API-key mode against the real server', async (t) => {
  const server = await startServer(t)
  const who = account()
  const owner = client(t, server)
  const user = await owner.register(who.email, who.password)
  const created = await owner.json<{ id: string, name: string, key: string }>('/auth/api-keys', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'client test' })
  })
  t.ok(typeof created.key === 'string' && created.key.length >= 20, 'the key is shown once')
  secrets.add(created.key)
  server.reset()
  const keyed = createClient({ baseUrl: server.url, apiKey: created.key, logger: logger() })
  t.teardown(() => shown.push(String(keyed), JSON.stringify(keyed), inspect(keyed, { depth: 10, showHidden: true })))
  const me = await keyed.me()
  t.equal(me.id, user?.id, 'authenticated as the key\'s owner')
  t.equal(server.count('POST /auth/refresh'), 0, 'no refresh in API-key mode')
  await t.rejects(keyed.login(who.email, who.password), { kind: 'unsupported', code: 'API_KEY_MODE' })
  await t.rejects(keyed.refresh(), { code: 'API_KEY_MODE' })
  t.equal(server.count('POST /auth/login'), 0, 'login was not sent')
  const deleted = await owner.fetch(`/auth/api-keys/${created.id}`, { method: 'DELETE' })
  t.equal(deleted.status, 204)
  const refused = rememberError(await keyed.me().catch((e: unknown) => e))
  t.match(refused, { name: 'GatehouseHttpError', kind: 'http', status: 401 }, 'a revoked key is refused with a typed error')
})

t.test('logout revokes the session on the server and clears the client', async (t) => {
  const server = await startServer(t)
  const who = account()
  const app = client(t, server)
  await app.register(who.email, who.password)
  const { accessToken, refreshToken } = app.storage.last()
  await app.logout()
  t.equal(await app.isAuthenticated(), false)
  const refresh = await raw(server, '/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) })
  t.equal(refresh.status, 401, 'the refresh token no longer works')
  const call = await raw(server, '/auth/me', { headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(call.status, 401, 'nor the access token')
  await t.rejects(app.me(), { code: 'NOT_AUTHENTICATED' })
})

t.test('no token, refresh token, API key or password in any log line or anything the client showed', async (t) => {
  const lines = [...serverLogs.flat(), ...shown]
  t.ok(serverLogs.flat().length > 100, `server log lines captured (${serverLogs.flat().length})`)
  t.ok(shown.some((l) => l.startsWith('client info')), 'client log entries captured')
  t.ok(secrets.size > 20, `secrets to look for (${secrets.size})`)
  const leaks = [...secrets].filter((secret) => lines.some((line) => line.includes(secret)))
  t.same(leaks.map((s) => `${s.slice(0, 6)}…(${s.length} chars)`), [], 'no secret appears')
})
