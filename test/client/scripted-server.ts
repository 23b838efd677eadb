// A small scripted HTTP server that speaks the token protocol of CONTRACT §3 with a clock and
// failure modes the test controls: for testing the client's own logic (timing, single flight,
// fallbacks) under conditions the real server cannot be put into on demand. The acceptance
// tests of the client run against the real Gatehouse server (server.test.ts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'

export interface ScriptedServer {
  url: string
  /** Requests seen, by "METHOD /path". */
  counts: Map<string, number>
  /** Every Authorization header value received, in order. */
  authorizations: string[]
  /** Bodies received on /api/echo. */
  echoed: string[]
  /** Server clock (ms); defaults to the real clock. */
  now: () => number
  setNow: (fn: () => number) => void
  ttlSeconds: number
  /** When false, token responses have no Date header (a cross-origin browser cannot read it). */
  dateHeader: boolean
  /** Milliseconds /auth/refresh waits before answering (keeps a refresh in flight). */
  refreshDelayMs: number
  /** Forces /auth/refresh to answer this code (401) or a 503. */
  refreshFails: null | 'INVALID_REFRESH_TOKEN' | 'REFRESH_TOKEN_REUSED' | 'SERVICE_UNAVAILABLE'
  /** /api/* always answers 401 with this code (to show the client does not loop). */
  apiAlways401: null | string
  /** Passwords by email. */
  users: Map<string, string>
  /** Revokes every access token issued so far (their next use answers TOKEN_REVOKED). */
  revokeAccessTokens: () => void
  count: (key: string) => number
  close: () => Promise<void>
}

function b64url (value: string): string {
  return Buffer.from(value).toString('base64url')
}

export async function scriptedServer (): Promise<ScriptedServer> {
  const access = new Map<string, { exp: number, revoked: boolean, email: string }>()
  const refresh = new Map<string, { used: boolean, family: string, email: string }>()
  const revokedFamilies = new Set<string>()
  let counter = 0

  const state: ScriptedServer = {
    url: '',
    counts: new Map(),
    authorizations: [],
    echoed: [],
    now: Date.now,
    setNow (fn) { state.now = fn },
    ttlSeconds: 60,
    dateHeader: true,
    refreshDelayMs: 0,
    refreshFails: null,
    apiAlways401: null,
    users: new Map([['ada@example.com', 'correct horse battery staple']]),
    revokeAccessTokens () { for (const t of access.values()) t.revoked = true },
    count: (key) => state.counts.get(key) ?? 0,
    close: async () => {}
  }

  function issue (email: string, family = randomBytes(8).toString('hex')): Record<string, unknown> {
    const exp = Math.floor(state.now() / 1000) + state.ttlSeconds
    const token = `${b64url('{"alg":"none","typ":"at+jwt"}')}.${b64url(JSON.stringify({ sub: email, exp, n: ++counter }))}.${b64url('sig')}`
    access.set(token, { exp, revoked: false, email })
    const rt = `${family}.${randomBytes(32).toString('base64url')}`
    refresh.set(rt, { used: false, family, email })
    return { access_token: token, refresh_token: rt, token_type: 'Bearer', expires_in: state.ttlSeconds }
  }

  function send (res: ServerResponse, status: number, body?: unknown): void {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (state.dateHeader) headers.date = new Date(state.now()).toUTCString()
    res.writeHead(status, headers)
    res.end(body === undefined ? undefined : JSON.stringify(body))
  }
  function fail (res: ServerResponse, status: number, code: string): void {
    send(res, status, { statusCode: status, code, error: 'Error', message: `scripted ${code}` })
  }

  async function readBody (req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }

  function bearer (req: IncomingMessage, res: ServerResponse): { email: string, token: string } | null {
    const header = req.headers.authorization ?? ''
    if (!header.startsWith('Bearer ')) { fail(res, 401, 'MISSING_AUTHORIZATION'); return null }
    const token = header.slice(7)
    const entry = access.get(token)
    if (entry === undefined) { fail(res, 401, 'INVALID_TOKEN'); return null }
    if (entry.revoked) { fail(res, 401, 'TOKEN_REVOKED'); return null }
    if (entry.exp * 1000 <= state.now()) { fail(res, 401, 'TOKEN_EXPIRED'); return null }
    return { email: entry.email, token }
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const key = `${req.method} ${path}`
    state.counts.set(key, state.count(key) + 1)
    if (req.headers.authorization !== undefined) state.authorizations.push(req.headers.authorization)
    void (async () => {
      const raw = await readBody(req)
      const body = raw !== '' && (req.headers['content-type'] ?? '').includes('json') ? JSON.parse(raw) : {}
      if (key === 'POST /auth/login') {
        if (state.users.get(body.email) !== body.password) return fail(res, 401, 'INVALID_CREDENTIALS')
        return send(res, 200, { user: { id: body.email, email: body.email }, ...issue(body.email) })
      }
      if (key === 'POST /auth/register') {
        if (typeof body.password !== 'string' || body.password.length < 12) return fail(res, 400, 'WEAK_PASSWORD')
        state.users.set(body.email, body.password)
        return send(res, 201, { user: { id: body.email, email: body.email, name: body.name ?? null }, ...issue(body.email) })
      }
      if (key === 'POST /auth/refresh') {
        if (state.refreshDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.refreshDelayMs))
        if (state.refreshFails === 'SERVICE_UNAVAILABLE') return fail(res, 503, 'SERVICE_UNAVAILABLE')
        if (state.refreshFails !== null) return fail(res, 401, state.refreshFails)
        const entry = refresh.get(body.refresh_token)
        if (entry === undefined || revokedFamilies.has(entry.family)) return fail(res, 401, 'INVALID_REFRESH_TOKEN')
        if (entry.used) { revokedFamilies.add(entry.family); return fail(res, 401, 'REFRESH_TOKEN_REUSED') }
        entry.used = true
        return send(res, 200, issue(entry.email, entry.family))
      }
      if (key === 'POST /auth/logout') {
        if (bearer(req, res) === null) return
        const entry = refresh.get(body.refresh_token)
        if (entry !== undefined) revokedFamilies.add(entry.family)
        return send(res, 204)
      }
      if (key === 'GET /auth/me') {
        const who = bearer(req, res)
        if (who === null) return
        return send(res, 200, { id: who.email, email: who.email, name: null, roles: ['user'], orgs: [] })
      }
      if (path.startsWith('/api/')) {
        if (req.headers.authorization?.startsWith('ApiKey ')) {
          return req.headers.authorization === 'ApiKey gh_scripted_key_0123456789' ? send(res, 200, { ok: true, via: 'apiKey' }) : fail(res, 401, 'INVALID_CREDENTIALS')
        }
        if (state.apiAlways401 !== null) return fail(res, 401, state.apiAlways401)
        const who = bearer(req, res)
        if (who === null) return
        if (path === '/api/echo') state.echoed.push(raw)
        return send(res, 200, { ok: true, email: who.email })
      }
      fail(res, 404, 'NOT_FOUND')
    })().catch((err) => { res.statusCode = 500; res.end(String(err)) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  state.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  return state
}
