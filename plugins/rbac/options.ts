// gatehouse-rbac options: defaults from named constants, validated once, frozen.
import type { FastifyRequest } from 'fastify'
import type { AuthUser } from '../../lib/auth-user.ts'
import { readClaim } from '../../lib/jwt.ts'
import { createHierarchy, RbacConfigError, type Hierarchy, type HierarchyInput, type PermissionMap } from './hierarchy.ts'

/** Ready-made hierarchies, highest role first. */
export const ROLE_PRESETS = Object.freeze({
  /** The server's global roles. */
  global: Object.freeze(['admin', 'user']),
  /** Organization roles (CONTRACT §3). */
  org: Object.freeze(['admin', 'developer', 'viewer']),
  /** A database-style hierarchy. */
  database: Object.freeze(['system', 'dba', 'service', 'user'])
})
export type PresetName = keyof typeof ROLE_PRESETS

/** The permissions that come with a preset when `permissions` is not given. */
export const PERMISSION_PRESETS: Readonly<Record<PresetName, PermissionMap>> = Object.freeze({
  global: Object.freeze({ user: ['profile:read', 'profile:write'], admin: ['users:read', 'users:write', 'audit:read'] }),
  org: Object.freeze({ viewer: ['org:read'], developer: ['org:write'], admin: ['org:members:write', 'org:delete'] }),
  database: Object.freeze({ user: ['data:read'], service: ['data:write'], dba: ['schema:write', 'users:write'], system: ['system:write'] })
})

export const DEFAULT_ROLES: PresetName = 'global'
export const DEFAULT_ORG_ROLES: PresetName = 'org'
export const DEFAULT_ORG_PARAM = 'orgId'
export const DEFAULT_MEMBERSHIP_CACHE_TTL_MS = 60_000
export const DEFAULT_MEMBERSHIP_CACHE_MAX = 10_000

/**
 * The role of `user` in `orgId`, or null when not a member. Used for our own users (not
 * `external` ones, whose memberships come from the `orgsClaim`).
 */
export type MembershipResolver = (user: AuthUser, orgId: string, request: FastifyRequest) => Promise<string | null | undefined> | string | null | undefined

export interface RbacOptions {
  /** Global role hierarchy: a preset name, a list from highest to lowest, or a map role -> included roles. @default 'global' (admin > user) */
  roles?: PresetName | HierarchyInput
  /** Global role -> permissions (inherited upwards). @default the preset's map, else {} */
  permissions?: PermissionMap
  /** Organization role hierarchy. @default 'org' (admin > developer > viewer) */
  orgRoles?: PresetName | HierarchyInput
  /** Organization role -> permissions. @default the preset's map, else {} */
  orgPermissions?: PermissionMap
  /**
   * Claim (dotted path, e.g. `realm_access.roles`) holding an external token's roles; it must be an
   * array of strings. Null: external users' roles are `request.user.roles` as the verifier mapped
   * them (gatehouse-trusted-issuers' per-issuer `rolesClaim`). @default null
   */
  rolesClaim?: string | null
  /**
   * Claim (dotted path) holding an external token's memberships, `{ "<orgId>": "<role>" }`.
   * Null: external tokens are members of no organization (memberships stay the database's). @default null
   */
  orgsClaim?: string | null
  /** Route parameter naming the organization. @default 'orgId' */
  orgParam?: string
  /** A non-member gets 404 NOT_FOUND (as for an unknown organization) instead of 403 FORBIDDEN. @default true */
  hideOrgsFromNonMembers?: boolean
  /** Membership lookup for our own users. @default the Membership table of `fastify.store` when registered */
  memberships?: MembershipResolver
  /** Per-user membership cache of the default resolver (0 disables it). @default 60000 */
  membershipCacheTtlMs?: number
  /** Users kept in the membership cache. @default 10000 */
  membershipCacheMax?: number
}

export interface ResolvedRbacOptions {
  readonly global: Hierarchy
  readonly org: Hierarchy
  readonly rolesClaim: readonly string[] | null
  readonly orgsClaim: readonly string[] | null
  readonly orgParam: string
  readonly hideOrgsFromNonMembers: boolean
  readonly memberships: MembershipResolver | null
  readonly membershipCacheTtlMs: number
  readonly membershipCacheMax: number
}

function hierarchyOf (what: string, roles: PresetName | HierarchyInput, permissions: PermissionMap | undefined): Hierarchy {
  if (typeof roles === 'string') {
    if (!Object.hasOwn(ROLE_PRESETS, roles)) {
      throw new RbacConfigError(`${what}: unknown preset ${JSON.stringify(roles)} (use one of ${Object.keys(ROLE_PRESETS).join(', ')}, or a list of roles)`)
    }
    const preset = roles as PresetName
    return createHierarchy(what, ROLE_PRESETS[preset], permissions ?? PERMISSION_PRESETS[preset])
  }
  return createHierarchy(what, roles, permissions ?? {})
}

function claimPath (what: string, value: unknown): string[] {
  if (typeof value !== 'string' || value === '' || value.split('.').some((p) => p === '')) {
    throw new RbacConfigError(`${what} must be a claim name or a dotted path such as realm_access.roles`)
  }
  return value.split('.')
}

function count (what: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new RbacConfigError(`${what} must be a whole number >= 0`)
  return value
}

export function resolveOptions (input: RbacOptions = {}): ResolvedRbacOptions {
  if (input.memberships !== undefined && typeof input.memberships !== 'function') throw new RbacConfigError('memberships must be a function')
  const orgParam = input.orgParam ?? DEFAULT_ORG_PARAM
  if (typeof orgParam !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(orgParam)) throw new RbacConfigError('orgParam must be a route parameter name')
  return Object.freeze({
    global: hierarchyOf('roles', input.roles ?? DEFAULT_ROLES, input.permissions),
    org: hierarchyOf('orgRoles', input.orgRoles ?? DEFAULT_ORG_ROLES, input.orgPermissions),
    rolesClaim: input.rolesClaim === undefined || input.rolesClaim === null ? null : Object.freeze(claimPath('rolesClaim', input.rolesClaim)),
    orgsClaim: input.orgsClaim === undefined || input.orgsClaim === null ? null : Object.freeze(claimPath('orgsClaim', input.orgsClaim)),
    orgParam,
    hideOrgsFromNonMembers: input.hideOrgsFromNonMembers ?? true,
    memberships: input.memberships ?? null,
    membershipCacheTtlMs: count('membershipCacheTtlMs', input.membershipCacheTtlMs, DEFAULT_MEMBERSHIP_CACHE_TTL_MS),
    membershipCacheMax: count('membershipCacheMax', input.membershipCacheMax, DEFAULT_MEMBERSHIP_CACHE_MAX)
  })
}

export { readClaim }
