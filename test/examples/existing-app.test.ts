// examples/existing-app: an app with its own Prisma client that adds credentials, tokens,
// sessions and authenticate, and keeps its own /login; in process (inject) and as a process.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, openDatabase } from '../../examples/existing-app/index.ts'

const EMAIL = 'ada@example.com'
const PASSWORD = 'correct horse battery staple'

function tempDir (t: { teardown: (fn: () => void) => void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('signup, own /login, protected /projects; the app keeps its Prisma client after close', async (t) => {
  const dir = tempDir(t, 'existing-app-test-')
  const { prisma, provider } = await openDatabase(`file:${join(dir, 'app.db')}`)
  t.teardown(() => prisma.$disconnect())
  const app = await build({ prisma, provider, keysDir: join(dir, 'keys'), credentials: { argon2: { memoryCost: 8192, timeCost: 1 } } })

  t.equal((await app.inject({ method: 'POST', url: '/signup', payload: { email: EMAIL, password: PASSWORD } })).statusCode, 201)
  const login = await app.inject({ method: 'POST', url: '/login', payload: { email: EMAIL, password: PASSWORD } })
  t.equal(login.statusCode, 200)
  const tokens = login.json()
  t.match(tokens, { access_token: String, refresh_token: String, token_type: 'Bearer', expires_in: Number })

  const projects = await app.inject({ url: '/projects', headers: { authorization: `Bearer ${tokens.access_token}` } })
  t.equal(projects.statusCode, 200)
  t.equal(projects.json().owner, (await prisma.user.findFirstOrThrow({ where: { email: EMAIL } })).id, 'request.user is the logged-in user')

  const none = await app.inject({ url: '/projects' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'MISSING_AUTHORIZATION')
  t.match(none.headers['www-authenticate'], /^Bearer/)

  const forged = await app.inject({ url: '/projects', headers: { authorization: `Bearer ${tokens.access_token.slice(0, -4)}AAAA` } })
  t.equal(forged.statusCode, 401)
  t.equal(forged.headers['www-authenticate'], 'Bearer error="invalid_token"')

  const wrong = await app.inject({ method: 'POST', url: '/login', payload: { email: EMAIL, password: 'not the password at all' } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'INVALID_CREDENTIALS')

  const refreshed = await app.inject({ method: 'POST', url: '/refresh', payload: { refresh_token: tokens.refresh_token } })
  t.equal(refreshed.statusCode, 200)
  t.not(refreshed.json().refresh_token, tokens.refresh_token, 'the refresh token is rotated')
  t.notOk('userId' in refreshed.json())

  const basic = Buffer.from(`${EMAIL}:${PASSWORD}`).toString('base64')
  t.equal((await app.inject({ url: '/projects', headers: { authorization: `Basic ${basic}` } })).statusCode, 200, 'Basic works on the same hook')

  const home = await app.inject({ url: '/' })
  t.equal(home.statusCode, 200, 'public route without a token')
  t.same(home.json(), { app: 'existing-app', users: 1 })

  await app.close()
  t.equal(await prisma.user.count(), 1, 'the app\'s own client still answers after the plugins are closed')
})

t.test('runs as a process (npx tsx examples/existing-app/index.ts)', async (t) => {
  const dir = tempDir(t, 'existing-app-proc-')
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/existing-app/index.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: `file:${join(dir, 'app.db')}`, AUTH_KEYS_DIR: join(dir, 'keys') },
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
  const post = async (path: string, body: unknown): Promise<Response> =>
    await fetch(`${address}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal((await post('/signup', { email: EMAIL, password: PASSWORD })).status, 201)
  const login = await post('/login', { email: EMAIL, password: PASSWORD })
  t.equal(login.status, 200)
  const { access_token: access } = await login.json() as { access_token: string }
  const projects = await fetch(`${address}/projects`, { headers: { authorization: `Bearer ${access}` } })
  t.equal(projects.status, 200)
  const none = await fetch(`${address}/projects`)
  t.equal(none.status, 401)
  t.match(none.headers.get('www-authenticate'), /^Bearer/)
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM closes the app and its client, exit 0')
})
