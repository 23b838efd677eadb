// Sign-in with external providers under /auth/providers (CONTRACT §12; registered by
// routes/auth/index.ts when gatehouse-providers is registered):
//   GET    /providers                 the configured providers
//   GET    /providers/:id/authorize   302 to the provider; sets the flow cookie of this browser
//   GET    /providers/:id/callback    302 back to the app with ?code=<login code> or ?error=<code>
//   POST   /providers/exchange        the login code for the login response
//   POST   /providers/:id/link        (Bearer) an authorize_url that links the provider to the caller
//   DELETE /providers/:id             (Bearer) unlink, never the account's last way in
// No token of any kind ever travels in a URL: the callback hands the app a one-time login code
// (60 s, single use, stored hashed) that it exchanges with a POST.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { gatehouseError } from '../../lib/errors.ts'
import type { ProviderEntry } from '../../plugins/providers/index.ts'
import { AUDIT_EVENTS } from '../../plugins/audit/index.ts'
import { ProviderError, SignInRefused } from '../../plugins/providers/index.ts'
import type { User } from '../../plugins/store/index.ts'
import { loginErrorSchema, loginResponse, secondFactorChallenge, sendMfaRequired, tokenWithUserSchema } from './login-response.ts'
import { sessionModeField } from './cookie-session.ts'
import { ownBearerUser } from './caller.ts'

export const FLOW_COOKIE = 'gatehouse_provider_flow'
/** RFC 8176 has no value for a federated sign-in: `fed` names it, and counts as no factor of ours. */
export const AMR_PROVIDER: readonly string[] = Object.freeze(['fed'])

/** Authorization error codes (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) that the audit names; the app gets access_denied for all but temporarily_unavailable. */
const PASSED_ON = new Set(['access_denied', 'temporarily_unavailable', 'login_required', 'consent_required', 'interaction_required', 'account_selection_required'])

const errorResponse = { $ref: 'GatehouseError#' }
const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 32 } },
  required: ['id'],
  additionalProperties: false
} as const
const redirectUriField = { type: 'string', minLength: 1, maxLength: 2000, description: 'One of LOGIN_REDIRECT_URIS, exactly' } as const

const listSchema = {
  tags: ['auth'],
  summary: 'The external providers users can sign in with',
  security: [],
  response: {
    200: {
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } }, required: ['id', 'name'], additionalProperties: false }
    }
  }
} as const

const authorizeSchema = {
  tags: ['auth'],
  summary: 'Start signing in with a provider: 302 to the provider',
  description: 'Open in the browser (a top-level navigation). Answers 302 to the provider\'s authorization endpoint with `state`, `nonce` (OIDC) and a PKCE S256 challenge, and sets a short-lived HttpOnly SameSite=Lax cookie that binds the flow to this browser: the callback signs in only the browser that started it (one flow per browser at a time: a newer one replaces the cookie). `redirect_uri` must be one of LOGIN_REDIRECT_URIS exactly (INVALID_REDIRECT_URI). `link` is the ticket of an `authorize_url` from POST /auth/providers/:id/link (then `redirect_uri` is the one given there). A provider that cannot be reached (discovery) answers 503.',
  security: [],
  params: idParams,
  querystring: {
    type: 'object',
    properties: { redirect_uri: redirectUriField, link: { type: 'string', minLength: 1, maxLength: 128 } },
    additionalProperties: false
  },
  response: { 302: { type: 'null', description: 'To the provider' }, 400: errorResponse, 404: errorResponse, 503: errorResponse }
} as const

