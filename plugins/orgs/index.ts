// gatehouse-orgs: `fastify.orgs`, organizations, memberships and invitations with the rules every
// door keeps: roles of the organization hierarchy only, at least one admin per organization,
// membership by invitation, the cached membership dropped on every instance, and an audit event.
// See plugins/orgs/service.ts and plugins/orgs/invitations.ts.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { OptionsError, optionChecks } from '../../lib/options.ts'
import { highestRole } from '../rbac/index.ts'
import type { Mailer } from '../mailer/index.ts'
import { createOrgs, DEFAULT_INVITATION_TTL, type Orgs } from './service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    orgs: Orgs
  }
}

export interface OrgsOptions {
  /** Seconds an invitation stays valid. @default 604800 (7 days) */
  invitationTtl?: number
  /** Where invitation links point (`<appUrl>/accept-invite?token=`). @default the mailer's appUrl */
  appUrl?: string
  /** Milliseconds since the epoch. @default Date.now */
  clock?: () => number
}

const check = optionChecks('gatehouse-orgs')

async function orgsPlugin (fastify: FastifyInstance, options: OrgsOptions): Promise<void> {
  const org = fastify.rbac.options.org
  const mailer = fastify.hasDecorator('mailer') ? fastify.getDecorator<Mailer>('mailer') : null
  // gatehouse-mailer registered after orgs would leave invitations unsent: fail at ready instead.
  fastify.addHook('onReady', async () => {
    if (mailer === null && fastify.hasDecorator('mailer')) throw new OptionsError('gatehouse-orgs', 'mailer', 'gatehouse-orgs: gatehouse-mailer was registered after it: register it first')
  })
  const appUrl = options.appUrl === undefined ? mailer?.appUrl : check.string('appUrl', options.appUrl)
  if (appUrl !== undefined && !/^https?:\/\//.test(appUrl)) check.fail('appUrl', 'must be an http(s) URL')
  if (options.clock !== undefined && typeof options.clock !== 'function') check.fail('clock', 'must be a function returning milliseconds')
  fastify.decorate('orgs', createOrgs({
    prisma: fastify.store.prisma,
    adminRole: highestRole(org, org.roles) ?? 'admin',
    isOrgRole: fastify.rbac.isOrgRole,
    normalizeEmail: fastify.credentials.normalizeEmail,
    membershipChanged: fastify.rbac.membershipChanged,
    audit: fastify.audit,
    mailer,
    appUrl,
    invitationTtl: check.integer('invitationTtl', options.invitationTtl, DEFAULT_INVITATION_TTL, { min: 1 }),
    clock: options.clock
  }))
}

export const orgs = fp(orgsPlugin, {
  name: 'gatehouse-orgs',
  fastify: '5.x',
  dependencies: ['gatehouse-store', 'gatehouse-audit', 'gatehouse-credentials', 'gatehouse-rbac']
})
export default orgs
export { createOrgs, DEFAULT_INVITATION_TTL } from './service.ts'
export { slugify, nextFreeSlug } from './slug.ts'
export type { Orgs, OrgsDeps, OrgChangeContext, Member } from './service.ts'
export type { Invitation, InvitationContext } from './invitations.ts'
export { ERRORS, gatehouseError, isGatehouseError, type ErrorCode, type GatehouseError } from '../../lib/errors.ts'
