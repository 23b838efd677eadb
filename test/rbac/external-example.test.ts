// examples/rbac-external: RBAC alone on external tokens (trusted-issuers + authenticate + rbac,
// no database), against a local JWKS server on port 0, in process and as its own process.
import t from 'tap'
import { spawn } from 'node:child_process'
import type { FastifyInstance } from 'fastify'
import { buildRbacExternal } from '../../examples/rbac-external/index.ts'
import { jwks, keyServer, sign, testKey, type TestKey } from '../trusted-issuers/helpers.ts'

const AUD = 'projects-api'
const ORG_A = 'org-a'
const ORG_B = 'org-b'

async function request (app: FastifyInstance, method: string, url: string, token?: string): Promise<{ status: number, body: any }> {
  const res = await app.inject({ method: method as 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, body: res.body === '' ? null : res.json() }
}

t.test('roles, permissions and organization roles from an external token', async (t) => {
  const key: TestKey = await testKey('RS256', 'idp-key')
  const idp = await keyServer(t, jwks(key))
  const app = await buildRbacExternal({ issuers: [{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: [AUD] }] })
  t.teardown(() => app.close())
  const token = (claims: Record<string, unknown>): Promise<string> => sign(key, { iss: idp.url, aud: AUD, sub: 'alice', ...claims })

  const service = await token({ realm_access: { roles: ['service'] }, orgs: { [ORG_A]: 'developer', [ORG_B]: 'viewer' } })
  t.match(await request(app, 'GET', '/me', service), { status: 200, body: { sub: 'alice', roles: ['service'], permissions: ['data:read', 'data:write'] } })
  t.equal((await request(app, 'GET', '/data', service)).status, 200, 'service inherits data:read from user')
  t.equal((await request(app, 'POST', '/data', service)).status, 200, 'config.rbac.permission')
  t.match(await request(app, 'GET', '/schema', service), { status: 403, body: { code: 'FORBIDDEN' } }, 'service is below dba')
  const dba = await token({ realm_access: { roles: ['dba'] } })
  t.equal((await request(app, 'GET', '/schema', dba)).status, 200)
  const system = await token({ realm_access: { roles: ['system'] } })
  t.equal((await request(app, 'POST', '/data', system)).status, 200, 'system has every right below it')

  t.match(await request(app, 'GET', `/orgs/${ORG_A}/projects`, service), { status: 200, body: { role: 'developer' } }, 'a developer may do what a viewer may')
  t.equal((await request(app, 'POST', `/orgs/${ORG_A}/deployments`, service)).status, 201)
  t.match(await request(app, 'DELETE', `/orgs/${ORG_A}/projects/web`, service), { status: 403 }, 'not what an admin may')
  t.equal((await request(app, 'GET', `/orgs/${ORG_B}/projects`, service)).status, 200, 'viewer in org B')
  t.match(await request(app, 'POST', `/orgs/${ORG_B}/deployments`, service), { status: 403 }, 'the role is per organization')
  t.match(await request(app, 'GET', '/orgs/org-c/projects', service), { status: 404, body: { code: 'NOT_FOUND' } }, 'not a member of org C')

  t.match(await request(app, 'GET', '/data'), { status: 401, body: { code: 'MISSING_AUTHORIZATION' } })

  // security.md #55 on a validly signed token: malformed role claims grant nothing.
  for (const roles of ['system', ['System'], ['system '], [['system']], { 0: 'system' }]) {
    const bad = await token({ realm_access: { roles } })
    t.match(await request(app, 'GET', '/schema', bad), { status: 403 }, `realm_access.roles=${JSON.stringify(roles)}`)
  }
  const polluted = await token(JSON.parse('{"__proto__": {"realm_access": {"roles": ["system"]}}, "orgs": {"__proto__": {"org-a": "admin"}}}'))
  t.match(await request(app, 'GET', '/schema', polluted), { status: 403 }, '__proto__ in the payload')
  t.match(await request(app, 'DELETE', `/orgs/${ORG_A}/projects/web`, polluted), { status: 404 })
  const flat = await token({ roles: ['system'], orgs: { [ORG_A]: 'Admin' } })
  t.match(await request(app, 'GET', '/schema', flat), { status: 403 }, 'a top-level roles claim is not the configured claim')
  t.match(await request(app, 'GET', `/orgs/${ORG_A}/projects`, flat), { status: 404 }, 'org roles are matched exactly')

  const forged = await sign(await testKey('RS256', 'idp-key'), { iss: idp.url, aud: AUD, sub: 'mallory', realm_access: { roles: ['system'] } })
  t.match(await request(app, 'GET', '/schema', forged), { status: 401 }, 'a token signed with another key never reaches RBAC')
})

t.test('the example runs as a process (npx tsx examples/rbac-external/index.ts)', async (t) => {
  const key = await testKey('ES256', 'proc')
  const idp = await keyServer(t, jwks(key))
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/rbac-external/index.ts'], {
    env: {
      ...process.env,
      PORT: '0',
      LOG_LEVEL: 'info',
      TRUSTED_ISSUERS: JSON.stringify([{ issuer: idp.url, jwksUri: `${idp.url}/jwks`, audiences: [AUD], algorithms: ['ES256'] }])
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGTERM') })
  const address = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (match !== null) resolve(match[1])
    })
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)))
  })
  const developer = await sign(key, { iss: idp.url, aud: AUD, sub: 'proc-user', orgs: { [ORG_A]: 'developer' } })
  const deploy = await fetch(`${address}/orgs/${ORG_A}/deployments`, { method: 'POST', headers: { authorization: `Bearer ${developer}` } })
  t.equal(deploy.status, 201)
  const remove = await fetch(`${address}/orgs/${ORG_A}/projects/web`, { method: 'DELETE', headers: { authorization: `Bearer ${developer}` } })
  t.equal(remove.status, 403)
  t.equal((await remove.json()).code, 'FORBIDDEN')
  t.equal((await fetch(`${address}/data`)).status, 401)
})