const callbackSchema = {
  tags: ['auth'],
  summary: 'Where the provider sends the browser back (register <AUTH_ISSUER>/auth/providers/<id>/callback at the provider)',
  description: 'Validates the answer (state bound to this browser\'s cookie, PKCE, and for OIDC the ID token: issuer, audience, signature, exp/iat, nonce), then answers 302 to the flow\'s redirect_uri with `?code=<one-time login code>` (60 s, single use: POST /auth/providers/exchange), for a link flow `?linked=<provider id>`, or `?error=<code>`: `access_denied` (the user or the provider refused), `temporarily_unavailable` (the provider cannot be reached), `invalid_response` (its answer did not validate: a wrong nonce, a bad signature, a code it rejected), `email_required` (it gave no email address), `ACCOUNT_EXISTS` (an account has that email and cannot be linked automatically: sign in and link), `ACCOUNT_DISABLED`, `EMAIL_NOT_VERIFIED` (REQUIRE_VERIFIED_EMAIL), `CONFLICT` (link: the identity belongs to another account, or the account has another identity of this provider). A callback with an unknown, used or expired state, or from another browser than the one that started the flow, is 400 INVALID_PROVIDER_STATE and signs no one in.',
  security: [],
  params: idParams,
  querystring: {
    type: 'object',
    properties: {
      state: { type: 'string', maxLength: 2048 },
      code: { type: 'string', maxLength: 4096 },
      error: { type: 'string', maxLength: 256 },
      error_description: { type: 'string', maxLength: 2048 },
      iss: { type: 'string', maxLength: 2048 }
    }
  },
  response: { 302: { type: 'null', description: 'Back to the app' }, 400: errorResponse, 404: errorResponse, 503: errorResponse }
} as const

