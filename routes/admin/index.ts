// /admin: account administration and the audit log, for the global admin role. The rules of a
// change (last active admin, roles of the hierarchy, effective at once, audited) are
// fastify.users' (gatehouse-users), the same the CLI goes through.
import { mayAdminister } from '../../lib/auth-user.ts'
import { gatehouseError } from '../../lib/errors.ts'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ChangeContext, StatusFilter } from '../../plugins/users/index.ts'
import { listAuditEvents } from './audit.ts'
import { apiKeyInfo, apiKeyInfoSchema } from '../auth/account.ts'
import { badQuery, decodeCursor, pageSize, pagingQuery } from './paging.ts'
import passwordResetRoute from './password-reset.ts'

export { listAuditEvents } from './audit.ts'

const errorRef = { $ref: 'GatehouseError#' } as const
const errors = { 400: errorRef, 401: errorRef, 403: errorRef, 404: errorRef, 409: errorRef, 503: errorRef }
const bearer = [{ bearerAuth: [] }]
const uuid = { type: 'string', format: 'uuid' } as const
const dateTime = { type: 'string', format: 'date-time' } as const

function time (name: string, raw: string | undefined): Date | undefined {
  if (raw === undefined) return undefined
  const at = new Date(raw)
  if (Number.isNaN(at.getTime())) throw badQuery(`querystring/${name} must be an ISO 8601 date-time`)
  return at
}

export interface AdminRoutesOptions {
  /** Every admin route also needs a multi-factor login (ADMIN_REQUIRE_MFA). @default false */
  requireMfa?: boolean
}

