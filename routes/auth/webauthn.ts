// Passkey routes under /auth/webauthn (registered by routes/auth/index.ts): registration and
// management of the caller's passkeys, and passwordless login with a discoverable credential.
// Without WEBAUTHN_RP_ID (or an AUTH_ISSUER whose host can be one) every route answers 404.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import type { Passkeys } from '../../plugins/mfa/index.ts'
import type { User } from '../../plugins/store/index.ts'
import { loginResponse, tokenWithUserSchema } from './login-response.ts'
import { sessionModeField } from './cookie-session.ts'
import { credentialField } from './mfa.ts'
import { requireStepUp, stepUpProperties, type StepUpBody } from './step-up.ts'

const errorResponse = { $ref: 'GatehouseError#' }
const errors = { 400: errorResponse, 401: errorResponse, 403: errorResponse, 404: errorResponse, 409: errorResponse, 429: errorResponse, 503: errorResponse }
const bearer = [{ bearerAuth: [] }]
const nameField = { type: 'string', minLength: 1, maxLength: 100 } as const
const idParams = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['id'], additionalProperties: false } as const
const optionsResponse = { type: 'object', additionalProperties: true } as const

function ownUser (request: FastifyRequest): { id: string } {
  const user = request.user
  if (user === null || user === undefined) throw missingAuthorization()
  if (user.external || user.clientId !== undefined || user.scheme !== 'bearer') {
    throw gatehouseError('FORBIDDEN', 'This requires an access token of one of this server\'s users')
  }
  return { id: user.id }
}

function noStore (reply: FastifyReply): void {
  reply.header('cache-control', 'no-store')
}

