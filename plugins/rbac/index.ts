// gatehouse-rbac: role and permission guards, with no database required.
//  - `fastify.requireRole(...roles)`: a preHandler passing when the user holds one of the
//    roles or a role above it in the hierarchy.
//  - `fastify.requirePermission(...perms)`: passes when the user's roles carry every permission.
//  - `fastify.requireOrgRole(role, { param })`: passes when the user's role in the organization
//    named by the route parameter is `role` or above.
//  - `config.rbac` on a route adds the same guards when the route is registered.
// No user: 401 MISSING_AUTHORIZATION. A user without the right: 403 FORBIDDEN.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler, RouteOptions } from 'fastify'
import type { AuthUser } from '../../lib/auth-user.ts'
import { gatehouseError, missingAuthorization } from '../../lib/errors.ts'
import {
  grantsAnyRole, grantsPermissions, grantsRole, permissionsOf, roleList, RbacConfigError, type Hierarchy
} from './hierarchy.ts'
import { readClaim, resolveOptions, type ResolvedRbacOptions, type RbacOptions } from './options.ts'
import { createMembershipCache, type MembershipCache } from './memberships.ts'

export { ROLE_PRESETS, PERMISSION_PRESETS, resolveOptions, readClaim } from './options.ts'
export type { RbacOptions, ResolvedRbacOptions, MembershipResolver, PresetName } from './options.ts'
export { createHierarchy, highestRole, RbacConfigError } from './hierarchy.ts'
export type { Hierarchy, HierarchyInput, PermissionMap } from './hierarchy.ts'
export { createMembershipCache } from './memberships.ts'

/** The bus channel carrying `{ userId, orgId }` after a membership was added, changed or removed. */
export const MEMBERSHIP_CHANNEL = 'membership'

export interface RbacRouteConfig {
  /** One of these global roles (or a higher one). */
  role?: string | readonly string[]
  /** Every one of these global permissions. */
  permission?: string | readonly string[]
  /** This role (or a higher one) in the organization named by the route parameter. */
  orgRole?: string
  /** The route parameter naming the organization. @default the plugin's orgParam ('orgId') */
  orgParam?: string
}

export interface Rbac {
  readonly options: ResolvedRbacOptions
  /** The user's global roles: `user.roles`, or for external tokens the `rolesClaim` when configured. Strings only. */
  rolesOf: (user: AuthUser | null) => string[]
  hasRole: (user: AuthUser | null, ...roles: string[]) => boolean
  hasPermission: (user: AuthUser | null, ...permissions: string[]) => boolean
  permissionsOf: (user: AuthUser | null) => Set<string>
  /** The user's role in `orgId`, or null when not a member. */
  orgRoleOf: (user: AuthUser, orgId: string, request: FastifyRequest) => Promise<string | null>
  /** True when `held` is `required` or above in the organization hierarchy. */
  orgRoleGrants: (held: string | null, required: string) => boolean
  isRole: (role: unknown) => role is string
  isOrgRole: (role: unknown) => role is string
  /** Drops cached memberships of `userId` here and on every instance (call after a change). */
  membershipChanged: (userId: string, orgId: string) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    rbac: Rbac
    requireRole: (...roles: string[]) => preHandlerAsyncHookHandler
    requirePermission: (...permissions: string[]) => preHandlerAsyncHookHandler
    requireOrgRole: (role: string, options?: { param?: string }) => preHandlerAsyncHookHandler
  }
  interface FastifyRequest {
    /** The user's role in the route's organization, set by an organization guard. */
    orgRole: string | null
  }
  interface FastifyContextConfig {
    rbac?: RbacRouteConfig
  }
}

function known (hierarchy: Hierarchy, what: string, roles: readonly string[]): string[] {
  if (roles.length === 0) throw new RbacConfigError(`${what}: at least one role is required`)
  for (const role of roles) {
    if (typeof role !== 'string' || !hierarchy.grants.has(role)) {
      throw new RbacConfigError(`${what}: ${JSON.stringify(role)} is not a role of the hierarchy (${hierarchy.roles.join(', ')})`)
    }
  }
  return [...roles]
}

