// One error map, one table: every code in lib/errors.ts is documented in docs/errors.md with
// the same status, and the table documents no code the map lacks.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ERRORS, gatehouseError, isGatehouseError, bearerError, basicError, missingAuthorization, serviceUnavailable } from '../lib/errors.ts'
import { PACKAGE_ROOT } from '../lib/paths.ts'

const table = readFileSync(join(PACKAGE_ROOT, 'docs', 'errors.md'), 'utf8')
const documented = new Map<string, number>()
for (const match of table.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) documented.set(match[1], Number(match[2]))

t.test('docs/errors.md documents every code with its status', async (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.equal(documented.get(code), spec.status, `${code} is documented as ${spec.status}`)
  }
  for (const code of documented.keys()) t.ok(Object.hasOwn(ERRORS, code), `${code} in docs/errors.md exists in lib/errors.ts`)
})

t.test('coded errors', async (t) => {
  const err = gatehouseError('WEAK_PASSWORD', 'The password is too short: at least 12 characters')
  t.ok(isGatehouseError(err))
  t.equal(err.statusCode, 400)
  t.equal(err.code, 'WEAK_PASSWORD')
  t.equal(err.message, 'The password is too short: at least 12 characters')
  t.equal(gatehouseError('FORBIDDEN').message, ERRORS.FORBIDDEN.message)
  t.notOk(isGatehouseError(new Error('x')))
  t.equal(bearerError('TOKEN_EXPIRED').headers?.['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal(basicError('INVALID_CREDENTIALS').headers?.['www-authenticate'], 'Basic realm="gatehouse"')
  t.equal(missingAuthorization().headers?.['www-authenticate'], 'Bearer realm="gatehouse"')
  const unavailable = serviceUnavailable(new Error('db down'), 3)
  t.equal(unavailable.statusCode, 503)
  t.equal(unavailable.headers?.['retry-after'], '3')
  t.equal((unavailable as Error & { cause?: Error }).cause?.message, 'db down', 'the cause is kept for the log')
})
