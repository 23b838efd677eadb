// Gatehouse as a dependency (CONTRACT §8), the way a team gets it: `npm pack` in a clean copy
// of the repo, the tarball installed into a new app folder together with fastify 5 from the
// registry, and there:
//  - a resource server on trusted-issuers + authenticate + rbac against a local JWKS (200/401/403),
//    which loads no database driver, Prisma, ioredis or argon2 (recorded by a module hook);
//  - an app on store + credentials + tokens + sessions + authenticate (and every other subpath)
//    on SQLite: signup, login, refresh, a protected route, and the standalone server beside it;
//  - both compiled by the app's own tsc (strict, skipLibCheck false) on the current TypeScript
//    and the lowest one supported (5.4: fastify 5's own types need its NoInfer);
//  - `npx gatehouse --help`.
// Installs use the npm cache first (--prefer-offline). better-sqlite3 is a native module that
// compiles at install time (minutes); the app links the repo's compiled copy instead, and the
// store's peers are installed with --ignore-scripts so that npm does not rebuild it in place.
import t, { type Test } from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { PACKAGE_ROOT } from '../../lib/paths.ts'
import { jwks, keyServer, sign, testKey } from '../trusted-issuers/helpers.ts'

t.setTimeout(20 * 60_000)

const FIXTURES = join(import.meta.dirname, 'fixtures')
const LOWEST_TYPESCRIPT = '5.4'
const CURRENT_TYPESCRIPT = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'node_modules', 'typescript', 'package.json'), 'utf8')).version as string
/** What a database-free subpath must never load. */
const HEAVY = /\/node_modules\/(@prisma\/client|@prisma\/adapter-[^/]+|\.prisma|prisma|better-sqlite3|pg|pg-pool|ioredis|@node-rs\/argon2[^/]*)\/|\/gatehouse\/dist\/prisma\//
/** The store's peers, at the versions the repo is tested with. */
const STORE_PEERS = ['@prisma/client', '@prisma/adapter-better-sqlite3', '@node-rs/argon2'].map((name) => `${name}@${installedVersion(name)}`)

function installedVersion (name: string): string {
  return JSON.parse(readFileSync(join(PACKAGE_ROOT, 'node_modules', name, 'package.json'), 'utf8')).version
}

interface Result { code: number | null, stdout: string, stderr: string }

function run (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
  })
}

const npm = (args: string[], cwd: string): Promise<Result> => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], cwd, { npm_config_update_notifier: 'false' })

