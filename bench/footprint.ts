// The footprint of Gatehouse as a dependency (docs/package.md): install size and package count of
// a resource server (gatehouse + fastify), of the full stack (plus the store's peers) and of
// @fastify/jwt + get-jwks, then the start-up time and peak RSS of a process that imports the
// resource-server subpaths (and one that also registers them and waits for ready), against the
// same with @fastify/jwt + get-jwks and against fastify alone. Runs are interleaved; medians.
//
//   npx tsx bench/footprint.ts [--runs 21] [--tarball gatehouse-x.y.z.tgz] [--no-full] [--work DIR]
// --work keeps the apps in DIR (and reuses the ones already installed there).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const ROOT = resolve(import.meta.dirname, '..')
const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' }, tarball: { type: 'string' }, 'no-full': { type: 'boolean', default: false }, work: { type: 'string' } } })
const RUNS = Number(values.runs)
const version = (name: string): string => JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version

const work = values.work === undefined ? mkdtempSync(join(tmpdir(), 'gatehouse-footprint-')) : resolve(values.work)
mkdirSync(work, { recursive: true })
if (values.work === undefined) process.on('exit', () => rmSync(work, { recursive: true, force: true }))

function npm (args: string[], cwd: string): void {
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], { cwd, stdio: ['ignore', 'ignore', 'inherit'] })
}

let tarball = values.tarball === undefined ? '' : resolve(values.tarball)
const packed = readdirSync(work).find((f) => f.endsWith('.tgz'))
if (tarball === '' && packed !== undefined) tarball = join(work, packed)
if (tarball === '') {
  process.stderr.write('npm pack...\n')
  npm(['pack', '--pack-destination', work], ROOT)
  tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!)
}

function app (name: string, packages: string[]): string {
  const dir = join(work, name)
  if (existsSync(join(dir, 'node_modules'))) return dir
  mkdirSync(dir, { recursive: true })
  const onNode20 = Number(process.versions.node.split('.')[0]) < 22
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module', ...(onNode20 ? { overrides: { 'light-my-request': '6.6.0' } } : {}) }))
  process.stderr.write(`installing ${name}: ${packages.join(' ')}\n`)
  npm(['install', ...packages], dir)
  return dir
}

function size (dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isSymbolicLink()) continue
    total += entry.isDirectory() ? size(path) : statSync(path).size
  }
  return total
}

function count (modules: string): number {
  let n = 0
  for (const entry of readdirSync(modules, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue
    const path = join(modules, entry.name)
    if (entry.name.startsWith('@')) { n += count(path); continue }
    n++
    if (existsSync(join(path, 'node_modules'))) n += count(join(path, 'node_modules'))
  }
  return n
}

const fastify = `fastify@${version('fastify')}`
const jwtApp = app('fastify-jwt', [fastify, `@fastify/jwt@${version('@fastify/jwt')}`, `get-jwks@${version('get-jwks')}`])
const rsApp = app('resource-server', [tarball, fastify])
const peers = ['@prisma/client', '@prisma/adapter-better-sqlite3', 'better-sqlite3', '@node-rs/argon2'].map((p) => `${p}@${version(p)}`)
const fullApp = values['no-full'] ? null : app('full', [tarball, fastify, ...peers])

const ISSUER = "{ issuer: 'https://idp.example', jwksUri: 'https://idp.example/.well-known/jwks.json', audiences: ['api'] }"
const scripts: Record<string, { dir: string, code: string }> = {
  'node (empty)': { dir: rsApp, code: '' },
  'fastify alone': { dir: rsApp, code: "await import('fastify')" },
  '@fastify/jwt + get-jwks: import': { dir: jwtApp, code: "await import('fastify'); await import('@fastify/jwt'); await import('get-jwks')" },
  'gatehouse trusted-issuers + authenticate + rbac: import': { dir: rsApp, code: "await import('fastify'); await import('gatehouse/trusted-issuers'); await import('gatehouse/authenticate'); await import('gatehouse/rbac')" },
  '@fastify/jwt + get-jwks: registered, ready': {
    dir: jwtApp,
    code: `const { default: Fastify } = await import('fastify'); const { default: jwt } = await import('@fastify/jwt'); const { default: buildGetJwks } = await import('get-jwks')
const getJwks = buildGetJwks({ issuersWhitelist: ['https://idp.example'] }); const app = Fastify()
await app.register(jwt, { decode: { complete: true }, secret: (_r, t) => getJwks.getPublicKey({ kid: t.header.kid, domain: t.payload.iss, alg: t.header.alg }), verify: { allowedIss: 'https://idp.example', allowedAud: 'api' } })
app.get('/me', { onRequest: async (r) => { await r.jwtVerify() } }, async (r) => r.user); await app.ready(); await app.close()`
  },
  'gatehouse trusted-issuers + authenticate + rbac: registered, ready': {
    dir: rsApp,
    code: `const { default: Fastify } = await import('fastify'); const { trustedIssuers } = await import('gatehouse/trusted-issuers'); const { authenticate, errorHandler } = await import('gatehouse/authenticate'); const { rbac } = await import('gatehouse/rbac')
const app = Fastify(); app.setErrorHandler(errorHandler); await app.register(trustedIssuers, { issuers: [${ISSUER}] }); await app.register(authenticate); await app.register(rbac)
app.get('/me', { onRequest: app.authenticate, preHandler: app.requireRole('user') }, async (r) => r.user); await app.ready(); await app.close()`
  }
}
if (fullApp !== null) scripts['gatehouse (root, the full stack): import'] = { dir: fullApp, code: "await import('fastify'); await import('gatehouse')" }

for (const [name, s] of Object.entries(scripts)) writeFileSync(join(s.dir, `m-${name.replace(/[^a-z0-9]+/gi, '-')}.mjs`), s.code + '\n')

const samples = new Map<string, { ms: number[], kb: number[] }>(Object.keys(scripts).map((k) => [k, { ms: [], kb: [] }]))
process.stderr.write(`${RUNS} interleaved runs of ${Object.keys(scripts).length} scripts...\n`)
for (let i = 0; i < RUNS; i++) {
  for (const [name, s] of Object.entries(scripts)) {
    const file = `m-${name.replace(/[^a-z0-9]+/gi, '-')}.mjs`
    const started = process.hrtime.bigint()
    const run = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, file], { cwd: s.dir, encoding: 'utf8' })
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    if (run.status !== 0) throw new Error(`${name}: ${run.stderr}`)
    const sample = samples.get(name)!
    sample.ms.push(ms)
    sample.kb.push(Number(run.stderr.trim().split('\n').at(-1)))
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`
const out: string[] = []
out.push(`Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${new Date().toISOString().slice(0, 16)} UTC, ${RUNS} runs each, interleaved`)
out.push('', '| install | packages | node_modules |', '|---|---:|---:|')
for (const [name, dir] of [['fastify + @fastify/jwt + get-jwks', jwtApp], ['gatehouse + fastify (resource server)', rsApp], ...(fullApp !== null ? [['gatehouse + fastify + store peers (full stack)', fullApp]] : [])] as Array<[string, string]>) {
  out.push(`| ${name} | ${count(join(dir, 'node_modules'))} | ${mb(size(join(dir, 'node_modules')))} |`)
}
out.push('', '| process | wall time (median) | peak RSS (median) |', '|---|---:|---:|')
for (const [name, s] of samples) out.push(`| ${name} | ${median(s.ms).toFixed(0)} ms | ${(median(s.kb) / 1024).toFixed(1)} MB |`)
process.stdout.write(out.join('\n') + '\n')
