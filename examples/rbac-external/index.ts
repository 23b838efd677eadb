// RBAC on external tokens only: no database, no keys of its own. A project API whose users come
// from an identity provider (Keycloak-style claims):
//   - global roles from `realm_access.roles`, in the database-style hierarchy
//     system > dba > service > user (with its preset permissions);
//   - organization memberships from the `orgs` claim, `{ "<orgId>": "admin" | "developer" | "viewer" }`.
//
//   TRUSTED_ISSUERS='[{"issuer":"https://idp.example.com/realms/acme","discovery":true,"audiences":["projects-api"]}]' \
//   PORT=4001 npx tsx examples/rbac-external/index.ts
//   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:4001/orgs/<orgId>/projects
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { trustedIssuers, type TrustedIssuerInput, type TrustedIssuersOptions } from 'gatehouse/trusted-issuers'
import { authenticate, errorHandler } from 'gatehouse/authenticate'
import { rbac } from 'gatehouse/rbac'

export interface RbacExternalOptions {
  /** The allowlist, same shape as TRUSTED_ISSUERS. */
  issuers: readonly TrustedIssuerInput[]
  /** JWKS fetch limits (timeouts, cooldown, caps). */
  limits?: Omit<TrustedIssuersOptions, 'issuers'>
  logger?: FastifyServerOptions['logger']
}

export async function buildRbacExternal (options: RbacExternalOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  app.setErrorHandler(errorHandler)
  await app.register(trustedIssuers, { ...options.limits, issuers: options.issuers })
  await app.register(authenticate)
  await app.register(rbac, {
    roles: 'database',
    rolesClaim: 'realm_access.roles',
    orgRoles: 'org',
    orgsClaim: 'orgs'
  })

  app.get('/health', async () => ({ status: 'ok' }))

  await app.register(async (api) => {
    api.addHook('onRequest', api.authenticate)

    api.get('/me', async (request) => ({
      sub: request.user!.sub,
      roles: api.rbac.rolesOf(request.user),
      permissions: [...api.rbac.permissionsOf(request.user)].sort()
    }))

    // Global roles and permissions.
    api.get('/data', { preHandler: api.requirePermission('data:read') }, async () => ({ rows: [1, 2, 3] }))
    api.post('/data', { config: { rbac: { permission: 'data:write' } } }, async () => ({ written: true }))
    api.get('/schema', { preHandler: api.requireRole('dba') }, async () => ({ tables: ['projects'] }))

    // Organization scope: the role in the organization named by :orgId.
    api.get<{ Params: { orgId: string } }>('/orgs/:orgId/projects', { preHandler: api.requireOrgRole('viewer') },
      async (request) => ({ orgId: request.params.orgId, role: request.orgRole, projects: ['web', 'api'] }))
    api.post<{ Params: { orgId: string } }>('/orgs/:orgId/deployments', { config: { rbac: { orgRole: 'developer' } } },
      async (request, reply) => reply.code(201).send({ orgId: request.params.orgId, deployed: true }))
    api.delete<{ Params: { orgId: string } }>('/orgs/:orgId/projects/:name', { config: { rbac: { orgRole: 'admin' } } },
      async (_request, reply) => reply.code(204).send())
  })
  return app
}

if (process.argv[1]?.endsWith('examples/rbac-external/index.ts')) {
  let issuers: TrustedIssuerInput[]
  try {
    issuers = JSON.parse(process.env.TRUSTED_ISSUERS ?? '[]') as TrustedIssuerInput[]
  } catch (err) {
    process.stderr.write(`rbac-external: TRUSTED_ISSUERS is not valid JSON (${(err as Error).message})\n`)
    process.exit(1)
  }
  buildRbacExternal({ issuers, logger: { level: process.env.LOG_LEVEL ?? 'info' } })
    .then((app) => app.listen({ port: Number(process.env.PORT ?? 4001), host: process.env.HOST ?? '127.0.0.1' }))
    .catch((err: Error) => {
      process.stderr.write(`rbac-external: ${err.message}\n`)
      process.exit(1)
    })
}