/** Starts `node <file>` in `cwd` and resolves with the line it prints once listening. */
function start (t: Test, cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ line: string, child: ChildProcess }> {
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const line = output.split('\n').find((l) => l.startsWith('listening '))
      if (line !== undefined) resolve({ line, child })
    })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${output}`)))
  })
}

function stop (child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

function folderSize (dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isSymbolicLink()) continue
    total += entry.isDirectory() ? folderSize(path) : statSync(path).size
  }
  return total
}

/** Packages under node_modules (scoped ones counted one by one, nested copies included). */
function packageCount (modules: string): number {
  let count = 0
  for (const entry of readdirSync(modules, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue
    const path = join(modules, entry.name)
    if (entry.name.startsWith('@')) {
      count += packageCount(path)
      continue
    }
    count++
    if (existsSync(join(path, 'node_modules'))) count += packageCount(join(path, 'node_modules'))
  }
  return count
}

const work = mkdtempSync(join(tmpdir(), 'gatehouse-package-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const checkout = join(work, 'checkout')
const app = join(work, 'app')
let tarball = ''

t.test('npm pack in a clean copy of the repo builds the package and ships only what runs', async (t) => {
  // The files of a clean checkout: tracked and not ignored (so no dist/, no generated client).
  const listed = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], PACKAGE_ROOT)
  t.equal(listed.code, 0, 'git lists the files of the checkout')
  for (const file of listed.stdout.split('\0').filter((f) => f !== '' && existsSync(join(PACKAGE_ROOT, f)))) {
    mkdirSync(dirname(join(checkout, file)), { recursive: true })
    cpSync(join(PACKAGE_ROOT, file), join(checkout, file))
  }
  t.notOk(existsSync(join(checkout, 'dist')), 'the copy has no dist/')
  t.notOk(existsSync(join(checkout, 'prisma', 'generated')), 'the copy has no generated Prisma client')
  symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(checkout, 'node_modules'), 'dir')

  const packed = await npm(['pack', '--pack-destination', work], checkout)
  t.equal(packed.code, 0, `npm pack succeeds${packed.code === 0 ? '' : `: ${packed.stderr.slice(-2000)}`}`)
  const name = readdirSync(work).find((f) => f.endsWith('.tgz'))
  t.ok(name !== undefined, 'a tarball is written')
  tarball = join(work, name ?? 'missing.tgz')
  t.equal(JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')).scripts.prepare, 'node scripts/prisma-generate.js', 'the checkout keeps its prepare script')

  const files = (await run('tar', ['tzf', tarball], work)).stdout.split('\n').filter((f) => f !== '').map((f) => f.replace(/^package\//, ''))
  for (const file of [
    'package.json', 'README.md', 'LICENSE', 'bin/gatehouse.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js',
    'dist/plugins/authenticate/index.js', 'dist/plugins/authenticate/index.d.ts', 'dist/plugins/authenticate/index.d.ts.map',
    'dist/server/index.js', 'dist/client/index.js', 'dist/prisma/generated/sqlite/client.js', 'dist/prisma/generated/postgresql/client.js',
    'dist/plugins/credentials/common-passwords.txt', 'prisma/schema.prisma',
    'prisma/migrations/sqlite/0001_init/migration.sql', 'prisma/migrations/postgresql/0001_init/migration.sql'
  ]) t.ok(files.includes(file), `ships ${file}`)
  const stray = files.filter((f) => /^(test|bench|examples|scripts|\.ci|node_modules|coverage|\.tap|prisma\/generated)\//.test(f) || f === 'prisma.config.ts' || f.includes('tsbuildinfo'))
  t.same(stray, [], 'no tests, benchmarks, examples, scripts, CI files or generated sources')
  // The declaration maps and source maps point at the TypeScript sources, which ship beside dist/.
  const unpacked = join(work, 'unpacked')
  mkdirSync(unpacked)
  await run('tar', ['xzf', tarball, '-C', unpacked], work)
  const missing: string[] = []
  for (const map of files.filter((f) => f.startsWith('dist/') && f.endsWith('.map') && !f.startsWith('dist/prisma/generated/'))) {
    for (const source of JSON.parse(readFileSync(join(unpacked, 'package', map), 'utf8')).sources as string[]) {
      const target = join(dirname(join(unpacked, 'package', map)), source)
      if (!existsSync(target)) missing.push(`${map} -> ${source}`)
    }
  }
  t.same(missing, [], 'every map\'s sources are in the tarball')

  const manifest = JSON.parse((await run('tar', ['xzf', tarball, '-O', 'package/package.json'], work)).stdout)
  const installScripts = ['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => manifest.scripts?.[s] !== undefined)
  t.same(installScripts, [], 'the packed manifest has no install script')
  t.equal(manifest.peerDependencies.fastify, '^5.0.0', 'fastify is a peer dependency')
  t.notOk('fastify' in (manifest.dependencies ?? {}), 'fastify is not a dependency')
  t.comment(`tarball ${(statSync(tarball).size / 1024).toFixed(0)} kB, ${files.length} files`)
})

t.test('installs into a new app with fastify 5: no install script runs, no engine warning', async (t) => {
  mkdirSync(app)
  // On Node 20, fastify 5's light-my-request 6.8 pulls cookie 2, which declares node >= 22:
  // docs/getting-started.md gives this override to apps on Node 20.
  const onNode20 = Number(process.versions.node.split('.')[0]) < 22
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'an-app', private: true, type: 'module', ...(onNode20 ? { overrides: { 'light-my-request': '6.6.0' } } : {})
  }, null, 2))
  const installed = await npm(['install', tarball, 'fastify@5', `typescript@${CURRENT_TYPESCRIPT}`, '@types/node@20'], app)
  const output = installed.stdout + installed.stderr
  t.equal(installed.code, 0, `npm install succeeds${installed.code === 0 ? '' : `: ${output.slice(-2000)}`}`)
  t.notMatch(output, /EBADENGINE/, 'no EBADENGINE warning')
  t.notMatch(output, /gatehouse@[^ ]+ \((preinstall|install|postinstall|prepare)/, 'npm lists no install script of gatehouse')
  t.notOk(existsSync(join(app, 'node_modules', 'gatehouse', 'prisma', 'generated')), 'nothing was generated at install')
  for (const peer of ['@prisma/client', 'better-sqlite3', 'pg', '@node-rs/argon2']) t.notOk(existsSync(join(app, 'node_modules', peer)), `${peer} is not installed`)
  const lowest = await npm(['install', '--prefix', join(app, 'ts-lowest'), `typescript@${LOWEST_TYPESCRIPT}`], app)
  t.equal(lowest.code, 0, `TypeScript ${LOWEST_TYPESCRIPT} installed beside the app`)
  const withoutTools = ['typescript', '@types/node', 'undici-types']
  const modules = join(app, 'node_modules')
  const size = folderSize(modules) - withoutTools.reduce((sum, p) => sum + (existsSync(join(modules, p)) ? folderSize(join(modules, p)) : 0), 0)
  t.comment(`resource-server install: ${packageCount(modules) - withoutTools.length} packages, ${(size / 1024 / 1024).toFixed(1)} MB (gatehouse + fastify, without typescript and @types/node)`)
  for (const file of ['resource-server.ts', 'full-app.ts', 'tsconfig.json', 'record-modules.mjs', 'record-hooks.mjs', 'missing-peer.mjs']) cpSync(join(FIXTURES, file), join(app, file))
})

t.test('without the store\'s peers, the root imports and the store says what to install', async (t) => {
  const result = await run(process.execPath, ['missing-peer.mjs'], app)
  t.equal(result.code, 0, `runs${result.code === 0 ? '' : `: ${result.stderr}`}`)
  const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>
  t.equal(outcome.root, 'function', 'import \'gatehouse\' works')
  t.equal(outcome.missing, true, 'registering the store fails with a MissingPeerError')
  t.equal(outcome.peer, 'better-sqlite3', 'naming the first peer the SQLite store needs')
  t.match(outcome.message, /npm install better-sqlite3/, 'and how to install it')
})

/** Compiles one file of the app (to out/) with the app's tsconfig.json, under both compilers. */
async function compile (t: Test, file: string): Promise<void> {
  const project = `tsconfig.${file.replace(/\.ts$/, '')}.json`
  writeFileSync(join(app, project), JSON.stringify({ extends: './tsconfig.json', include: [], files: [file] }))
  for (const [version, tsc] of [[CURRENT_TYPESCRIPT, join(app, 'node_modules', 'typescript', 'bin', 'tsc')], [LOWEST_TYPESCRIPT, join(app, 'ts-lowest', 'node_modules', 'typescript', 'bin', 'tsc')]]) {
    const result = await run(process.execPath, [tsc, '-p', project], app)
    t.equal(result.code, 0, `TypeScript ${version}, strict, skipLibCheck false: ${file} compiles${result.code === 0 ? '' : `\n${result.stdout.slice(0, 3000)}`}`)
  }
}

async function resourceServer (t: Test, modulesOut: string): Promise<string[]> {
  const key = await testKey('RS256')
  const idp = await keyServer(t, jwks(key))
  const { line, child } = await start(t, app, ['--import', './record-modules.mjs', 'out/resource-server.js'], {
    ISSUER: idp.url, JWKS_URI: `${idp.url}/jwks`, MODULES_OUT: modulesOut
  })
  const base = line.slice('listening '.length).trim()
  const token = (roles: string[]): Promise<string> => sign(key, { iss: idp.url, sub: 'user-1', aud: 'orders-api', roles })
  const get = async (path: string, bearer?: string): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`, { headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  const reader = await token(['reader'])
  const ok = await get('/orders', reader)
  t.equal(ok.status, 200, 'a reader token reads /orders')
  t.same(ok.body, { sub: 'user-1', roles: ['reader'], external: true }, 'request.user comes from the verified token')
  t.equal((await get('/orders')).status, 401, 'no token: 401')
  const forged = reader.slice(0, -4) + (reader.endsWith('AAAA') ? 'BBBB' : 'AAAA')
  const bad = await get('/orders', forged)
  t.equal(bad.status, 401, 'a forged signature: 401')
  t.equal(bad.body.code, 'INVALID_SIGNATURE', 'with its code')
  const denied = await get('/admin', reader)
  t.equal(denied.status, 403, 'a reader on /admin: 403')
  t.equal(denied.body.code, 'FORBIDDEN', 'with its code')
  t.ok(idp.count('/jwks') >= 1, 'the keys came from the local JWKS')
  await stop(child)
  return readFileSync(modulesOut, 'utf8').split('\n').filter((l) => l !== '')
}

