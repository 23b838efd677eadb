// The Gatehouse client: sessions (login, register, refresh, logout) and an authenticated fetch.
//
// Refresh is planned ahead of expiry (a background timer plus a check before every request) and
// happens through one single-flight operation: however many requests need a new token, one
// POST /auth/refresh is in flight and everyone waits for it. A request answered 401
// TOKEN_EXPIRED or TOKEN_REVOKED is retried once with the renewed token; the retry's answer is
// returned as it is. Each request remembers which token generation it used, so a 401 that
// arrives after another request already renewed the token is retried with the new token and
// does not start a second refresh.
import {
  GatehouseClientError, GatehouseHttpError, GatehouseNetworkError, GatehouseSessionExpiredError
} from './errors.ts'
import { Emitter, type ClientEventName, type ClientEvents, type Listener } from './events.ts'
import { discard, errorFromResponse, peekCode, readJson, send, type Sent } from './http.ts'
import { tokenExp } from './jwt.ts'
import { resolveOptions, type ClientOptions, type Credentials, type ResolvedOptions } from './options.ts'
import { INSPECT, createLog, pathOf } from './redact.ts'
import { attemptInit, prepareRequest } from './request.ts'
import { singleFlight, type SingleFlight } from './single-flight.ts'
import { parseStoredTokens, type StoredTokens } from './storage.ts'
import { backgroundTimer, clockOffsetMs, expiryFrom, refreshAtFrom } from './timing.ts'
import type { GatehouseUser, TokenResponseBody } from './types.ts'

/** Codes of a 401 on an API call after which one refresh and one retry are worth it. */
export const RENEWABLE_CODES: ReadonlySet<string> = new Set(['TOKEN_EXPIRED', 'TOKEN_REVOKED'])

/** Answers one mfa_token takes (the server's limit). */
const MFA_ATTEMPTS = 5

/** Used when a token response says nothing about expiry: refresh only after a 401 then. */
const UNKNOWN_EXPIRY = Number.MAX_SAFE_INTEGER

export type ClientMode = 'session' | 'apiKey'

export interface GatehouseClient {
  readonly mode: ClientMode
  /** POST /auth/login; the session starts. Returns the server's `user`. */
  login: (email: string, password: string) => Promise<GatehouseUser | undefined>
  /** POST /auth/register; the new account's session starts. Returns the server's `user`. */
  register: (email: string, password: string, name?: string) => Promise<GatehouseUser | undefined>
  /** POST /auth/logout (this session's refresh family is revoked); tokens are cleared in any case. */
  logout: () => Promise<void>
  /** POST /auth/logout-all (every session of the user ends); tokens are cleared in any case. */
  logoutAll: () => Promise<void>
  /** Forces a refresh now (shares an in-flight one). */
  refresh: () => Promise<void>
  /** fetch with Authorization added; relative URLs resolve against baseUrl. */
  fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
  /** fetch, then the JSON body; an error status throws GatehouseHttpError. */
  json: <T = unknown>(input: string | URL | Request, init?: RequestInit) => Promise<T>
  /** GET /auth/me. */
  me: () => Promise<GatehouseUser>
  /** Whether a session (or an API key) is held. */
  isAuthenticated: () => Promise<boolean>
  on: <E extends ClientEventName>(event: E, listener: Listener<E>) => () => void
  off: <E extends ClientEventName>(event: E, listener: Listener<E>) => void
  /** Stops the refresh timer for good (the check before each request still refreshes); tokens stay. */
  close: () => void
}

function isTerminalRefreshFailure (err: unknown): err is GatehouseHttpError {
  // 401 (INVALID_REFRESH_TOKEN, REFRESH_TOKEN_REUSED, TOKEN_REVOKED, ACCOUNT_DISABLED, ...) and
  // 400/403 mean this refresh token will never work again; 429, 5xx and network errors do not.
  return err instanceof GatehouseHttpError && (err.status === 400 || err.status === 401 || err.status === 403)
}

function notAuthenticated (): GatehouseClientError {
  return new GatehouseClientError({ kind: 'not_authenticated', code: 'NOT_AUTHENTICATED', message: 'Not logged in: call login() first or pass a credentials callback' })
}

function apiKeyMode (method: string): GatehouseClientError {
  return new GatehouseClientError({ kind: 'unsupported', code: 'API_KEY_MODE', message: `${method}() is not available in API-key mode` })
}