const exchangeSchema = {
  tags: ['auth'],
  summary: 'Exchange the one-time login code of a provider sign-in for the login response',
  description: 'The code from the callback\'s redirect (60 s, single use). Answers like POST /auth/login: the tokens and the user, or with `"session": "cookie"` the refresh token as an HttpOnly cookie. When the account has a second factor the answer is 401 MFA_REQUIRED with an `mfa_token`, as for a password: complete it at POST /auth/mfa/verify. The access token\'s amr is ["fed"]. An unknown, used or expired code is 401 INVALID_LOGIN_CODE.',
  security: [],
  body: {
    type: 'object',
    properties: { code: { type: 'string', minLength: 1, maxLength: 128 }, session: sessionModeField },
    required: ['code'],
    additionalProperties: false
  },
  response: { 200: tokenWithUserSchema, 400: errorResponse, 401: loginErrorSchema, 403: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const linkSchema = {
  tags: ['auth'],
  summary: 'Link a provider to the signed-in account',
  description: 'Answers `{authorize_url}`: open it in the browser (it points to GET /auth/providers/:id/authorize with a single-use ticket, valid as long as a flow). After the provider, the callback links that identity to the caller and redirects to `redirect_uri` with `?linked=<id>`, or with `?error=CONFLICT` when the identity belongs to another account.',
  security: [{ bearerAuth: [] }],
  params: idParams,
  body: { type: 'object', properties: { redirect_uri: redirectUriField }, required: ['redirect_uri'], additionalProperties: false },
  response: {
    200: { type: 'object', properties: { authorize_url: { type: 'string' } }, required: ['authorize_url'], additionalProperties: false },
    400: errorResponse,
    401: errorResponse,
    403: errorResponse,
    404: errorResponse,
    415: errorResponse,
    503: errorResponse
  }
} as const

const unlinkSchema = {
  tags: ['auth'],
  summary: 'Unlink a provider from the signed-in account',
  description: 'CONFLICT when it is the account\'s last way to sign in (no password, no other provider, no passkey): set a password through the password reset first. NOT_FOUND when no identity of that provider is linked.',
  security: [{ bearerAuth: [] }],
  params: idParams,
  response: { 204: { type: 'null', description: 'Unlinked' }, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 503: errorResponse }
} as const

function backTo (reply: FastifyReply, redirectUri: string, params: Record<string, string>): FastifyReply {
  const url = new URL(redirectUri)
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value)
  return reply.header('referrer-policy', 'no-referrer').redirect(url.href, 302)
}

export default async function providerRoutes (fastify: FastifyInstance): Promise<void> {
  const providers = fastify.providers
  const cookiePath = `${fastify.prefix}/providers`
  const secureCookie = new URL(providers.options.callbackBase).protocol === 'https:'
  const cookieAttributes = { httpOnly: true, secure: secureCookie, sameSite: 'lax' as const, path: cookiePath }

  function entryOf (id: string): ProviderEntry {
    const entry = providers.get(id)
    if (entry === undefined) throw gatehouseError('NOT_FOUND', 'No such provider')
    return entry
  }

  function checkedRedirectUri (uri: string | undefined): string {
    if (uri === undefined || !providers.options.redirectUris.has(uri)) throw gatehouseError('INVALID_REDIRECT_URI')
    return uri
  }

  function unavailable (err: unknown): Error {
    return gatehouseError('SERVICE_UNAVAILABLE', 'The provider cannot be reached right now', { headers: { 'retry-after': '5' }, cause: err })
  }

  fastify.get('/providers', { schema: listSchema }, async () => providers.list())

  fastify.get('/providers/:id/authorize', { schema: authorizeSchema }, async (request, reply) => {
    const entry = entryOf((request.params as { id: string }).id)
    const query = request.query as { redirect_uri?: string, link?: string }
    let flow
    if (query.link !== undefined) {
      flow = await providers.openLink(entry, query.link)
      if (flow === null) throw gatehouseError('INVALID_PROVIDER_STATE')
    } else {
      const redirectUri = checkedRedirectUri(query.redirect_uri)
      flow = await providers.startFlow(entry, redirectUri)
    }
    let url: URL
    try {
      url = await providers.client.authorizationUrl(entry, flow.request)
    } catch (err) {
      if (err instanceof ProviderError) {
        request.log.warn({ provider: entry.id, reason: err.message }, 'provider unavailable: cannot start a sign-in')
        throw unavailable(err)
      }
      throw err
    }
    reply.setCookie(FLOW_COOKIE, flow.binding, { ...cookieAttributes, maxAge: providers.options.flowTtl })
    return reply.redirect(url.href, 302)
  })

  fastify.get('/providers/:id/callback', { schema: callbackSchema }, async (request, reply) => {
    const entry = entryOf((request.params as { id: string }).id)
    const query = request.query as { state?: string, error?: string }
    const binding = request.cookies?.[FLOW_COOKIE]
    const taken = await providers.takeFlow(entry, query.state, typeof binding === 'string' && binding !== '' ? binding : undefined)
    if (typeof taken === 'string') {
      providers.record({ type: AUDIT_EVENTS.PROVIDER_LOGIN, outcome: 'failure', reason: `state_${taken}`, details: { provider: entry.id }, request })
      throw gatehouseError('INVALID_PROVIDER_STATE')
    }
    reply.clearCookie(FLOW_COOKIE, cookieAttributes)
    const linkUserId = taken.linkUserId
    const fail = (error: 'access_denied' | 'temporarily_unavailable' | 'invalid_response', reason: string): FastifyReply => {
      providers.record({ type: linkUserId === null ? AUDIT_EVENTS.PROVIDER_LOGIN : AUDIT_EVENTS.PROVIDER_LINKED, outcome: 'failure', reason, actorId: linkUserId, subjectId: linkUserId, details: { provider: entry.id }, request })
      return backTo(reply, taken.redirectUri, { error })
    }

    if (query.error !== undefined) {
      const error = query.error === 'temporarily_unavailable' ? 'temporarily_unavailable' : 'access_denied'
      return fail(error, `provider_error:${PASSED_ON.has(query.error) ? query.error : 'other'}`)
    }

    const current = new URL(providers.client.callbackUrl(entry))
    current.search = new URL(request.url, 'http://callback.invalid').search
    let profile
    try {
      profile = await providers.client.complete(entry, current, taken.request)
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      request.log.warn({ provider: entry.id, kind: err.kind, reason: err.message }, 'provider sign-in failed')
      return fail(err.kind === 'unavailable' ? 'temporarily_unavailable' : 'invalid_response', err.kind === 'unavailable' ? 'provider_unavailable' : 'invalid_response')
    }

    let signedIn: User | null = null
    try {
      if (linkUserId !== null) {
        await providers.link(entry, profile, linkUserId, request)
        return backTo(reply, taken.redirectUri, { linked: entry.id })
      }
      const user = signedIn = await providers.signIn(entry, profile, request)
      if (fastify.hasDecorator('accounts')) fastify.accounts.assertMaySignIn(user, request, { method: 'provider', provider: entry.id })
      const code = await providers.issueLoginCode(user.id, entry)
      return backTo(reply, taken.redirectUri, { code })
    } catch (err) {
      if (err instanceof SignInRefused) return backTo(reply, taken.redirectUri, { error: err.code })
      const code = (err as { code?: unknown }).code
      if (code === 'EMAIL_NOT_VERIFIED') {
        if (signedIn !== null) await mailVerification(signedIn.id, request)
        return backTo(reply, taken.redirectUri, { error: code })
      }
      throw err
    }
  })

  // An account the provider did not verify the address of cannot sign in under
  // REQUIRE_VERIFIED_EMAIL, and cannot ask for a link while signed out: the refused sign-in
  // mails one, within the per-account mail budget (a spent budget mails nothing more).
  async function mailVerification (userId: string, request: FastifyRequest): Promise<void> {
    if (!fastify.hasDecorator('accounts')) return
    try {
      if (fastify.hasDecorator('limitByKey')) await fastify.limitByKey('mail_target', `account:${userId}`, request)
    } catch (err) {
      // A spent budget or an unreachable limiter store: no mail, the redirect still says why.
      if ((err as { code?: unknown }).code !== 'RATE_LIMITED') request.log.warn({ err }, 'providers: verification mail skipped')
      return
    }
    fastify.accounts.sendVerification(userId, 'resend', request)
  }

  fastify.post('/providers/exchange', { schema: exchangeSchema, config: { rateLimitClass: 'login' } }, async (request, reply) => {
    const { code } = request.body as { code: string }
    const redeemed = await providers.redeemLoginCode(code)
    if (redeemed === null) {
      providers.record({ type: AUDIT_EVENTS.PROVIDER_LOGIN, outcome: 'failure', reason: 'invalid_login_code', request })
      throw gatehouseError('INVALID_LOGIN_CODE')
    }
    const user: User | null = await fastify.store.prisma.user.findUnique({ where: { id: redeemed.userId } })
    if (user === null || user.deletedAt !== null) throw gatehouseError('USER_NOT_FOUND')
    if (user.status !== 'active') throw gatehouseError('ACCOUNT_DISABLED')
    if (fastify.hasDecorator('accounts')) fastify.accounts.assertMaySignIn(user, request, { method: 'provider', provider: redeemed.providerId })
    // A second factor is asked for as after a correct password (POST /auth/mfa/verify completes it).
    const challenge = await secondFactorChallenge(fastify, user, '')
    if (challenge !== null) {
      providers.record({ type: AUDIT_EVENTS.PROVIDER_LOGIN, outcome: 'success', actorId: user.id, subjectId: user.id, details: { provider: redeemed.providerId, mfa: 'required' }, request })
      return sendMfaRequired(reply, challenge)
    }
    await fastify.store.prisma.user.update({ where: { id: user.id }, data: { lastLoginAt: new Date() } })
    providers.record({ type: AUDIT_EVENTS.PROVIDER_LOGIN, outcome: 'success', actorId: user.id, subjectId: user.id, details: { provider: redeemed.providerId }, request })
    return await loginResponse(fastify, user, { request, reply, amr: AMR_PROVIDER })
  })

  fastify.register(async function bearerOnly (scope) {
    scope.addHook('onRequest', fastify.createAuthenticate({ schemes: ['bearer'] }))

    scope.post('/providers/:id/link', { schema: linkSchema }, async (request) => {
      const caller = ownBearerUser(request)
      const entry = entryOf((request.params as { id: string }).id)
      const redirectUri = checkedRedirectUri((request.body as { redirect_uri: string }).redirect_uri)
      const ticket = await providers.createLink(entry, redirectUri, caller.id, request)
      const url = new URL(`${providers.options.callbackBase}/${entry.id}/authorize`)
      url.searchParams.set('link', ticket)
      return { authorize_url: url.href }
    })

    scope.delete('/providers/:id', { schema: unlinkSchema }, async (request, reply) => {
      const caller = ownBearerUser(request)
      const { id } = request.params as { id: string }
      await providers.unlink(caller.id, id, request)
      reply.code(204).send()
    })
  })
}