t.test('a resource server on trusted-issuers + authenticate + rbac, without the store\'s peers', async (t) => {
  await compile(t, 'resource-server.ts')
  const loaded = await resourceServer(t, join(work, 'modules-1.txt'))
  t.ok(loaded.some((l) => l.includes('/node_modules/gatehouse/dist/plugins/trusted-issuers/')), 'the recorder saw gatehouse\'s modules')
  t.ok(loaded.some((l) => l.includes('/node_modules/fast-jwt/')), 'and the CommonJS ones (fast-jwt)')
  t.same(loaded.filter((l) => HEAVY.test(l)), [], 'no database driver, Prisma, ioredis or argon2 was loaded')
})

t.test('npx gatehouse --help', async (t) => {
  const help = await run('npx', ['--no-install', 'gatehouse', '--help'], app)
  t.equal(help.code, 0, `exits 0${help.code === 0 ? '' : `: ${help.stderr}`}`)
  t.match(help.stdout, /Usage: gatehouse <command>/, 'prints the usage')
  t.match(help.stdout, /migrate/, 'lists the commands')
  t.notMatch(help.stderr, /tsx/, 'runs the compiled CLI')
})

t.test('with the store\'s peers: the whole stack on SQLite, and still a lean resource server', async (t) => {
  const peers = await npm(['install', '--ignore-scripts', ...STORE_PEERS, join(PACKAGE_ROOT, 'node_modules', 'better-sqlite3')], app)
  t.equal(peers.code, 0, `the store's peers install${peers.code === 0 ? '' : `: ${(peers.stdout + peers.stderr).slice(-2000)}`}`)
  t.notMatch(peers.stdout + peers.stderr, /EBADENGINE/, 'no EBADENGINE warning')
  await compile(t, 'full-app.ts')

  const data = join(work, 'data')
  mkdirSync(join(data, 'app-keys'), { recursive: true })
  mkdirSync(join(data, 'server-keys'), { recursive: true })
  const modulesOut = join(work, 'modules-full.txt')
  const { line, child } = await start(t, app, ['--import', './record-modules.mjs', 'out/full-app.js'], {
    DATABASE_URL: `file:${join(data, 'app.db')}`,
    KEYS_DIR: join(data, 'app-keys'),
    SERVER_DATABASE_URL: `file:${join(data, 'server.db')}`,
    SERVER_KEYS_DIR: join(data, 'server-keys'),
    MODULES_OUT: modulesOut
  })
  const [, base, json] = /^listening (\S+) (.*)$/.exec(line) ?? []
  const beside = JSON.parse(json) as { server: string, clientUser: string | null }
  t.equal(beside.clientUser, 'client@example.com', 'gatehouse/client registered on the gatehouse/server instance')
  const health = await fetch(`${beside.server}/identity/health`)
  t.equal(health.status, 200, 'the standalone server answers under its prefix')

  const post = async (path: string, body: unknown): Promise<{ status: number, body: Record<string, unknown> }> => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  const credentials = { email: 'ada@example.com', password: 'correct horse battery staple' }
  t.equal((await post('/signup', credentials)).status, 201, 'signup')
  const login = await post('/login', credentials)
  t.equal(login.status, 200, 'login')
  t.type(login.body.access_token, 'string', 'an access token')
  const wrong = await post('/login', { ...credentials, password: 'not the password at all' })
  t.equal(wrong.status, 401, 'a wrong password: 401')
  t.equal(wrong.body.code, 'INVALID_CREDENTIALS', 'with its code')
  const refreshed = await post('/refresh', { refresh_token: login.body.refresh_token })
  t.equal(refreshed.status, 200, 'refresh')
  t.not(refreshed.body.refresh_token, login.body.refresh_token, 'the refresh token rotated')
  const me = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${String(refreshed.body.access_token)}` } })
  t.equal(me.status, 200, 'the protected route with the refreshed access token')
  t.match(await me.json(), { email: 'ada@example.com', roles: ['user'] }, 'request.user is the account')
  t.equal((await fetch(`${base}/me`)).status, 401, 'the protected route without a token: 401')
  const org = await fetch(`${base}/orgs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${String(refreshed.body.access_token)}` }, body: JSON.stringify({ name: 'Ada Labs' }) })
  t.equal(org.status, 201, 'gatehouse/orgs creates an organization')
  t.same(await org.json(), { slug: 'ada-labs', members: 1 }, 'with its creator as the one member')
  await stop(child)
  const full = readFileSync(modulesOut, 'utf8')
  t.match(full, /\/node_modules\/@prisma\/client\//, 'the recorder sees Prisma when it is loaded')
  t.match(full, /better-sqlite3/, 'and the SQLite driver')

  const loaded = await resourceServer(t, join(work, 'modules-2.txt'))
  t.same(loaded.filter((l) => HEAVY.test(l)), [], 'with the peers installed, the resource server still loads none of them')
})
