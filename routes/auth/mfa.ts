// Second-factor routes under /auth/mfa (registered by routes/auth/index.ts): TOTP enrolment and
// removal, recovery codes, and the second step of a login (POST /auth/mfa/verify). See docs/mfa.md.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import { loginResponse, tokenWithUserSchema } from './login-response.ts'
import { sessionModeField } from './cookie-session.ts'
import { codeField, proofOf, recoveryCodeField, stepUpProperties, type StepUpBody } from './step-up.ts'

const errorResponse = { $ref: 'GatehouseError#' }
const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 429: errorResponse, 503: errorResponse }
const bearer = [{ bearerAuth: [] }]

const mfaTokenField = { type: 'string', minLength: 1, maxLength: 128, description: 'The mfa_token of the MFA_REQUIRED answer' } as const
/** A PublicKeyCredential as JSON (what @simplewebauthn/browser's startAuthentication returns). */
export const credentialField = {
  type: 'object',
  description: 'The WebAuthn answer as JSON: {id, rawId, type, response: {...}, clientExtensionResults}',
  properties: { id: { type: 'string', maxLength: 1400 }, type: { type: 'string', maxLength: 32 }, response: { type: 'object', additionalProperties: true } },
  required: ['id', 'response'],
  additionalProperties: true
} as const

const recoveryCodesResponse = {
  type: 'object',
  properties: { recovery_codes: { type: 'array', items: { type: 'string' }, description: 'Shown once; each works once' } },
  required: ['recovery_codes'],
  additionalProperties: false
} as const

/** The caller as one of our own users holding an access token of this server. */
function ownUser (request: FastifyRequest): { id: string, email: string } {
  const user = request.user
  if (user === null || user === undefined) throw missingAuthorization()
  if (user.external || user.clientId !== undefined || user.scheme !== 'bearer') {
    throw gatehouseError('FORBIDDEN', 'This requires an access token of one of this server\'s users')
  }
  return { id: user.id, email: user.email ?? '' }
}

function noStore (reply: FastifyReply): void {
  reply.header('cache-control', 'no-store')
}

