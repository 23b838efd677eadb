// The guards on a bare Fastify app (no database): decorators and per-route config.rbac.
// The app's own onRequest hook plays the part of `authenticate`, putting the principal of
// the test's choosing on request.user (as our tokens or a trusted issuer would).
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { rbac, type RbacOptions } from '../../plugins/rbac/index.ts'
import type { AuthUser } from '../../lib/auth-user.ts'
import type { TestContext } from '../helpers/build.ts'
import { errorHandler } from '../../lib/error-handler.ts'
import { serviceUnavailable } from '../../lib/errors.ts'

function user (roles: unknown, extra: Partial<AuthUser> = {}): AuthUser {
  return { id: 'u1', sub: 'u1', iss: 'http://gatehouse', roles: roles as string[], scheme: 'bearer', external: false, ...extra }
}

async function app (t: TestContext, options: RbacOptions = {}, routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const fastify = Fastify()
  fastify.setErrorHandler(errorHandler)
  fastify.decorateRequest('user', null)
  fastify.addHook('onRequest', async (request) => {
    const raw = request.headers['x-test-user']
    request.user = typeof raw === 'string' ? JSON.parse(raw) : null
  })
  await fastify.register(rbac, options)
  if (options.roles === undefined) standardRoutes(fastify)
  routes?.(fastify)
  t.teardown(() => fastify.close())
  await fastify.ready()
  return fastify
}

function standardRoutes (fastify: FastifyInstance): void {
  fastify.get('/admin', { preHandler: fastify.requireRole('admin') }, async () => ({ ok: true }))
  fastify.get('/user', { preHandler: fastify.requireRole('user') }, async () => ({ ok: true }))
  fastify.get('/either', { preHandler: fastify.requireRole('admin', 'user') }, async () => ({ ok: true }))
  fastify.get('/audit', { preHandler: fastify.requirePermission('audit:read') }, async () => ({ ok: true }))
  fastify.get('/profile', { preHandler: fastify.requirePermission('profile:read', 'profile:write') }, async () => ({ ok: true }))
  fastify.get('/cfg/admin', { config: { rbac: { role: 'admin' } } }, async () => ({ ok: true }))
  fastify.get('/cfg/perm', { config: { rbac: { permission: ['users:read'] } } }, async () => ({ ok: true }))
  fastify.get('/orgs/:orgId/read', { preHandler: fastify.requireOrgRole('viewer') }, async (request) => ({ role: request.orgRole }))
  fastify.get('/orgs/:orgId/write', { config: { rbac: { orgRole: 'developer' } } }, async (request) => ({ role: request.orgRole }))
  fastify.get('/orgs/:orgId/manage', { config: { rbac: { orgRole: 'admin' } } }, async (request) => ({ role: request.orgRole }))
  fastify.get('/teams/:team', { config: { rbac: { orgRole: 'viewer', orgParam: 'team' } } }, async (request) => ({ role: request.orgRole }))
}

async function get (fastify: FastifyInstance, url: string, principal?: AuthUser): Promise<{ status: number, code?: string, body: any }> {
  const res = await fastify.inject({ url, headers: principal === undefined ? {} : { 'x-test-user': JSON.stringify(principal) } })
  const body = res.json()
  return { status: res.statusCode, code: body.code, body }
}

t.test('requireRole and requirePermission: 401 without a user, 403 without the right, hierarchy honoured', async (t) => {
  const f = await app(t)
  const anonymous = await f.inject('/admin')
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.json().code, 'MISSING_AUTHORIZATION')
  t.match(anonymous.headers['www-authenticate'], /^Bearer/, 'RFC 6750 challenge')
  t.match(await get(f, '/admin', user(['user'])), { status: 403, code: 'FORBIDDEN' }, 'security.md #54: user role on an admin route')
  t.match(await get(f, '/admin', user(['admin'])), { status: 200 })
  t.match(await get(f, '/user', user(['admin'])), { status: 200 }, 'admin has every right of user')
  t.match(await get(f, '/user', user(['user'])), { status: 200 })
  t.match(await get(f, '/user', user([])), { status: 403 })
  t.match(await get(f, '/either', user(['user'])), { status: 200 }, 'any listed role is enough')
  t.match(await get(f, '/audit', user(['user'])), { status: 403, code: 'FORBIDDEN' })
  t.match(await get(f, '/audit', user(['admin'])), { status: 200 })
  t.match(await get(f, '/profile', user(['user'])), { status: 200 }, 'every listed permission held')
  t.match(await get(f, '/profile', user(['admin'])), { status: 200 }, 'permissions are inherited by higher roles')
  t.match(await get(f, '/cfg/admin', user(['user'])), { status: 403 }, 'config.rbac.role')
  t.match(await get(f, '/cfg/admin', user(['admin'])), { status: 200 })
  t.match(await get(f, '/cfg/admin'), { status: 401, code: 'MISSING_AUTHORIZATION' })
  t.match(await get(f, '/cfg/perm', user(['user'])), { status: 403 }, 'config.rbac.permission')
  t.match(await get(f, '/cfg/perm', user(['admin'])), { status: 200 })
})

