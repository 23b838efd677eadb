// gatehouse-orgs: `fastify.orgs`, organizations and memberships with the rules every door keeps:
// roles of the organization hierarchy only, at least one admin per organization, the cached
// membership dropped on every instance, and an audit event. See plugins/orgs/service.ts.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { highestRole } from '../rbac/index.ts'
import { createOrgs, type Orgs } from './service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    orgs: Orgs
  }
}

async function orgsPlugin (fastify: FastifyInstance): Promise<void> {
  const org = fastify.rbac.options.org
  fastify.decorate('orgs', createOrgs({
    prisma: fastify.store.prisma,
    adminRole: highestRole(org, org.roles) ?? 'admin',
    isOrgRole: fastify.rbac.isOrgRole,
    normalizeEmail: fastify.credentials.normalizeEmail,
    membershipChanged: fastify.rbac.membershipChanged,
    audit: fastify.audit
  }))
}

export const orgs = fp(orgsPlugin, {
  name: 'gatehouse-orgs',
  fastify: '5.x',
  dependencies: ['gatehouse-store', 'gatehouse-audit', 'gatehouse-credentials', 'gatehouse-rbac']
})
export default orgs
export { createOrgs } from './service.ts'
export { slugify, nextFreeSlug } from './slug.ts'
export type { Orgs, OrgsDeps, OrgChangeContext, Member } from './service.ts'