function checkCredentials (email: unknown, password: unknown): void {
  if (typeof email !== 'string' || email === '' || typeof password !== 'string' || password === '') {
    throw new GatehouseClientError({ kind: 'config', code: 'INVALID_OPTION', message: 'email and password must be non-empty strings' })
  }
}

class Client implements GatehouseClient {
  readonly mode: ClientMode
  #options: ResolvedOptions
  #emitter: Emitter
  #log: ReturnType<typeof createLog>
  #tokens: StoredTokens | null = null
  /** Bumped on every change of #tokens; a request compares it to know whether to renew. */
  #generation = 0
  #loading: Promise<void> | null = null
  #offsetMs: number | undefined
  #cancelTimer: (() => void) | null = null
  #expired: GatehouseSessionExpiredError | null = null
  /** Set when the credentials callback's login was refused: calling it again would not help. */
  #reauthBlocked = false
  /** Passwords being sent right now: scrubbed from anything logged meanwhile. */
  #transient = new Set<string>()
  #renewal: SingleFlight<StoredTokens>
  /** Bumped by login, register and logout: a refresh started before them must not store its result. */
  #epoch = 0
  #closed = false

  constructor (options: ResolvedOptions) {
    this.#options = options
    this.mode = options.apiKey === undefined ? 'session' : 'apiKey'
    this.#log = createLog(options.logger, () => [this.#tokens?.accessToken, this.#tokens?.refreshToken, options.apiKey, ...this.#transient])
    this.#emitter = new Emitter((event, err) => this.#log('error', 'an event listener threw', { event, error: (err as Error)?.name }))
    if (options.onSessionExpired !== undefined) this.#emitter.on('sessionExpired', options.onSessionExpired)
    this.#renewal = singleFlight(() => this.#renewNow())
  }

  // -- public API -----------------------------------------------------------------------------

  async login (email: string, password: string): Promise<GatehouseUser | undefined> {
    if (this.mode === 'apiKey') throw apiKeyMode('login')
    checkCredentials(email, password)
    return this.#startSession('/auth/login', { email, password }, 'login')
  }

  async register (email: string, password: string, name?: string): Promise<GatehouseUser | undefined> {
    if (this.mode === 'apiKey') throw apiKeyMode('register')
    checkCredentials(email, password)
    return this.#startSession('/auth/register', name === undefined ? { email, password } : { email, password, name }, 'register')
  }

  async logout (): Promise<void> {
    if (this.mode === 'apiKey') throw apiKeyMode('logout')
    await this.#load()
    const tokens = this.#tokens
    let failure: unknown
    try {
      if (tokens !== null) {
        const post = (t: StoredTokens): Promise<Sent> => this.#post('/auth/logout', this.#options.cookieSession ? {} : { refresh_token: t.refreshToken }, `Bearer ${t.accessToken}`)
        let { response } = await post(tokens)
        if (response.status === 401 && (await peekCode(response)) === 'TOKEN_EXPIRED') {
          // The access token lapsed but the refresh token may live: renew once so the server
          // can revoke the family, rather than leave it valid until its idle timeout.
          discard(response)
          const fresh = await this.#refreshOnce().catch(() => null)
          if (fresh !== null) response = (await post(fresh)).response
        }
        if (!response.ok && response.status !== 401) failure = await errorFromResponse(response)
        else discard(response)
      }
    } catch (err) {
      failure = err
    } finally {
      this.#epoch++
      await this.#store(null)
      this.#expired = null
      this.#emitter.emit('loggedOut', { all: false })
      this.#log('info', 'logged out')
    }
    if (failure !== undefined) throw failure
  }

  async logoutAll (): Promise<void> {
    if (this.mode === 'apiKey') throw apiKeyMode('logoutAll')
    let response: Response
    try {
      response = await this.#withSession('/auth/logout-all', { method: 'POST' })
    } finally {
      this.#epoch++
      await this.#store(null)
      this.#expired = null
      this.#emitter.emit('loggedOut', { all: true })
      this.#log('info', 'logged out of every session')
    }
    if (!response.ok) throw await errorFromResponse(response)
    discard(response)
  }

  async refresh (): Promise<void> {
    if (this.mode === 'apiKey') throw apiKeyMode('refresh')
    await this.#load()
    await this.#renew(this.#generation, true)
  }

