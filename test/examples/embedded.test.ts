// examples/embedded: the standalone server mounted under /identity inside a host app, over
// real HTTP (the host's API fetches the embedded JWKS from the same listening server).
import t from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildHost } from '../../examples/embedded/index.ts'

const EMAIL = 'grace@example.com'
const PASSWORD = 'correct horse battery staple'

/** A port free right now: the issuer must name the port before the app listens. */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

t.test('Gatehouse under /identity next to the host\'s own routes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'embedded-test-'))
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const app = await buildHost({
    origin,
    env: { DATABASE_URL: `file:${join(dir, 'gatehouse.db')}`, AUTH_KEYS_DIR: join(dir, 'keys'), LOG_LEVEL: 'warn' },
    gatehouse: { credentials: { argon2: { memoryCost: 8192, timeCost: 1 } } }
  })
  t.teardown(async () => {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  })
  await app.listen({ port, host: '127.0.0.1' })
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    await fetch(`${origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

  const register = await post('/identity/auth/register', { email: EMAIL, password: PASSWORD, name: 'Grace' })
  t.equal(register.status, 201)
  const login = await post('/identity/auth/login', { email: EMAIL, password: PASSWORD })
  t.equal(login.status, 200)
  const tokens = await login.json() as { access_token: string, refresh_token: string, user: { id: string } }
  const bearer = { authorization: `Bearer ${tokens.access_token}` }

  const me = await fetch(`${origin}/identity/auth/me`, { headers: bearer })
  t.equal(me.status, 200)
  t.match(await me.json(), { email: EMAIL, name: 'Grace', roles: ['user'] })

  const discovery = await (await fetch(`${origin}/identity/.well-known/openid-configuration`)).json() as Record<string, string>
  t.equal(discovery.issuer, `${origin}/identity`)
  t.equal(discovery.jwks_uri, `${origin}/identity/.well-known/jwks.json`)
  t.equal(discovery.token_endpoint, `${origin}/identity/oauth/token`)
  const jwks = await fetch(discovery.jwks_uri)
  t.equal(jwks.status, 200, 'jwks_uri of the discovery document answers')
  t.ok(((await jwks.json()) as { keys: unknown[] }).keys.length >= 1)
  const form = new URLSearchParams({ grant_type: 'password', username: EMAIL, password: PASSWORD })
  const grant = await fetch(discovery.token_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })
  t.equal(grant.status, 200, 'token_endpoint of the discovery document answers')

  // The host's API verifies Gatehouse tokens through the embedded JWKS.
  const hello = await fetch(`${origin}/api/hello`, { headers: bearer })
  t.equal(hello.status, 200)
  t.same(await hello.json(), { hello: tokens.user.id, roles: ['user'] })
  const anonymous = await fetch(`${origin}/api/hello`)
  t.equal(anonymous.status, 401)
  t.equal(anonymous.headers.get('www-authenticate')?.startsWith('Bearer'), true)
  t.match(await anonymous.json(), { host: true, code: 'MISSING_AUTHORIZATION' }, 'the host\'s own error handler answers for its routes')

  // Host routes and 404s are the host's; Gatehouse's handlers stay under the prefix.
  t.same(await (await fetch(`${origin}/`)).json(), { app: 'host', identity: `${origin}/identity/.well-known/openid-configuration` })
  const boom = await fetch(`${origin}/boom`)
  t.equal(boom.status, 500)
  t.same(await boom.json(), { host: true, status: 500, message: 'Something went wrong' })
  const hostMissing = await fetch(`${origin}/nowhere`)
  t.equal(hostMissing.status, 404)
  const hostMissingBody = await hostMissing.json() as Record<string, unknown>
  t.equal(hostMissingBody.code, undefined, 'Fastify\'s default 404 for the host\'s paths')
  t.match(hostMissingBody.message, /GET:?\s?\/nowhere not found/)
  const gatehouseMissing = await fetch(`${origin}/identity/nowhere`)
  t.equal(gatehouseMissing.status, 404)
  t.match(await gatehouseMissing.json(), { statusCode: 404, code: 'NOT_FOUND' }, 'Gatehouse\'s 404 under its prefix')
  const gatehouseError = await fetch(`${origin}/identity/auth/me`)
  t.equal(gatehouseError.status, 401)
  t.same(await gatehouseError.json(), { statusCode: 401, code: 'MISSING_AUTHORIZATION', error: 'Unauthorized', message: 'Authentication is required' })
  t.equal((await fetch(`${origin}/identity/health`)).status, 200)
  t.equal((await fetch(`${origin}/health`)).status, 404, 'nothing of Gatehouse outside the prefix')

  // Logout revokes at once under /identity; the host checks signatures only (documented).
  const logout = await post('/identity/auth/logout', {}, bearer)
  t.equal(logout.status, 204)
  t.equal((await fetch(`${origin}/identity/auth/me`, { headers: bearer })).status, 401)
})

t.test('runs as a process (npx tsx examples/embedded/index.ts)', async (t) => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'embedded-proc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/embedded/index.ts'], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'info', DATABASE_URL: `file:${join(dir, 'gatehouse.db')}`, AUTH_KEYS_DIR: join(dir, 'keys') },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  })
  const address = await new Promise<string>((resolve, reject) => {
    let out = ''
    const onData = (chunk: Buffer): void => {
      out += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (match !== null) resolve(match[1])
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then((code) => reject(new Error(`exited with ${code}: ${out}`)))
  })
  t.equal(address, `http://127.0.0.1:${port}`)
  const discovery = await (await fetch(`${address}/identity/.well-known/openid-configuration`)).json() as Record<string, string>
  t.equal(discovery.jwks_uri, `${address}/identity/.well-known/jwks.json`)
  const register = await fetch(`${address}/identity/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: EMAIL, password: PASSWORD }) })
  t.equal(register.status, 201)
  const { access_token: access } = await register.json() as { access_token: string }
  t.equal((await fetch(`${address}/api/hello`, { headers: { authorization: `Bearer ${access}` } })).status, 200)
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM closes the host and the embedded server, exit 0')
})
