// Mail-based account routes under /auth (CONTRACT §10): email verification and its resend, email
// change, forgotten password and reset. The work is fastify.accounts'; each route adds its rate
// limits: per client address (the `mail` and `login` classes) and per recipient or account
// (`mail_target`, through fastify.limitByKey).
import type { FastifyInstance } from 'fastify'
import createError from '@fastify/error'
import { isPlausibleEmail } from '../../plugins/credentials/index.ts'
import { addressKey, emailField, tokenField } from '../mail-fields.ts'
import { stepUp, stepUpProperties, type StepUpBody } from './step-up.ts'
import { ownBearerUser } from './caller.ts'

const ValidationError = createError('FST_ERR_VALIDATION', '%s', 400)

const errorResponse = { $ref: 'GatehouseError#' }
const accepted = {
  type: 'object',
  properties: { message: { type: 'string' } },
  required: ['message'],
  additionalProperties: false
} as const

const verifySchema = {
  tags: ['auth'],
  summary: 'Confirm an email address with the token of a verification or email-change mail',
  description: 'The token of `<APP_URL>/verify-email?token=...`. It works once. For a verification mail the account\'s address is then verified (`email_verified: true` in GET /auth/me); for an email-change mail the account\'s email becomes the new, verified address.',
  security: [],
  body: { type: 'object', properties: { token: tokenField }, required: ['token'], additionalProperties: false },
  response: { 204: { type: 'null', description: 'Verified' }, 400: errorResponse, 409: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const resendSchema = {
  tags: ['auth'],
  summary: 'Send the verification mail again',
  description: 'A new link replaces the previous ones. Nothing is sent when the address is already verified.',
  security: [{ bearerAuth: [] }],
  response: { 202: accepted, 401: errorResponse, 403: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const changeSchema = {
  tags: ['auth'],
  summary: 'Change the account\'s email address (after confirming the new one)',
  description: 'Requires the current password. A confirmation link goes to the new address and a notice to the current one; the email changes only when the link is followed (POST /auth/email/verify). An account with a second factor also needs a step-up: a current TOTP `code` or a `recovery_code`, or an access token from a multi-factor login in the last few minutes (STEP_UP_MAX_AGE); else 401 INSUFFICIENT_AUTHENTICATION.',
  security: [{ bearerAuth: [] }],
  body: {
    type: 'object',
    properties: { new_email: emailField, current_password: { type: 'string' }, ...stepUpProperties },
    required: ['new_email', 'current_password'],
    additionalProperties: false
  },
  response: { 202: accepted, 400: errorResponse, 401: errorResponse, 403: errorResponse, 409: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const forgotSchema = {
  tags: ['auth'],
  summary: 'Ask for a password-reset mail',
  description: 'The same 202 answer, in the same time, whether or not the address has an account; a mail (`<APP_URL>/reset-password?token=...`) goes only to an existing, active account. A newer mail makes older links invalid.',
  security: [],
  body: { type: 'object', properties: { email: emailField }, required: ['email'], additionalProperties: false },
  response: { 202: accepted, 400: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

const resetSchema = {
  tags: ['auth'],
  summary: 'Choose a new password with the token of a reset mail',
  description: 'The token works once, even when sent several times at once. The password policy applies (WEAK_PASSWORD; the token stays usable then). Every session, access token and API key of the user stops working, and a notice mail goes to the account.',
  security: [],
  body: {
    type: 'object',
    properties: { token: tokenField, new_password: { type: 'string' } },
    required: ['token', 'new_password'],
    additionalProperties: false
  },
  response: { 204: { type: 'null', description: 'Password changed' }, 400: errorResponse, 415: errorResponse, 429: errorResponse, 503: errorResponse }
} as const

export default async function emailRoutes (fastify: FastifyInstance): Promise<void> {
  const accounts = fastify.accounts

  fastify.post('/email/verify', { schema: verifySchema, config: { rateLimitClass: 'login' } }, async (request, reply) => {
    const { token } = request.body as { token: string }
    await accounts.verifyEmail(token, request)
    reply.code(204).send()
  })

  fastify.post('/password/forgot', { schema: forgotSchema, config: { rateLimitClass: 'mail' } }, async (request, reply) => {
    const email = fastify.credentials.normalizeEmail((request.body as { email: string }).email)
    // Counted per address whether or not it has an account: the limit itself tells nothing.
    await fastify.limitByKey('mail_target', addressKey(email), request)
    accounts.forgotPassword(email, request)
    reply.code(202)
    return { message: 'If this address belongs to an active account, a reset link is on its way' }
  })

  fastify.post('/password/reset', { schema: resetSchema, config: { rateLimitClass: 'login' } }, async (request, reply) => {
    const { token, new_password: newPassword } = request.body as { token: string, new_password: string }
    await accounts.resetPassword(token, newPassword, request)
    reply.code(204).send()
  })

  fastify.register(async function bearerOnly (scope) {
    scope.addHook('onRequest', fastify.createAuthenticate({ schemes: ['bearer'] }))

    scope.post('/email/verify/resend', { schema: resendSchema, config: { rateLimitClass: 'mail' } }, async (request, reply) => {
      const caller = ownBearerUser(request)
      await fastify.limitByKey('mail_target', `account:${caller.id}`, request)
      accounts.sendVerification(caller.id, 'resend', request)
      reply.code(202)
      return { message: 'Unless the address is already verified, a verification link is on its way' }
    })

    scope.post('/email', { schema: changeSchema, config: { rateLimitClass: 'mail' } }, async (request, reply) => {
      const caller = ownBearerUser(request)
      const body = request.body as { new_email: string, current_password: string } & StepUpBody
      const newEmail = fastify.credentials.normalizeEmail(body.new_email)
      if (!isPlausibleEmail(newEmail)) throw new ValidationError('body/new_email must be an email address')
      // The step-up is decided before anything is counted; a code it was given is checked once the password is right.
      const confirm = await stepUp(fastify, request, caller.id, body, 'email_change')
      await fastify.limitByKey('mail_target', `account:${caller.id}`, request)
      await fastify.limitByKey('mail_target', addressKey(newEmail), request)
      await accounts.requestEmailChange(caller.id, newEmail, body.current_password, request, { confirm })
      reply.code(202)
      return { message: 'A confirmation link is on its way to the new address' }
    })
  })
}