  async fetch (input: string | URL | Request, init?: RequestInit): Promise<Response> {
    if (this.mode === 'apiKey') {
      const request = await prepareRequest(input, init, this.#options.base, this.#options.origins)
      const { response } = await send(this.#options.fetch, request.url, attemptInit(request, `ApiKey ${this.#options.apiKey}`), this.#options.now)
      this.#log('debug', 'request', { method: request.method, path: pathOf(request.url), status: response.status })
      return response
    }
    return this.#withSession(input, init)
  }

  async json<T = unknown> (input: string | URL | Request, init?: RequestInit): Promise<T> {
    return readJson<T>(await this.fetch(input, init))
  }

  async me (): Promise<GatehouseUser> {
    return this.json<GatehouseUser>('/auth/me')
  }

  async isAuthenticated (): Promise<boolean> {
    if (this.mode === 'apiKey') return true
    await this.#load()
    return this.#tokens !== null
  }

  on<E extends ClientEventName> (event: E, listener: Listener<E>): () => void {
    return this.#emitter.on(event, listener)
  }

  off<E extends ClientEventName> (event: E, listener: Listener<E>): void {
    this.#emitter.off(event, listener)
  }

  close (): void {
    this.#closed = true
    this.#cancelTimer?.()
    this.#cancelTimer = null
  }

  toString (): string {
    const state = this.mode === 'apiKey' ? 'apiKey: [redacted]' : `session: ${this.#tokens === null ? 'none' : '[redacted]'}`
    return `GatehouseClient { baseUrl: ${this.#options.base}, mode: ${this.mode}, ${state} }`
  }

  toJSON (): { baseUrl: string, mode: ClientMode, authenticated: boolean } {
    return { baseUrl: this.#options.base, mode: this.mode, authenticated: this.mode === 'apiKey' || this.#tokens !== null }
  }

  [INSPECT] (): string {
    return this.toString()
  }

  // -- sessions -------------------------------------------------------------------------------

  async #post (path: string, body: unknown, authorization?: string): Promise<Sent> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (authorization !== undefined) headers.authorization = authorization
    const init: RequestInit = { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) }
    // Browser mode: the session calls carry (and receive) the refresh cookie, across origins too.
    if (this.#options.cookieSession) init.credentials = 'include'
    return send(this.#options.fetch, this.#options.base + path, init, this.#options.now)
  }

  async #startSession (path: string, body: { email: string, password: string, name?: string }, via: 'login' | 'register' | 'credentials'): Promise<GatehouseUser | undefined> {
    this.#transient.add(body.password)
    const epoch = ++this.#epoch
    try {
      let sent = await this.#post(path, this.#options.cookieSession ? { ...body, session: 'cookie' } : body)
      if (sent.response.status === 401 && this.#options.mfa !== undefined && (await peekCode(sent.response)) === 'MFA_REQUIRED') {
        sent = await this.#secondFactor(sent.response)
      }
      const data = await readJson<TokenResponseBody>(sent.response)
      if (epoch !== this.#epoch) throw notAuthenticated() // a logout or another login came first
      const tokens = await this.#adopt(data, sent)
      this.#reauthBlocked = false
      this.#log('info', via === 'register' ? 'registered' : 'logged in', { via, expiresInMs: tokens.expiresAt - this.#options.now() })
      this.#emitter.emit('loggedIn', { via, user: data.user, expiresAt: tokens.expiresAt })
      return data.user
    } catch (err) {
      this.#log('warn', 'authentication failed', { via, code: (err as GatehouseClientError).code, status: (err as GatehouseClientError).status })
      throw err
    } finally {
      this.#transient.delete(body.password)
    }
  }

  /**
   * After MFA_REQUIRED: asks the app's `mfa` callback for a code and answers at /auth/mfa/verify,
   * again after a wrong code (the server allows 5 answers per mfa_token). Returns the last answer.
   */
  async #secondFactor (challenge: Response): Promise<Sent> {
    const body = await challenge.json().catch(() => null) as { mfa_token?: unknown, methods?: unknown } | null
    const mfaToken = body?.mfa_token
    if (typeof mfaToken !== 'string' || mfaToken === '') {
      throw new GatehouseNetworkError({ kind: 'network', code: 'INVALID_RESPONSE', status: 401, message: 'The MFA_REQUIRED answer lacks mfa_token' })
    }
    const methods = Array.isArray(body?.methods) ? body!.methods.filter((m): m is string => typeof m === 'string') : []
    this.#transient.add(mfaToken)
    let previousError: GatehouseHttpError | undefined
    try {
      for (let attempt = 1; attempt <= MFA_ATTEMPTS; attempt++) {
        const answer = await this.#options.mfa!({ methods, attempt, previousError })
        if (answer === null || answer === undefined) {
          throw new GatehouseHttpError({ kind: 'http', status: 401, code: 'MFA_REQUIRED', message: 'A second factor is required to complete the login' })
        }
        const secret = 'code' in answer ? answer.code : answer.recoveryCode
        if (typeof secret !== 'string' || secret === '') throw new GatehouseClientError({ kind: 'config', code: 'INVALID_OPTION', message: 'the mfa callback must return { code } or { recoveryCode } with a non-empty string' })
        this.#transient.add(secret)
        try {
          const sent = await this.#post('/auth/mfa/verify', 'code' in answer ? { mfa_token: mfaToken, code: secret } : { mfa_token: mfaToken, recovery_code: secret })
          if (sent.response.status !== 401 || (await peekCode(sent.response)) !== 'INVALID_MFA_CODE' || attempt === MFA_ATTEMPTS) return sent
          previousError = await errorFromResponse(sent.response)
          this.#log('warn', 'second factor refused', { attempt })
        } finally {
          this.#transient.delete(secret)
        }
      }
      throw previousError as GatehouseHttpError
    } finally {
      this.#transient.delete(mfaToken)
    }
  }

  /** Stores the tokens of a token response, with expiry and refresh time on the local clock. */
  async #adopt (data: TokenResponseBody, sent: Sent): Promise<StoredTokens> {
    // In browser mode the refresh token is the server's HttpOnly cookie: the body has none.
    const cookie = this.#options.cookieSession
    if (data === null || typeof data !== 'object' || typeof data.access_token !== 'string' || data.access_token === '' ||
      (!cookie && (typeof data.refresh_token !== 'string' || data.refresh_token === ''))) {
      throw new GatehouseNetworkError({ kind: 'network', code: 'INVALID_RESPONSE', status: sent.response.status, message: 'The token response lacks access_token or refresh_token' })
    }
    const offset = clockOffsetMs(sent.response.headers.get('date'), sent.sentAt, sent.receivedAt)
    if (offset !== undefined) this.#offsetMs = offset
    const expiresAt = expiryFrom({ expiresIn: data.expires_in, exp: tokenExp(data.access_token), sentAt: sent.sentAt, offsetMs: this.#offsetMs }) ?? UNKNOWN_EXPIRY
    const refreshAt = refreshAtFrom({ issuedAt: sent.sentAt, expiresAt, skewMs: this.#options.skewMs, jitterMs: this.#options.jitterMs, random: this.#options.random() })
    const tokens: StoredTokens = { accessToken: data.access_token, refreshToken: cookie ? '' : data.refresh_token as string, expiresAt, refreshAt }
    await this.#store(tokens)
    return tokens
  }

  async #store (tokens: StoredTokens | null): Promise<void> {
    this.#tokens = tokens
    this.#generation++
    if (tokens !== null) this.#expired = null
    this.#schedule()
    const storage = this.#options.storage
    try {
      if (tokens === null) await storage.clear()
      else await storage.set({ ...tokens })
    } catch (err) {
      // The copy in memory still works for this client; say so, without the tokens.
      this.#log('error', tokens === null ? 'storage.clear failed' : 'storage.set failed', { error: (err as Error)?.name })
    }
  }

  async #load (): Promise<void> {
    this.#loading ??= (async () => {
      let stored: StoredTokens | null = null
      try {
        stored = parseStoredTokens(await this.#options.storage.get())
      } catch (err) {
        this.#log('error', 'storage.get failed', { error: (err as Error)?.name })
      }
      // A login that finished while the storage was being read wins.
      if (this.#generation === 0 && stored !== null) {
        this.#tokens = stored
        this.#generation++
        this.#schedule()
      }
      if (this.#options.cookieSession && this.#generation === 0) await this.#restore()
    })()
    await this.#loading
  }

  /** Browser mode after a page reload: the cookie, if the browser still has a live one, gives a new access token. */
  async #restore (): Promise<void> {
    try {
      await this.#withStorageLock(() => this.#refreshWith(''))
      this.#log('info', 'session restored from the refresh cookie')
    } catch (err) {
      // No cookie, or a dead one: simply not signed in. Anything else is worth a line.
      if (!isTerminalRefreshFailure(err)) this.#log('warn', 'could not restore the session', { code: (err as GatehouseClientError)?.code, status: (err as GatehouseClientError)?.status })
    }
  }

  #schedule (): void {
    this.#cancelTimer?.()
    this.#cancelTimer = null
    const tokens = this.#tokens
    if (this.#closed || !this.#options.proactiveRefresh || tokens === null || tokens.expiresAt === UNKNOWN_EXPIRY) return
    const generation = this.#generation
    this.#cancelTimer = backgroundTimer(() => {
      this.#cancelTimer = null
      this.#renew(generation).catch((err: GatehouseClientError) => {
        // The check before the next request tries again; a session expiry was already emitted.
        this.#log('warn', 'background refresh failed', { code: err?.code, status: err?.status })
      })
    }, tokens.refreshAt - this.#options.now())
  }

  /**
   * New tokens for a caller that used generation `used`. When the generation moved on, someone
   * already renewed (use that) or the session ended (rethrow that ending); otherwise join or
   * start the single renewal.
   */
  async #renew (used: number, force = false): Promise<StoredTokens> {
    if (!force && used !== this.#generation) {
      if (this.#tokens !== null) return this.#tokens
      if (this.#expired !== null) throw this.#expired
    }
    return this.#renewal.run()
  }

  /** The single-flight body: refresh; when the refresh token is dead, the credentials callback. */
  async #renewNow (): Promise<StoredTokens> {
    const held = this.#tokens
    const epoch = this.#epoch
    let failure: GatehouseHttpError | undefined
    if (held !== null) {
      try {
        return await this.#withStorageLock(async () => {
          const shared = await this.#newerStored(held)
          if (shared !== null) return shared
          return this.#refreshWith(held.refreshToken)
        })
      } catch (err) {
        if (epoch !== this.#epoch) {
          // A logout or login happened meanwhile: this failure is about a session already gone.
          if (this.#tokens !== null) return this.#tokens
          throw notAuthenticated()
        }
        if (!isTerminalRefreshFailure(err)) throw err
        failure = err
        this.#log('warn', 'refresh token rejected; session cleared', { code: err.code, status: err.status })
        await this.#store(null)
      }
    }
    const credentials = this.#options.credentials
    let cause: GatehouseClientError | undefined = failure
    if (credentials !== undefined && !this.#reauthBlocked) {
      let given: Credentials
      try {
        given = await credentials()
        checkCredentials(given?.email, given?.password)
      } catch (err) {
        this.#reauthBlocked = true
        throw this.#expire(failure, err instanceof GatehouseClientError ? err : new GatehouseClientError({ kind: 'config', code: 'INVALID_OPTION', message: 'the credentials callback failed' }))
      }
      try {
        await this.#startSession('/auth/login', { email: given.email, password: given.password }, 'credentials')
        return this.#tokens as unknown as StoredTokens
      } catch (err) {
        // Refused credentials stay refused: no further automatic attempts until login().
        if (!(err instanceof GatehouseHttpError) || err.status >= 500 || err.status === 429) throw err
        this.#reauthBlocked = true
        cause = err
      }
    }
    if (failure === undefined && cause === undefined) throw this.#expired ?? notAuthenticated()
    throw this.#expire(failure, cause)
  }

  #expire (failure: GatehouseHttpError | undefined, cause: GatehouseClientError | undefined): GatehouseSessionExpiredError {
    const error = new GatehouseSessionExpiredError({
      kind: 'session_expired',
      status: failure?.status ?? cause?.status ?? 401,
      code: failure?.code ?? cause?.code ?? 'NOT_AUTHENTICATED',
      message: 'The session has expired; log in again',
      cause
    })
    this.#expired = error
    this.#log('warn', 'session expired', { code: error.code })
    this.#emitter.emit('sessionExpired', { error, cause })
    return error
  }

  async #refreshWith (refreshToken: string): Promise<StoredTokens> {
    const epoch = this.#epoch
    const sent = await this.#post('/auth/refresh', this.#options.cookieSession ? undefined : { refresh_token: refreshToken })
    const data = await readJson<TokenResponseBody>(sent.response)
    // A logout (or a new login) while this refresh was in flight wins: do not bring the old session back.
    if (epoch !== this.#epoch) {
      if (this.#tokens === null) throw notAuthenticated()
      return this.#tokens
    }
    const tokens = await this.#adopt(data, sent)
    this.#log('info', 'token refreshed', { expiresInMs: tokens.expiresAt - this.#options.now() })
    this.#emitter.emit('refreshed', { expiresAt: tokens.expiresAt })
    return tokens
  }

  /** A refresh without the credentials fallback (for logout); joins one in flight. */
  async #refreshOnce (): Promise<StoredTokens> {
    if (this.#renewal.pending) return this.#renewal.run()
    const held = this.#tokens
    if (held === null) throw notAuthenticated()
    return this.#refreshWith(held.refreshToken)
  }

  /**
   * Tokens another client sharing the storage (a second tab) stored after rotating the refresh
   * token we hold: refreshing with ours would now be a reuse and revoke the whole family.
   */
  async #newerStored (held: StoredTokens): Promise<StoredTokens | null> {
    if (this.#options.storageIsDefault) return null
    let stored: StoredTokens | null = null
    try {
      stored = parseStoredTokens(await this.#options.storage.get())
    } catch {
      return null
    }
    if (stored === null || stored.refreshToken === held.refreshToken || stored.refreshAt <= this.#options.now()) return null
    this.#tokens = stored
    this.#generation++
    this.#schedule()
    this.#log('debug', 'adopted tokens refreshed by another client sharing the storage')
    return stored
  }

  /** Web Locks (browsers) serialize refreshes across tabs that share a storage. */
  async #withStorageLock<T> (fn: () => Promise<T>): Promise<T> {
    const locks = (globalThis as { navigator?: { locks?: { request?: (name: string, cb: () => Promise<T>) => Promise<T> } } }).navigator?.locks
    // Tabs of a browser-mode app share the cookie: they take turns too.
    if ((this.#options.storageIsDefault && !this.#options.cookieSession) || typeof locks?.request !== 'function') return fn()
    return locks.request(`gatehouse-refresh:${this.#options.base}`, fn)
  }

  // -- authenticated requests -----------------------------------------------------------------

  /** The tokens to send now: loaded, and renewed first when the planned refresh time passed. */
  async #currentTokens (): Promise<StoredTokens> {
    await this.#load()
    const tokens = this.#tokens
    if (tokens === null) {
      if (this.#options.credentials !== undefined && !this.#reauthBlocked) return this.#renewal.run()
      throw this.#expired ?? notAuthenticated()
    }
    if (this.#options.proactiveRefresh && this.#options.now() >= tokens.refreshAt) {
      try {
        return await this.#renew(this.#generation)
      } catch (err) {
        // An unreachable server is no reason to drop a token that is still valid.
        const transient = err instanceof GatehouseClientError && (err.kind === 'network' || (err.kind === 'http' && !isTerminalRefreshFailure(err)))
        if (transient && this.#tokens === tokens && this.#options.now() < tokens.expiresAt) {
          this.#log('warn', 'refresh failed; using the current token until it expires', { code: (err as GatehouseClientError).code })
          return tokens
        }
        throw err
      }
    }
    return tokens
  }

  async #withSession (input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const request = await prepareRequest(input, init, this.#options.base, this.#options.origins)
    const path = pathOf(request.url)
    let tokens = await this.#currentTokens()
    const used = this.#generation
    const first = await send(this.#options.fetch, request.url, attemptInit(request, `Bearer ${tokens.accessToken}`), this.#options.now)
    if (first.response.status !== 401) {
      this.#log('debug', 'request', { method: request.method, path, status: first.response.status })
      return first.response
    }
    const code = await peekCode(first.response)
    if (code === undefined || !RENEWABLE_CODES.has(code)) return first.response
    this.#log('info', 'access token rejected; renewing and retrying once', { method: request.method, path, code })
    discard(first.response)
    tokens = await this.#renew(used)
    const second = await send(this.#options.fetch, request.url, attemptInit(request, `Bearer ${tokens.accessToken}`), this.#options.now)
    this.#log('debug', 'retried request', { method: request.method, path, status: second.response.status })
    return second.response
  }
}

/** A client for the Gatehouse server at `options.baseUrl` (see docs/client.md). */
export function createClient (options: ClientOptions): GatehouseClient {
  return new Client(resolveOptions(options))
}

export type { ClientEvents }
