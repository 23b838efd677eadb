// A lockfile change must not quietly bring back a known forgery: fail when an installed
// version is below the floor that fixed it (see docs/security.md).
import t from 'tap'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../lib/paths.ts'

function installed (name: string): string | null {
  const file = join(PACKAGE_ROOT, 'node_modules', name, 'package.json')
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).version : null
}

function atLeast (version: string, floor: string): boolean {
  const a = version.split('-')[0].split('.').map(Number)
  const b = floor.split('.').map(Number)
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i]
  return true
}

t.test('version floors', async (t) => {
  const fastJwt = installed('fast-jwt')
  t.ok(fastJwt !== null, 'fast-jwt is installed')
  t.ok(atLeast(fastJwt!, '6.3.6'), `fast-jwt ${fastJwt} >= 6.3.6 (alg confusion, empty-key HMAC, array payload, clockTolerance Infinity, cache without iat, crit)`)
  // @fastify/jwt may carry its own fast-jwt copy; it must obey the same floor.
  const nested = installed('@fastify/jwt/node_modules/fast-jwt')
  if (nested !== null) t.ok(atLeast(nested, '6.3.6'), `@fastify/jwt's fast-jwt ${nested} >= 6.3.6`)
  const getJwks = installed('get-jwks')
  if (getJwks !== null) t.ok(atLeast(getJwks, '11.0.2'), `get-jwks ${getJwks} has the cache-key fix (CVE-2025-59936)`)
  else t.pass('get-jwks is not used (Gatehouse fetches JWKS itself: docs/trusted-issuers.md)')
  const fastify = installed('fastify')
  t.ok(atLeast(fastify!, '5.0.0'), `fastify ${fastify}`)
  const argon2 = installed('@node-rs/argon2')
  t.ok(argon2 !== null && atLeast(argon2, '2.0.0'), `@node-rs/argon2 ${argon2}`)
})