t.test('security.md #55: role escalation through malformed claims is refused', async (t) => {
  const f = await app(t, { rolesClaim: 'roles' })
  const attempts: unknown[] = [
    'admin', ['Admin'], ['Admin '], ['admin '], [' admin'], ['ADMIN'], [['admin']], [{ role: 'admin' }],
    { 0: 'admin', length: 1 }, null, 1, true, {}
  ]
  for (const roles of attempts) {
    t.match(await get(f, '/admin', user(roles)), { status: 403, code: 'FORBIDDEN' }, `own token roles=${JSON.stringify(roles)}`)
    t.match(await get(f, '/admin', user([], { external: true, iss: 'https://idp', claims: { roles } })), { status: 403 }, `external roles claim=${JSON.stringify(roles)}`)
  }
  for (const claims of [
    JSON.parse('{"__proto__": {"roles": ["admin"]}}'),
    JSON.parse('{"constructor": {"prototype": {"roles": ["admin"]}}}'),
    JSON.parse('{"__proto__": {"role": "admin"}, "role": "admin"}')
  ]) {
    t.match(await get(f, '/admin', user([], { external: true, iss: 'https://idp', claims })), { status: 403 }, `prototype pollution attempt ${JSON.stringify(claims)}`)
  }
  t.equal(({} as Record<string, unknown>).roles, undefined, 'Object.prototype is untouched')
  t.match(await get(f, '/admin', user(['user'], { external: true, iss: 'https://idp', claims: { roles: ['admin'] } })), { status: 200 }, 'a well-formed external claim works')
  t.match(await get(f, '/admin', user(['admin'], { external: true, iss: 'https://idp', claims: { roles: ['user'] } })), { status: 403 }, 'for external tokens the configured claim is authoritative')
})

t.test('by default external users\' roles are the ones their verifier mapped', async (t) => {
  const f = await app(t)
  t.match(await get(f, '/admin', user(['admin'], { external: true, iss: 'https://idp', claims: { roles: ['user'] } })), { status: 200 }, 'request.user.roles counts')
  t.match(await get(f, '/admin', user([], { external: true, iss: 'https://idp', claims: { roles: ['admin'] } })), { status: 403 }, 'an unmapped claim does not')
  t.match(await get(f, '/admin', user('admin', { external: true, iss: 'https://idp' })), { status: 403 }, 'user.roles must still be an array')
})

t.test('a configurable roles claim (nested path) and hierarchy', async (t) => {
  const f = await app(t, { roles: 'database', rolesClaim: 'realm_access.roles' }, (f) => {
    f.get('/schema', { preHandler: f.requireRole('dba') }, async () => ({ ok: true }))
    f.get('/write', { preHandler: f.requirePermission('data:write') }, async () => ({ ok: true }))
  })
  const ext = (roles: unknown): AuthUser => user([], { external: true, iss: 'https://kc', claims: { realm_access: { roles } } })
  t.match(await get(f, '/schema', ext(['system'])), { status: 200 })
  t.match(await get(f, '/schema', ext(['dba'])), { status: 200 })
  t.match(await get(f, '/schema', ext(['service'])), { status: 403 })
  t.match(await get(f, '/write', ext(['service'])), { status: 200 })
  t.match(await get(f, '/write', ext(['user'])), { status: 403 })
  t.match(await get(f, '/schema', user([], { external: true, iss: 'https://kc', claims: { roles: ['system'] } })), { status: 403 }, 'the top-level claim is not read when a path is configured')
})

