// gatehouse-users: `fastify.users`, account administration (create, disable, enable, delete, set
// global roles) with the rules every door keeps: roles of the global hierarchy only, at least one
// active global admin, the change effective at once on every instance, and an audit event.
// The /admin routes, the CLI and apps call it; see plugins/users/service.ts.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { highestRole } from '../rbac/index.ts'
import { createUsers, type Users } from './service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    users: Users
  }
}

export interface UsersOptions {
  /** The global role that administers the server. @default 'admin' when the hierarchy has it, else its highest role */
  adminRole?: string
}

async function usersPlugin (fastify: FastifyInstance, options: UsersOptions): Promise<void> {
  const global = fastify.rbac.options.global
  const adminRole = options.adminRole ?? (global.grants.has('admin') ? 'admin' : highestRole(global, global.roles) ?? 'admin')
  fastify.decorate('users', createUsers({
    prisma: fastify.store.prisma,
    provider: fastify.store.provider,
    adminRole,
    isRole: fastify.rbac.isRole,
    tokens: fastify.tokens,
    credentials: fastify.credentials,
    sessions: fastify.sessions,
    audit: fastify.audit
  }))
}

export const users = fp(usersPlugin, {
  name: 'gatehouse-users',
  fastify: '5.x',
  dependencies: ['gatehouse-store', 'gatehouse-audit', 'gatehouse-credentials', 'gatehouse-tokens', 'gatehouse-sessions', 'gatehouse-rbac']
})
export default users
export { createUsers } from './service.ts'
export type { Users, UsersDeps, AdminUser, UserChange, ChangeContext, StatusFilter } from './service.ts'