export default async function adminRoutes (fastify: FastifyInstance, options: AdminRoutesOptions = {}): Promise<void> {
  const global = fastify.rbac.options.global
  const users = fastify.users
  const adminRole = users.adminRole

  fastify.addHook('onRequest', fastify.authenticate)
  // CONTRACT §14: a trusted issuer's token is refused here whatever its roles, unless its entry
  // sets `adminApi: true`; an OAuth client's token always.
  fastify.addHook('preHandler', async function localAdministrators (request) {
    if (!mayAdminister(request.user)) throw gatehouseError('FORBIDDEN', 'The admin API accepts only accounts of this server')
  })
  fastify.addHook('preHandler', fastify.requireRole(adminRole))
  if (options.requireMfa === true) fastify.addHook('preHandler', fastify.requireMfa())

  const userSchema = {
    type: 'object',
    properties: {
      id: uuid,
      email: { type: 'string' },
      name: { type: 'string', nullable: true },
      status: { type: 'string', enum: ['active', 'disabled'] },
      roles: { type: 'array', items: { type: 'string' } },
      createdAt: dateTime,
      lastLoginAt: { ...dateTime, nullable: true },
      deletedAt: { ...dateTime, nullable: true },
      email_verified: { type: 'boolean', description: 'Whether the user proved the address is theirs' },
      emailVerifiedAt: { ...dateTime, nullable: true }
    },
    required: ['id', 'email', 'status', 'roles', 'createdAt', 'email_verified']
  } as const

  function by (request: FastifyRequest): ChangeContext {
    return { actorId: request.user?.id ?? null, request }
  }

  fastify.get<{ Querystring: { limit?: string, cursor?: string, email?: string, status?: StatusFilter } }>('/users', {
    schema: {
      tags: ['admin'],
      summary: 'List accounts (paged; filter by email substring and status)',
      security: bearer,
      querystring: {
        type: 'object',
        properties: {
          ...pagingQuery,
          email: { type: 'string', minLength: 1, maxLength: 320, description: 'Substring of the (normalised) email' },
          status: { type: 'string', enum: ['active', 'disabled', 'deleted'], description: 'Default: every account not deleted' }
        },
        additionalProperties: false
      },
      response: {
        200: {
          type: 'object',
          properties: { items: { type: 'array', items: userSchema }, total: { type: 'integer' }, next: { type: 'string', nullable: true } },
          required: ['items', 'total', 'next']
        },
        ...errors
      }
    }
  }, async (request) => {
    const { limit, cursor, email, status } = request.query
    return users.list({ email, status, limit: pageSize(limit), cursor: decodeCursor(cursor) })
  })

  fastify.patch<{ Params: { id: string }, Body: { disabled?: boolean, roles?: string[] } }>('/users/:id', {
    schema: {
      tags: ['admin'],
      summary: 'Disable or enable an account, or set its global roles',
      security: bearer,
      params: { type: 'object', properties: { id: uuid }, required: ['id'], additionalProperties: false },
      body: {
        type: 'object',
        properties: {
          disabled: { type: 'boolean' },
          roles: { type: 'array', items: { type: 'string', enum: [...global.roles] }, minItems: 1, maxItems: global.roles.length, uniqueItems: true }
        },
        minProperties: 1,
        additionalProperties: false
      },
      response: { 200: userSchema, ...errors }
    }
  }, async (request) => {
    const { user } = await users.update(request.params.id, request.body, by(request))
    return user
  })

  fastify.delete<{ Params: { id: string } }>('/users/:id', {
    schema: {
      tags: ['admin'],
      summary: 'Soft-delete an account: its data is kept, its tokens stop working at once',
      security: bearer,
      params: { type: 'object', properties: { id: uuid }, required: ['id'], additionalProperties: false },
      response: { 204: { type: 'null', description: 'Deleted' }, ...errors }
    }
  }, async (request, reply) => {
    await users.softDelete(request.params.id, by(request))
    return reply.code(204).send()
  })

  fastify.delete<{ Params: { id: string } }>('/users/:id/mfa', {
    schema: {
      tags: ['admin'],
      summary: 'Turn off every second factor of an account (TOTP, recovery codes, passkeys)',
      description: 'For a user who lost their authenticator. Recorded in the audit log as mfa_reset. The user\'s sessions are kept.',
      security: bearer,
      params: { type: 'object', properties: { id: uuid }, required: ['id'], additionalProperties: false },
      response: { 204: { type: 'null', description: 'Every second factor removed' }, ...errors }
    }
  }, async (request, reply) => {
    if (!fastify.hasDecorator('mfa')) throw gatehouseError('NOT_FOUND', 'Second factors are not enabled on this server')
    const user = await fastify.store.prisma.user.findUnique({ where: { id: request.params.id }, select: { id: true, deletedAt: true } })
    if (user === null || user.deletedAt !== null) throw gatehouseError('NOT_FOUND', 'No such user')
    await fastify.mfa.reset(user.id, { actorId: request.user?.id, request })
    return reply.code(204).send()
  })

  const userParams = { type: 'object', properties: { id: uuid }, required: ['id'], additionalProperties: false } as const

  async function existingUser (id: string): Promise<void> {
    const found = await fastify.store.prisma.user.findUnique({ where: { id }, select: { id: true } })
    if (found === null) throw gatehouseError('NOT_FOUND', 'No account with this id')
  }

  fastify.get<{ Params: { id: string } }>('/users/:id/api-keys', {
    schema: {
      tags: ['admin'],
      summary: "An account's API keys that still work (never the keys themselves)",
      security: bearer,
      params: userParams,
      response: { 200: { type: 'array', items: apiKeyInfoSchema }, ...errors }
    }
  }, async (request) => {
    await existingUser(request.params.id)
    return (await fastify.credentials.listApiKeys(request.params.id)).map(apiKeyInfo)
  })

  fastify.delete<{ Params: { id: string, keyId: string } }>('/users/:id/api-keys/:keyId', {
    schema: {
      tags: ['admin'],
      summary: "Revoke one of an account's API keys",
      security: bearer,
      params: { type: 'object', properties: { id: uuid, keyId: uuid }, required: ['id', 'keyId'], additionalProperties: false },
      response: { 204: { type: 'null', description: 'Revoked' }, ...errors }
    }
  }, async (request, reply) => {
    await fastify.credentials.revokeApiKey(request.params.id, request.params.keyId, request, request.user?.id)
    return reply.code(204).send()
  })

  if (fastify.hasDecorator('providers')) {
    fastify.get<{ Params: { id: string } }>('/users/:id/providers', {
      schema: {
        tags: ['admin'],
        summary: "The external providers linked to an account (never their tokens)",
        security: bearer,
        params: userParams,
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: { id: { type: 'string' }, name: { type: 'string' }, email: { type: 'string', nullable: true }, linked_at: dateTime, last_login_at: { ...dateTime, nullable: true } },
              required: ['id', 'name', 'email', 'linked_at', 'last_login_at'],
              additionalProperties: false
            }
          },
          ...errors
        }
      }
    }, async (request) => {
      await existingUser(request.params.id)
      return (await fastify.providers.identities(request.params.id)).map((p) => ({ id: p.provider, name: p.name, email: p.email, linked_at: p.linkedAt.toISOString(), last_login_at: p.lastLoginAt?.toISOString() ?? null }))
    })

    fastify.delete<{ Params: { id: string, providerId: string } }>('/users/:id/providers/:providerId', {
      schema: {
        tags: ['admin'],
        summary: "Unlink a provider from an account (CONFLICT when it is the account's last way to sign in)",
        security: bearer,
        params: { type: 'object', properties: { id: uuid, providerId: { type: 'string', minLength: 1, maxLength: 32 } }, required: ['id', 'providerId'], additionalProperties: false },
        response: { 204: { type: 'null', description: 'Unlinked' }, ...errors }
      }
    }, async (request, reply) => {
      await fastify.providers.unlink(request.params.id, request.params.providerId, request, request.user?.id)
      return reply.code(204).send()
    })
  }

  if (fastify.hasDecorator('accounts')) await fastify.register(passwordResetRoute)

  fastify.get<{ Querystring: { limit?: string, cursor?: string, type?: string, user?: string, org?: string, outcome?: 'success' | 'failure', from?: string, to?: string } }>('/audit', {
    schema: {
      tags: ['admin'],
      summary: 'The audit log, newest first (paged; filter by type, user, organization, outcome and time)',
      security: bearer,
      querystring: {
        type: 'object',
        properties: {
          ...pagingQuery,
          type: { type: 'string', pattern: '^[a-z_]{1,64}$' },
          user: { ...uuid, description: 'Events where this user is the actor or the subject' },
          org: uuid,
          outcome: { type: 'string', enum: ['success', 'failure'] },
          from: { ...dateTime, description: 'Inclusive' },
          to: { ...dateTime, description: 'Inclusive' }
        },
        additionalProperties: false
      },
      response: {
        200: {
          type: 'object',
          properties: {
            items: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  type: { type: 'string' },
                  outcome: { type: 'string' },
                  reason: { type: 'string', nullable: true },
                  actorId: { type: 'string', nullable: true },
                  subjectId: { type: 'string', nullable: true },
                  orgId: { type: 'string', nullable: true },
                  ip: { type: 'string', nullable: true },
                  userAgent: { type: 'string', nullable: true },
                  details: { type: 'object', nullable: true, additionalProperties: true },
                  createdAt: dateTime
                },
                required: ['id', 'type', 'outcome', 'createdAt']
              }
            },
            next: { type: 'string', nullable: true }
          },
          required: ['items', 'next']
        },
        ...errors
      }
    }
  }, async (request) => {
    const q = request.query
    await fastify.audit.flush()
    return listAuditEvents(fastify.store.prisma, {
      type: q.type,
      userId: q.user,
      orgId: q.org,
      outcome: q.outcome,
      from: time('from', q.from),
      to: time('to', q.to),
      limit: pageSize(q.limit),
      cursor: decodeCursor(q.cursor)
    })
  })
}