t.test('organization scope by route parameter', async (t) => {
  const memberships = new Map([['u1:org-a', 'developer'], ['u1:org-b', 'viewer'], ['u2:org-b', 'admin']])
  const f = await app(t, { memberships: async (u, orgId) => memberships.get(`${u.id}:${orgId}`) ?? null })
  const u1 = user(['user'])
  t.match(await get(f, '/orgs/org-a/read', u1), { status: 200, body: { role: 'developer' } }, 'a developer may do what a viewer may')
  t.match(await get(f, '/orgs/org-a/write', u1), { status: 200 })
  t.match(await get(f, '/orgs/org-a/manage', u1), { status: 403, code: 'FORBIDDEN' }, 'but not what an admin may')
  t.match(await get(f, '/orgs/org-b/read', u1), { status: 200, body: { role: 'viewer' } })
  t.match(await get(f, '/orgs/org-b/write', u1), { status: 403 }, 'the role is the one in the named organization')
  t.match(await get(f, '/orgs/org-c/read', u1), { status: 404, code: 'NOT_FOUND' }, 'a non-member learns nothing about the organization')
  t.match(await get(f, '/orgs/org-b/manage', user(['user'], { id: 'u2', sub: 'u2' })), { status: 200 })
  t.match(await get(f, '/orgs/org-a/read', user(['admin'], { id: 'u2', sub: 'u2' })), { status: 404 }, 'a global admin is not a member of every organization')
  t.match(await get(f, '/orgs/org-a/read'), { status: 401, code: 'MISSING_AUTHORIZATION' })
  t.match(await get(f, '/teams/org-a', u1), { status: 200 }, 'a custom parameter name')
  memberships.set('u1:org-a', 'viewer')
  t.match(await get(f, '/orgs/org-a/write', u1), { status: 403 }, 'a demotion applies on the next request')
  memberships.delete('u1:org-a')
  t.match(await get(f, '/orgs/org-a/read', u1), { status: 404 }, 'a removal applies on the next request')
  memberships.set('u1:org-a', 'superuser')
  t.match(await get(f, '/orgs/org-a/read', u1), { status: 404 }, 'an unknown role from the resolver is no membership')
})

t.test('organization scope of external tokens from the orgs claim', async (t) => {
  const f = await app(t, { hideOrgsFromNonMembers: false, orgsClaim: 'orgs' })
  const ext = (orgs: unknown): AuthUser => user([], { external: true, iss: 'https://idp', claims: { orgs } })
  t.match(await get(f, '/orgs/org-a/write', ext({ 'org-a': 'developer' })), { status: 200, body: { role: 'developer' } })
  t.match(await get(f, '/orgs/org-a/manage', ext({ 'org-a': 'developer' })), { status: 403 })
  t.match(await get(f, '/orgs/org-b/read', ext({ 'org-a': 'admin' })), { status: 403, code: 'FORBIDDEN' }, 'non-members get 403 when hiding is off')
  for (const orgs of [{ 'org-a': 'Admin' }, { 'org-a': ['admin'] }, ['org-a'], 'org-a', JSON.parse('{"__proto__": {"org-a": "admin"}}'), { 'org-a': 'constructor' }]) {
    t.match(await get(f, '/orgs/org-a/read', ext(orgs)), { status: 403 }, `orgs claim ${JSON.stringify(orgs)} grants nothing`)
  }
  t.match(await get(f, '/orgs/constructor/read', ext({})), { status: 403 }, 'an org id naming an Object.prototype property')
  t.match(await get(f, '/orgs/__proto__/read', ext({})), { status: 403 })
})

t.test('without a resolver, a store or an orgs claim nobody is a member', async (t) => {
  const f = await app(t)
  t.match(await get(f, '/orgs/org-a/read', user(['admin'])), { status: 404 })
  t.match(await get(f, '/orgs/org-a/read', user([], { external: true, iss: 'https://idp', claims: { orgs: { 'org-a': 'admin' } } })), { status: 404 }, 'the orgs claim is opt-in')
})

t.test('misconfigured guards fail at registration, not at request time', async (t) => {
  const bare = async (): Promise<FastifyInstance> => {
    const f = Fastify()
    f.decorateRequest('user', null)
    await f.register(rbac)
    t.teardown(() => f.close())
    return f
  }
  const f = await bare()
  t.throws(() => f.requireRole('admn'), /not a role/)
  t.throws(() => f.requireRole(), /at least one/)
  t.throws(() => f.requirePermission('launch:missiles'), /not granted by any role/)
  t.throws(() => f.requireOrgRole('owner'), /not a role/)
  t.throws(() => f.get('/x', { config: { rbac: { role: 'root' } } }, async () => ({})), /not a role/)
  t.throws(() => f.get('/y', { config: { rbac: { orgRole: 'viewer' } } }, async () => ({})), /no :orgId parameter/)
  t.throws(() => f.get('/z', { config: { rbac: {} } }, async () => ({})), /give role, permission or orgRole/)
})

t.test('a failing membership lookup fails closed', async (t) => {
  const f = await app(t, {
    memberships: async (_u, orgId) => {
      if (orgId === 'down') throw serviceUnavailable(new Error('database unreachable'))
      throw new Error('resolver bug')
    }
  })
  const down = await f.inject({ url: '/orgs/down/read', headers: { 'x-test-user': JSON.stringify(user(['admin'])) } })
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'SERVICE_UNAVAILABLE')
  t.match(down.headers['retry-after'], /^\d+$/)
  t.match(await get(f, '/orgs/other/read', user(['admin'])), { status: 500, code: 'INTERNAL_ERROR' }, 'never a pass')
})
