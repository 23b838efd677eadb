// The hierarchy and permission lookups, and option resolution, without Fastify.
import t from 'tap'
import { createHierarchy, grantsRole, grantsAnyRole, grantsPermissions, highestRole, roleList, RbacConfigError } from '../../plugins/rbac/hierarchy.ts'
import { resolveOptions, readClaim, ROLE_PRESETS } from '../../plugins/rbac/options.ts'

t.test('a list hierarchy: a higher role grants every lower one, never a higher one', async (t) => {
  const h = createHierarchy('orgRoles', ROLE_PRESETS.org)
  t.ok(grantsRole(h, ['admin'], 'viewer'))
  t.ok(grantsRole(h, ['admin'], 'developer'))
  t.ok(grantsRole(h, ['developer'], 'viewer'), 'a developer may do what a viewer may')
  t.ok(grantsRole(h, ['developer'], 'developer'))
  t.notOk(grantsRole(h, ['developer'], 'admin'), 'but not what an admin may')
  t.notOk(grantsRole(h, ['viewer'], 'developer'))
  t.notOk(grantsRole(h, [], 'viewer'))
  t.equal(highestRole(h, ['viewer', 'developer']), 'developer')
  t.equal(highestRole(h, ['nobody']), null)
})

t.test('the database preset: system > dba > service > user', async (t) => {
  const h = createHierarchy('roles', ROLE_PRESETS.database)
  t.ok(grantsRole(h, ['system'], 'user'))
  t.ok(grantsRole(h, ['dba'], 'service'))
  t.notOk(grantsRole(h, ['service'], 'dba'))
  t.ok(grantsAnyRole(h, ['service'], ['dba', 'service']))
})

t.test('a map hierarchy may branch; permissions are inherited upwards', async (t) => {
  const h = createHierarchy('roles', { owner: ['admin', 'billing'], admin: ['user'] }, { user: ['read'], billing: ['invoices'], admin: ['write'] })
  t.same([...h.grants.get('owner') ?? []].sort(), ['admin', 'billing', 'owner', 'user'])
  t.ok(grantsPermissions(h, ['owner'], ['read', 'write', 'invoices']))
  t.ok(grantsPermissions(h, ['admin'], ['read', 'write']))
  t.notOk(grantsPermissions(h, ['admin'], ['write', 'invoices']), 'every listed permission is required')
  t.ok(grantsPermissions(h, ['admin', 'billing'], ['write', 'invoices']), 'permissions of several roles add up')
})

t.test('role names are compared exactly; claims that are not a string array grant nothing', async (t) => {
  const h = createHierarchy('roles', ROLE_PRESETS.global)
  for (const held of [['Admin'], ['admin '], [' admin'], ['ADMIN'], ['admin\u0000'], ['__proto__'], ['constructor'], ['toString'], ['hasOwnProperty']]) {
    t.notOk(grantsRole(h, held, 'admin'), `${JSON.stringify(held)} is not admin`)
    t.notOk(grantsRole(h, held, 'user'), `${JSON.stringify(held)} is not user`)
  }
  t.same(roleList('admin'), [], 'a string is not a role list')
  t.same(roleList({ 0: 'admin', length: 1 }), [], 'an array-like object is not a role list')
  t.same(roleList([['admin'], { role: 'admin' }, 1, null, 'user']), ['user'], 'only string entries count')
  const polluted = JSON.parse('{"__proto__": {"role": "admin"}, "constructor": {"prototype": {"roles": ["admin"]}}}')
  t.equal(readClaim(polluted, ['roles']), undefined, 'inherited or smuggled properties are not claims')
  t.equal(readClaim(polluted, ['constructor', 'prototype', 'roles', '0']), undefined, 'arrays are not walked by index')
  t.equal(readClaim({}, ['toString']), undefined)
  t.same(readClaim({ realm_access: { roles: ['admin'] } }, ['realm_access', 'roles']), ['admin'])
  t.equal(({} as Record<string, unknown>).role, undefined, 'Object.prototype is untouched')
})

t.test('bad hierarchies and options are refused at registration', async (t) => {
  t.throws(() => createHierarchy('roles', []), RbacConfigError)
  t.throws(() => createHierarchy('roles', ['admin', 'admin']), /twice/)
  t.throws(() => createHierarchy('roles', { a: ['b'], b: ['a'] }), /cycle/)
  t.throws(() => createHierarchy('roles', ['admin', 'user'], { root: ['x'] }), /not a role/)
  t.throws(() => createHierarchy('roles', ['admin', 'bad role']), /not a valid name/)
  t.throws(() => resolveOptions({ roles: 'galactic' as never }), /unknown preset/)
  t.throws(() => resolveOptions({ rolesClaim: '' }), /claim/)
  t.throws(() => resolveOptions({ orgsClaim: 'a..b' }), /claim/)
  t.equal(resolveOptions().rolesClaim, null, 'no roles claim by default')
  t.equal(resolveOptions().orgsClaim, null, 'no orgs claim by default')
  t.same(resolveOptions({ orgsClaim: 'tenant.orgs' }).orgsClaim, ['tenant', 'orgs'])
  t.throws(() => resolveOptions({ orgParam: 'org-id' }), /orgParam/)
  t.throws(() => resolveOptions({ membershipCacheTtlMs: -1 }), /whole number/)
  const input = { roles: ['root', 'user'], permissions: { user: ['read'] } }
  const resolved = resolveOptions(input)
  t.ok(Object.isFrozen(resolved), 'resolved options are frozen')
  t.same(input, { roles: ['root', 'user'], permissions: { user: ['read'] } }, 'the caller\'s options are not mutated')
  t.same(resolved.global.roles, ['root', 'user'])
  t.same(resolved.org.roles, ['admin', 'developer', 'viewer'], 'org preset by default')
  t.ok(resolved.org.permissions.get('admin')?.has('org:read'), 'preset permissions come with a preset')
})
