// External tokens on the standalone server's /orgs routes: an external principal is no account
// of this server, so it can create no organization and an `orgs` claim naming an existing
// organization grants nothing (organizations are governed by the membership table).
import t from 'tap'
import { build } from '../helpers/build.ts'
import { jwks, keyServer, sign, testKey } from '../trusted-issuers/helpers.ts'
import { account, call } from '../rbac/fixtures.ts'

t.test('external principals on /orgs', async (t) => {
  const key = await testKey('RS256', 'ext-1')
  const idp = await keyServer(t, jwks(key))
  const { app } = await build(t, {
    env: { TRUSTED_ISSUERS: JSON.stringify([{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: ['gatehouse'], rolesClaim: 'roles' }]) }
  })
  const ada = await account(app, { email: 'ada@example.com' })
  const org = (await call(app, 'POST', '/orgs', ada, { name: 'Acme' })).body.id as string

  const external = await sign(key, { iss: idp.url, aud: 'gatehouse', sub: ada.id, roles: ['user'], orgs: { [org]: 'admin' } })
  t.match(await call(app, 'POST', '/orgs', external, { name: 'Mine' }), { status: 403, code: 'FORBIDDEN' }, 'cannot create an organization')
  t.match(await call(app, 'GET', `/orgs/${org}`, external), { status: 404 }, 'an orgs claim is no membership, even with the sub of a member')
  t.match(await call(app, 'POST', `/orgs/${org}/members`, external, { email: 'ada@example.com', role: 'viewer' }), { status: 404 })
  t.match(await call(app, 'GET', '/admin/users', external), { status: 403 }, 'a mapped user role is no admin')
  t.equal(await app.store.prisma.organization.count(), 1)
})
