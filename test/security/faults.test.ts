// Fault injection (security.md §(c)): the database and Redis going away under a running server.
// An infrastructure fault answers 503 SERVICE_UNAVAILABLE, never 200 (a false success) or 401;
// nothing is half-applied; and the server recovers by itself when the service returns.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { postgresAdminUrl, createTestDatabase, PG_SKIP_REASON } from '../helpers/databases.ts'
import { tcpProxy } from '../helpers/tcp-proxy.ts'
import { build } from '../helpers/build.ts'
import { PASSWORD } from './helpers.ts'

const pg = await postgresAdminUrl()
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0

t.test('PostgreSQL down: login, refresh, me and logout answer 503; nothing half-applied', { skip: pg === null ? PG_SKIP_REASON : false, timeout: 120_000 }, async (t) => {
  const db = await createTestDatabase('postgresql')
  t.teardown(() => db.drop())
  const real = new URL(db.url)
  const proxy = await tcpProxy(real.hostname, Number(real.port || 5432))
  t.teardown(() => proxy.close())
  const viaProxy = new URL(db.url)
  viaProxy.port = String(proxy.port)
  const { app } = await build(t, { env: { DATABASE_URL: viaProxy.toString() }, app: { store: { migrations: 'skip' } } })

  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'fault@example.com', password: PASSWORD } })
  t.equal(reg.statusCode, 201)
  const { access_token: access, refresh_token: refresh } = reg.json()

  proxy.down()
  const checks = {
    login: await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'fault@example.com', password: PASSWORD } }),
    wrongLogin: await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'fault@example.com', password: 'not the password at all' } }),
    refresh: await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refresh } }),
    logout: await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${access}` }, payload: {} }),
    register: await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'new@example.com', password: PASSWORD } }),
    ready: await app.inject('/ready')
  }
  for (const [name, res] of Object.entries(checks)) {
    t.equal(res.statusCode, 503, `${name} with the database down: 503`)
    t.equal(res.json().code, 'SERVICE_UNAVAILABLE', `${name}: SERVICE_UNAVAILABLE`)
    t.ok(res.headers['retry-after'], `${name}: Retry-After`)
    t.notMatch(res.body, /ECONN|Prisma|at \//, `${name}: no internal detail`)
  }
  const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${access}` } })
  t.ok(me.statusCode === 200 || me.statusCode === 503, `/auth/me with the database down: ${me.statusCode} (200 from caches or 503, never 401)`)
  t.equal((await app.inject('/health')).statusCode, 200, '/health stays 200')

  proxy.up()
  const again = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refresh } })
  t.equal(again.statusCode, 200, 'the refresh token refused during the outage still works: no half-applied rotation')
  const afterLogin = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'fault@example.com', password: PASSWORD } })
  t.equal(afterLogin.statusCode, 200, 'login works again, and the outage counted no failure against the account')
  t.equal((await app.inject('/ready')).statusCode, 200, 'ready again')
  t.equal((await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${access}` } })).statusCode, 200, 'the logout refused during the outage did not happen')
})

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

function startRedis (port: number): { stop: () => Promise<void> } {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  return { stop: () => new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGKILL') }) }
}

async function waitFor (fn: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    if (await fn()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

t.test('Redis down: auth routes fail closed with 503, tokens keep verifying, all recover by themselves', { skip: hasRedisServer ? false : 'redis-server is not installed', timeout: 120_000 }, async (t) => {
  const port = await freePort()
  let redis = startRedis(port)
  t.teardown(() => redis.stop())
  const url = `redis://127.0.0.1:${port}`
  t.ok(await waitFor(async () => spawnSync('redis-cli', ['-p', String(port), 'ping']).stdout?.toString().includes('PONG') ?? false, 5000), 'redis is up')
  const { app } = await build(t, { env: { REDIS_URL: url } })

  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'redis@example.com', password: PASSWORD } })
  t.equal(reg.statusCode, 201)
  const { access_token: access } = reg.json()

  await redis.stop()
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'redis@example.com', password: PASSWORD } })
  t.equal(login.statusCode, 503, 'login fails closed while the rate-limit store is down')
  t.equal(login.json().code, 'SERVICE_UNAVAILABLE')
  const me = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${access}` } })
  t.equal(me.statusCode, 200, 'a valid token still verifies (user state read from the database while notices may be missed)')
  t.equal((await app.inject('/ready')).statusCode, 503, 'not ready without Redis')

  redis = startRedis(port)
  t.ok(await waitFor(async () => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'redis@example.com', password: PASSWORD } })).statusCode === 200, 15_000), 'login works again once Redis is back, without a restart')
  t.equal((await app.inject('/ready')).statusCode, 200)
})