export default async function webauthnRoutes (fastify: FastifyInstance): Promise<void> {
  function passkeys (): Passkeys {
    if (!fastify.hasDecorator('passkeys') || fastify.passkeys === null) throw gatehouseError('NOT_FOUND', 'Passkeys are not enabled on this server')
    return fastify.passkeys
  }

  fastify.post('/webauthn/login/options', {
    schema: {
      tags: ['auth'],
      summary: 'Start a passwordless login with a passkey',
      description: 'Answers `{challenge_id, options}`: pass `options` to navigator.credentials.get (discoverable credentials: no account is named), then send the answer with the challenge_id to POST /auth/webauthn/login. The challenge is single use and short-lived.',
      security: [],
      body: { type: ['object', 'null'], additionalProperties: false },
      response: {
        200: { type: 'object', properties: { challenge_id: { type: 'string' }, options: optionsResponse }, required: ['challenge_id', 'options'] },
        ...errors
      }
    },
    config: { rateLimitClass: 'login' }
  }, async (_request, reply) => {
    const { challengeId, options } = await passkeys().loginOptions()
    noStore(reply)
    return { challenge_id: challengeId, options }
  })

  fastify.post('/webauthn/login', {
    schema: {
      tags: ['auth'],
      summary: 'Log in with a passkey (no password)',
      description: 'The access token\'s amr is ["hwk","user"], plus "mfa" when the authenticator verified the user (PIN or biometrics). A wrong, replayed or expired answer is 401 INVALID_MFA_CODE. With REQUIRE_VERIFIED_EMAIL, a valid answer for an account whose address is not verified is 403 EMAIL_NOT_VERIFIED.',
      security: [],
      body: {
        type: 'object',
        properties: { challenge_id: { type: 'string', minLength: 1, maxLength: 64 }, credential: credentialField, session: sessionModeField },
        required: ['challenge_id', 'credential'],
        additionalProperties: false
      },
      response: { 200: tokenWithUserSchema, ...errors }
    },
    config: { rateLimitClass: 'login' }
  }, async (request, reply) => {
    const body = request.body as { challenge_id: string, credential: unknown }
    // REQUIRE_VERIFIED_EMAIL holds for a passkey too: it is told only after a valid assertion.
    const maySignIn = fastify.hasDecorator('accounts') ? (user: User) => fastify.accounts.assertMaySignIn(user, request, { method: 'webauthn' }) : undefined
    const { user, amr } = await passkeys().login(body.challenge_id, body.credential, request, maySignIn)
    noStore(reply)
    return await loginResponse(fastify, user, { request, reply, amr })
  })

  fastify.register(async function bearerOnly (scope) {
    scope.addHook('onRequest', fastify.createAuthenticate({ schemes: ['bearer'] }))

    scope.post('/webauthn/register/options', {
      schema: {
        tags: ['auth'],
        summary: 'Start registering a passkey for the caller',
        description: 'Answers PublicKeyCredentialCreationOptionsJSON for navigator.credentials.create (e.g. @simplewebauthn/browser startRegistration); a discoverable credential is asked for. Send the answer to POST /auth/webauthn/register. An account that already has a second factor needs a step-up first: a current `code`, a `recovery_code`, or a multi-factor login in the last few minutes (STEP_UP_MAX_AGE), else 401 INSUFFICIENT_AUTHENTICATION.',
        security: bearer,
        body: { type: ['object', 'null'], properties: stepUpProperties, additionalProperties: false },
        response: { 200: optionsResponse, ...errors }
      }
    }, async (request, reply) => {
      const caller = ownUser(request)
      // The gate of a registration: its challenge (single use, 5 minutes, this account's) comes only from here.
      await requireStepUp(fastify, request, caller.id, request.body as StepUpBody, 'passkey_register')
      const user = await fastify.store.prisma.user.findUnique({ where: { id: caller.id }, select: { id: true, email: true, name: true } })
      if (user === null) throw gatehouseError('USER_NOT_FOUND')
      noStore(reply)
      return await passkeys().registrationOptions(user)
    })

    scope.post('/webauthn/register', {
      schema: {
        tags: ['auth'],
        summary: 'Register the passkey the browser created',
        security: bearer,
        body: { type: 'object', properties: { credential: credentialField, name: nameField }, required: ['credential'], additionalProperties: false },
        response: { 201: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'], additionalProperties: false }, ...errors }
      }
    }, async (request, reply) => {
      const body = request.body as { credential: unknown, name?: string }
      const caller = ownUser(request)
      const created = await passkeys().register(caller.id, body.credential, body.name, request)
      // Cached HTTP Basic verifications of the account must not outlive its new second factor.
      if (fastify.hasDecorator('credentials')) await fastify.credentials.forgetUser(caller.id)
      reply.code(201)
      return created
    })

    scope.get('/webauthn/credentials', {
      schema: {
        tags: ['auth'],
        summary: 'The caller\'s passkeys',
        security: bearer,
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                name: { type: 'string' },
                created_at: { type: 'string', format: 'date-time' },
                last_used_at: { type: ['string', 'null'], format: 'date-time' },
                device_type: { type: 'string', enum: ['singleDevice', 'multiDevice'] },
                backed_up: { type: 'boolean' },
                transports: { type: 'array', items: { type: 'string' } }
              },
              required: ['id', 'name', 'created_at', 'last_used_at', 'device_type', 'backed_up', 'transports'],
              additionalProperties: false
            }
          },
          ...errors
        }
      }
    }, async (request) => {
      const list = await passkeys().list(ownUser(request).id)
      return list.map((p) => ({
        id: p.id,
        name: p.name,
        created_at: p.createdAt.toISOString(),
        last_used_at: p.lastUsedAt?.toISOString() ?? null,
        device_type: p.deviceType,
        backed_up: p.backedUp,
        transports: p.transports
      }))
    })

    scope.patch('/webauthn/credentials/:id', {
      schema: {
        tags: ['auth'],
        summary: 'Rename one of the caller\'s passkeys',
        security: bearer,
        params: idParams,
        body: { type: 'object', properties: { name: nameField }, required: ['name'], additionalProperties: false },
        response: { 204: { type: 'null', description: 'Renamed' }, ...errors }
      }
    }, async (request, reply) => {
      const { id } = request.params as { id: string }
      await passkeys().rename(ownUser(request).id, id, (request.body as { name: string }).name)
      reply.code(204).send()
    })

    scope.delete('/webauthn/credentials/:id', {
      schema: {
        tags: ['auth'],
        summary: 'Remove one of the caller\'s passkeys',
        description: 'Removing a factor is as sensitive as turning one off: send a current `code` or a `recovery_code`, or use an access token from a multi-factor login in the last few minutes (STEP_UP_MAX_AGE); else 401 INSUFFICIENT_AUTHENTICATION.',
        security: bearer,
        params: idParams,
        body: { type: ['object', 'null'], properties: stepUpProperties, additionalProperties: false },
        response: { 204: { type: 'null', description: 'Removed' }, ...errors }
      }
    }, async (request, reply) => {
      const caller = ownUser(request)
      const { id } = request.params as { id: string }
      const api = passkeys()
      await requireStepUp(fastify, request, caller.id, request.body as StepUpBody, 'passkey_remove')
      await api.remove(caller.id, id, request)
      reply.code(204).send()
    })
  })
}
