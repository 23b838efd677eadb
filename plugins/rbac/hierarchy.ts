// Role hierarchies and permission maps as plain, frozen lookup structures.
//
// A hierarchy is given either as a list from the highest role to the lowest
// (`['admin', 'developer', 'viewer']`) or as a map from a role to the roles it directly
// includes (`{ owner: ['billing', 'admin'], admin: ['user'] }`). Both resolve to the same
// thing: for every role, the set of roles it grants (itself and everything below it).
// Lookups only ever go through Map/Set, so a role named `__proto__` or `constructor`
// is just an unknown string, never a property of some object.
import { roleList } from '../../lib/roles.ts'
import { OptionsError } from '../../lib/options.ts'

export type HierarchyInput = readonly string[] | Readonly<Record<string, readonly string[]>>
export type PermissionMap = Readonly<Record<string, readonly string[]>>

export interface Hierarchy {
  /** Every role, highest first where the input had an order. */
  readonly roles: readonly string[]
  /** role -> every role it grants (itself included). */
  readonly grants: ReadonlyMap<string, ReadonlySet<string>>
  /** role -> every permission it holds (its own and those of the roles below it). */
  readonly permissions: ReadonlyMap<string, ReadonlySet<string>>
}

/** A bad hierarchy, option or route guard of gatehouse-rbac (an OptionsError: `code`, `plugin`, `option`). */
export class RbacConfigError extends OptionsError {
  override name = 'RbacConfigError'
  constructor (message: string, option = message.split(/[: ]/, 1)[0]) {
    super('gatehouse-rbac', option, message)
  }
}

const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/

function checkName (what: string, name: unknown): string {
  if (typeof name !== 'string' || !ROLE_NAME.test(name)) {
    throw new RbacConfigError(`${what}: ${JSON.stringify(name)} is not a valid name (letters, digits, . _ : -, at most 64 characters)`)
  }
  return name
}

function ownEntries<T> (what: string, input: unknown): Array<[string, T]> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new RbacConfigError(`${what} must be an object`)
  return Object.keys(input).map((k) => [k, (input as Record<string, T>)[k]])
}

/** Resolves a hierarchy and its permission map; throws RbacConfigError on a cycle or an unknown role. */
export function createHierarchy (what: string, input: HierarchyInput, permissionInput: PermissionMap = {}): Hierarchy {
  const direct = new Map<string, string[]>()
  if (Array.isArray(input)) {
    if (input.length === 0) throw new RbacConfigError(`${what}: at least one role is required`)
    const list = input.map((r) => checkName(what, r))
    if (new Set(list).size !== list.length) throw new RbacConfigError(`${what}: a role is listed twice`)
    list.forEach((role, i) => direct.set(role, i + 1 < list.length ? [list[i + 1]] : []))
  } else {
    for (const [role, below] of ownEntries<readonly string[]>(what, input)) {
      checkName(what, role)
      if (!Array.isArray(below)) throw new RbacConfigError(`${what}.${role} must be an array of role names`)
      direct.set(role, below.map((r) => checkName(`${what}.${role}`, r)))
    }
    for (const below of direct.values()) for (const r of below) if (!direct.has(r)) direct.set(r, [])
    if (direct.size === 0) throw new RbacConfigError(`${what}: at least one role is required`)
  }

  const grants = new Map<string, ReadonlySet<string>>()
  const visit = (role: string, path: string[]): Set<string> => {
    const done = grants.get(role)
    if (done !== undefined) return new Set(done)
    if (path.includes(role)) throw new RbacConfigError(`${what}: the hierarchy has a cycle (${[...path, role].join(' > ')})`)
    const all = new Set<string>([role])
    for (const lower of direct.get(role) ?? []) for (const r of visit(lower, [...path, role])) all.add(r)
    grants.set(role, Object.freeze(all))
    return all
  }
  for (const role of direct.keys()) visit(role, [])

  const own = new Map<string, Set<string>>()
  for (const [role, perms] of ownEntries<readonly string[]>(`${what} permissions`, permissionInput)) {
    if (!direct.has(role)) throw new RbacConfigError(`${what} permissions: ${JSON.stringify(role)} is not a role of the hierarchy`)
    if (!Array.isArray(perms)) throw new RbacConfigError(`${what} permissions.${role} must be an array of permission names`)
    own.set(role, new Set(perms.map((p) => checkName(`${what} permissions.${role}`, p))))
  }
  const permissions = new Map<string, ReadonlySet<string>>()
  for (const [role, granted] of grants) {
    const all = new Set<string>()
    for (const r of granted) for (const p of own.get(r) ?? []) all.add(p)
    permissions.set(role, Object.freeze(all))
  }

  return Object.freeze({ roles: Object.freeze([...direct.keys()]), grants, permissions })
}

/** Keeps only the string entries of a claimed role list; anything but an array gives none. */
export { roleList }

/** True when one of `held` grants `required` (exact string comparison). */
export function grantsRole (hierarchy: Hierarchy, held: readonly string[], required: string): boolean {
  for (const role of held) {
    if (hierarchy.grants.get(role)?.has(required) === true) return true
  }
  return false
}

/** True when `held` grants at least one of `required`. */
export function grantsAnyRole (hierarchy: Hierarchy, held: readonly string[], required: readonly string[]): boolean {
  return required.some((r) => grantsRole(hierarchy, held, r))
}

/** Every permission the roles in `held` carry. */
export function permissionsOf (hierarchy: Hierarchy, held: readonly string[]): Set<string> {
  const all = new Set<string>()
  for (const role of held) for (const p of hierarchy.permissions.get(role) ?? []) all.add(p)
  return all
}

/** True when `held` carries every permission in `required`. */
export function grantsPermissions (hierarchy: Hierarchy, held: readonly string[], required: readonly string[]): boolean {
  const all = permissionsOf(hierarchy, held)
  return required.every((p) => all.has(p))
}

/** The highest role of `held` that the hierarchy knows, or null (by the number of roles it grants). */
export function highestRole (hierarchy: Hierarchy, held: readonly string[]): string | null {
  let best: string | null = null
  for (const role of held) {
    const size = hierarchy.grants.get(role)?.size
    if (size !== undefined && (best === null || size > (hierarchy.grants.get(best)?.size ?? 0))) best = role
  }
  return best
}