export default async function mfaRoutes (fastify: FastifyInstance): Promise<void> {
  if (!fastify.hasDecorator('mfa')) throw new Error('routes/auth/mfa needs gatehouse-mfa (fastify.mfa) registered before it')
  const mfa = fastify.mfa

  fastify.post('/mfa/verify', {
    schema: {
      tags: ['auth'],
      summary: 'Complete a login with a second factor',
      description: 'After 401 MFA_REQUIRED: send the `mfa_token` with exactly one of `code` (TOTP), `recovery_code` or `credential` (a passkey answer to POST /auth/mfa/webauthn/options). A wrong answer is 401 INVALID_MFA_CODE and counts against the account like a wrong password; after 5 wrong answers the mfa_token is dead. A TOTP code is accepted once.',
      security: [],
      body: {
        type: 'object',
        properties: { mfa_token: mfaTokenField, code: codeField, recovery_code: recoveryCodeField, credential: credentialField, session: sessionModeField },
        required: ['mfa_token'],
        oneOf: [{ required: ['code'] }, { required: ['recovery_code'] }, { required: ['credential'] }],
        additionalProperties: false
      },
      response: { 200: tokenWithUserSchema, ...errors }
    },
    config: { rateLimitClass: 'login' }
  }, async (request, reply) => {
    const body = request.body as { mfa_token: string, code?: string, recovery_code?: string, credential?: unknown }
    const done = await mfa.verify(body.mfa_token, { code: body.code, recoveryCode: body.recovery_code, credential: body.credential }, request)
    noStore(reply)
    return await loginResponse(fastify, done.user, { request, reply, amr: done.amr, clientId: done.clientId === '' ? undefined : done.clientId })
  })

  fastify.post('/mfa/webauthn/options', {
    schema: {
      tags: ['auth'],
      summary: 'Passkey request options for the second step of a login',
      description: 'Pass the result to navigator.credentials.get (e.g. @simplewebauthn/browser startAuthentication), then send the answer as `credential` to POST /auth/mfa/verify. The challenge is single use and short-lived.',
      security: [],
      body: { type: 'object', properties: { mfa_token: mfaTokenField }, required: ['mfa_token'], additionalProperties: false },
      response: { 200: { type: 'object', additionalProperties: true, description: 'PublicKeyCredentialRequestOptionsJSON' }, ...errors }
    },
    config: { rateLimitClass: 'login' }
  }, async (request, reply) => {
    if (fastify.passkeys === null) throw gatehouseError('NOT_FOUND', 'Passkeys are not enabled on this server')
    const { mfa_token: mfaToken } = request.body as { mfa_token: string }
    const step = await mfa.liveStep(mfaToken)
    noStore(reply)
    return await fastify.passkeys.secondFactorOptions(step)
  })

  // Managing one's own factors needs a session of this server, not a Basic password or an API key.
  fastify.register(async function bearerOnly (scope) {
    scope.addHook('onRequest', fastify.createAuthenticate({ schemes: ['bearer'] }))

    scope.get('/mfa', {
      schema: {
        tags: ['auth'],
        summary: 'The second factors of the caller',
        security: bearer,
        response: {
          200: {
            type: 'object',
            properties: { totp: { type: 'boolean' }, passkeys: { type: 'integer' }, recovery_codes: { type: 'integer', description: 'Unused recovery codes left' } },
            required: ['totp', 'passkeys', 'recovery_codes'],
            additionalProperties: false
          },
          ...errors
        }
      }
    }, async (request) => {
      const state = await mfa.status(ownUser(request).id)
      return { totp: state.totp, passkeys: state.passkeys, recovery_codes: state.recoveryCodes }
    })

    scope.post('/mfa/totp/setup', {
      schema: {
        tags: ['auth'],
        summary: 'Start TOTP enrolment: a new secret, pending until confirmed',
        description: 'Answers the base32 secret, the otpauth:// URI authenticator apps read, and that URI as a QR code (SVG data URL). TOTP turns on only with POST /auth/mfa/totp/confirm. Calling it again replaces a pending secret; with TOTP already on it is 409 CONFLICT. An account that already has a passkey needs a step-up first: a multi-factor login in the last few minutes (STEP_UP_MAX_AGE) or an unused `recovery_code`, else 401 INSUFFICIENT_AUTHENTICATION.',
        security: bearer,
        body: { type: ['object', 'null'], properties: stepUpProperties, additionalProperties: false },
        response: {
          200: {
            type: 'object',
            properties: { secret: { type: 'string' }, otpauth_uri: { type: 'string' }, qr_code: { type: 'string', description: 'data:image/svg+xml;base64,...' } },
            required: ['secret', 'otpauth_uri', 'qr_code'],
            additionalProperties: false
          },
          ...errors
        }
      }
    }, async (request, reply) => {
      const setup = await mfa.setupTotp(ownUser(request), { ...proofOf(request.body as StepUpBody), caller: request.user }, request)
      noStore(reply)
      return { secret: setup.secret, otpauth_uri: setup.otpauthUri, qr_code: setup.qrCode }
    })

    scope.post('/mfa/totp/confirm', {
      schema: {
        tags: ['auth'],
        summary: 'Turn TOTP on with a first correct code; answers 10 recovery codes (shown once)',
        security: bearer,
        body: { type: 'object', properties: { code: codeField }, required: ['code'], additionalProperties: false },
        response: { 200: recoveryCodesResponse, ...errors }
      }
    }, async (request, reply) => {
      const { code } = request.body as { code: string }
      const caller = ownUser(request)
      const codes = await mfa.confirmTotp(caller.id, code, request)
      // Cached HTTP Basic verifications of the account must not outlive its new second factor.
      if (fastify.hasDecorator('credentials')) await fastify.credentials.forgetUser(caller.id)
      noStore(reply)
      return { recovery_codes: codes }
    })

    scope.delete('/mfa/totp', {
      schema: {
        tags: ['auth'],
        summary: 'Turn TOTP off (a current code, a recovery code, or a recent multi-factor login)',
        description: 'Send a current `code` or a `recovery_code`; without one, the access token must come from a multi-factor login in the last few minutes (STEP_UP_MAX_AGE), else 401 INSUFFICIENT_AUTHENTICATION. Recovery codes go too when no passkey is left.',
        security: bearer,
        body: { type: ['object', 'null'], properties: stepUpProperties, additionalProperties: false },
        response: { 204: { type: 'null', description: 'TOTP is off' }, ...errors }
      },
      config: { rateLimitClass: 'login' }
    }, async (request, reply) => {
      await mfa.disableTotp(ownUser(request).id, { ...proofOf(request.body as StepUpBody), caller: request.user }, request)
      reply.code(204).send()
    })

    scope.post('/mfa/recovery-codes', {
      schema: {
        tags: ['auth'],
        summary: 'A new set of 10 recovery codes; the previous set stops working',
        description: 'Send a current `code` or a `recovery_code`; without one, the access token must come from a multi-factor login in the last few minutes (STEP_UP_MAX_AGE), else 401 INSUFFICIENT_AUTHENTICATION.',
        security: bearer,
        body: { type: ['object', 'null'], properties: stepUpProperties, additionalProperties: false },
        response: { 200: recoveryCodesResponse, ...errors }
      },
      config: { rateLimitClass: 'login' }
    }, async (request, reply) => {
      const codes = await mfa.regenerateRecoveryCodes(ownUser(request).id, { ...proofOf(request.body as StepUpBody), caller: request.user }, request)
      noStore(reply)
      return { recovery_codes: codes }
    })
  })
}