function knownPermissions (hierarchy: Hierarchy, permissions: readonly string[]): string[] {
  if (permissions.length === 0) throw new RbacConfigError('requirePermission: at least one permission is required')
  const all = new Set<string>()
  for (const set of hierarchy.permissions.values()) for (const p of set) all.add(p)
  for (const p of permissions) {
    if (typeof p !== 'string' || !all.has(p)) throw new RbacConfigError(`requirePermission: ${JSON.stringify(p)} is not granted by any role`)
  }
  return [...permissions]
}

function forbidden (): Error {
  return gatehouseError('FORBIDDEN')
}

async function rbacPlugin (fastify: FastifyInstance, input: RbacOptions): Promise<void> {
  const options = resolveOptions(input)
  const { global, org } = options

  let cache: MembershipCache | null = null
  let resolveOwn = options.memberships
  if (resolveOwn === null && fastify.hasDecorator('store')) {
    const hasBus = fastify.hasDecorator('bus')
    cache = createMembershipCache({
      ttlMs: options.membershipCacheTtlMs,
      max: options.membershipCacheMax,
      healthy: () => !hasBus || fastify.bus.healthy,
      load: async (userId) => {
        const rows = await fastify.store.prisma.membership.findMany({ where: { userId }, select: { orgId: true, role: true } })
        return new Map(rows.map((r) => [r.orgId, r.role]))
      }
    })
    const membershipCache = cache
    resolveOwn = (user, orgId) => membershipCache.get(user.id, orgId)
    if (hasBus) {
      fastify.bus.subscribe(MEMBERSHIP_CHANNEL, (message) => {
        if (typeof message.userId === 'string') membershipCache.invalidate(message.userId)
        else membershipCache.clear()
      })
      fastify.bus.onResync(() => membershipCache.clear())
    }
  }
  // Memberships come from the store only when it was there first; one registered later would be
  // silently ignored (every orgRole guard would refuse). Fail at ready instead.
  const sawStore = fastify.hasDecorator('store')
  const sawBus = fastify.hasDecorator('bus')
  fastify.addHook('onReady', async () => {
    if (options.memberships !== null) return
    if (!sawStore && fastify.hasDecorator('store')) throw new RbacConfigError('memberships: gatehouse-store was registered after gatehouse-rbac: register it first (or give memberships)', 'memberships')
    if (sawStore && !sawBus && fastify.hasDecorator('bus')) throw new RbacConfigError('memberships: gatehouse-redis was registered after gatehouse-rbac: register it first, so membership changes reach every instance', 'memberships')
  })

  function rolesOf (user: AuthUser | null): string[] {
    if (user === null || user === undefined) return []
    if (user.external === true && options.rolesClaim !== null) return roleList(readClaim(user.claims, options.rolesClaim))
    return roleList(user.roles)
  }

  async function orgRoleOf (user: AuthUser, orgId: string, request: FastifyRequest): Promise<string | null> {
    let role: unknown
    if (user.external === true) {
      if (options.orgsClaim === null) return null
      const orgs = readClaim(user.claims, options.orgsClaim)
      if (orgs === null || typeof orgs !== 'object' || Array.isArray(orgs) || !Object.hasOwn(orgs, orgId)) return null
      role = (orgs as Record<string, unknown>)[orgId]
    } else {
      if (resolveOwn === null) return null
      role = await resolveOwn(user, orgId, request)
    }
    return typeof role === 'string' && org.grants.has(role) ? role : null
  }

  function orgRoleGrants (held: string | null, required: string): boolean {
    return held !== null && grantsRole(org, [held], required)
  }

  const rbac: Rbac = Object.freeze({
    options,
    rolesOf,
    hasRole: (user: AuthUser | null, ...roles: string[]) => grantsAnyRole(global, rolesOf(user), roles),
    hasPermission: (user: AuthUser | null, ...permissions: string[]) => grantsPermissions(global, rolesOf(user), permissions),
    permissionsOf: (user: AuthUser | null) => permissionsOf(global, rolesOf(user)),
    orgRoleOf,
    orgRoleGrants,
    isRole: (role: unknown): role is string => typeof role === 'string' && global.grants.has(role),
    isOrgRole: (role: unknown): role is string => typeof role === 'string' && org.grants.has(role),
    async membershipChanged (userId: string, orgId: string) {
      cache?.invalidate(userId)
      if (!fastify.hasDecorator('bus')) return
      try {
        await fastify.bus.publish(MEMBERSHIP_CHANNEL, { userId, orgId })
      } catch (err) {
        fastify.log.error({ err: { message: (err as Error).message }, userId, orgId },
          'rbac: the membership change could not be announced to other instances; their cached memberships expire within membershipCacheTtlMs')
      }
    }
  })

  function requireRole (...roles: string[]): preHandlerAsyncHookHandler {
    const required = known(global, 'requireRole', roles)
    return async function requireRoleGuard (request) {
      if (request.user === null || request.user === undefined) throw missingAuthorization()
      if (!grantsAnyRole(global, rolesOf(request.user), required)) throw forbidden()
    }
  }

  function requirePermission (...permissions: string[]): preHandlerAsyncHookHandler {
    const required = knownPermissions(global, permissions)
    return async function requirePermissionGuard (request) {
      if (request.user === null || request.user === undefined) throw missingAuthorization()
      if (!grantsPermissions(global, rolesOf(request.user), required)) throw forbidden()
    }
  }

  function requireOrgRole (role: string, guardOptions: { param?: string } = {}): preHandlerAsyncHookHandler {
    const [required] = known(org, 'requireOrgRole', [role])
    const param = guardOptions.param ?? options.orgParam
    return async function requireOrgRoleGuard (request) {
      if (request.user === null || request.user === undefined) throw missingAuthorization()
      const params = request.params as Record<string, unknown> | undefined
      const orgId = params !== undefined && params !== null && Object.hasOwn(params, param) ? params[param] : undefined
      if (typeof orgId !== 'string' || orgId === '') throw forbidden()
      const held = await orgRoleOf(request.user, orgId, request)
      if (held === null) throw options.hideOrgsFromNonMembers ? gatehouseError('NOT_FOUND') : forbidden()
      if (!grantsRole(org, [held], required)) throw forbidden()
      request.orgRole = held
    }
  }

  fastify.decorateRequest('orgRole', null)
  fastify.decorate('rbac', rbac)
  fastify.decorate('requireRole', requireRole)
  fastify.decorate('requirePermission', requirePermission)
  fastify.decorate('requireOrgRole', requireOrgRole)

  fastify.addHook('onRoute', (route: RouteOptions) => {
    const spec = route.config?.rbac
    if (spec === undefined || spec === null) return
    const where = `config.rbac of ${String(route.method)} ${route.url}`
    const guards: preHandlerAsyncHookHandler[] = []
    if (spec.role !== undefined) guards.push(requireRole(...(typeof spec.role === 'string' ? [spec.role] : spec.role)))
    if (spec.permission !== undefined) guards.push(requirePermission(...(typeof spec.permission === 'string' ? [spec.permission] : spec.permission)))
    if (spec.orgRole !== undefined) {
      const param = spec.orgParam ?? options.orgParam
      if (!route.url.split('/').includes(`:${param}`)) throw new RbacConfigError(`${where}: the route has no :${param} parameter`)
      guards.push(requireOrgRole(spec.orgRole, { param }))
    }
    if (guards.length === 0) throw new RbacConfigError(`${where}: give role, permission or orgRole`)
    const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]
    route.preHandler = [...guards, ...existing] as RouteOptions['preHandler']
  })
}

export const rbac = fp(rbacPlugin, { name: 'gatehouse-rbac', fastify: '5.x' })
export default rbac
