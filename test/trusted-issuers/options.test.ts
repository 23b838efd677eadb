// TRUSTED_ISSUERS validation: every bad entry stops start-up with one line naming the variable,
// and never echoes a secret.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { ConfigError, loadConfig } from '../../server/config.ts'
import { resolveOptions, trustedIssuers } from '../../plugins/trusted-issuers/index.ts'

const SECRET_31 = 's'.repeat(31)

const bad: Array<[string, unknown, RegExp]> = [
  ['entry not an object', ['https://idp.example.com'], /entry 0 must be an object/],
  ['no issuer', [{ jwksUri: 'https://idp.example.com/jwks', audiences: ['a'] }], /issuer must be a non-empty string/],
  ['unknown field', [{ issuer: 'https://idp.example.com', jwks_uri: 'https://idp.example.com/jwks', audiences: ['a'] }], /unknown field "jwks_uri"/],
  ['no key source', [{ issuer: 'https://idp.example.com', audiences: ['a'] }], /exactly one of jwksUri, discovery: true or secret/],
  ['two key sources', [{ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', discovery: true, audiences: ['a'] }], /exactly one/],
  ['http JWKS on a public host', [{ issuer: 'https://idp.example.com', jwksUri: 'http://idp.example.com/jwks', audiences: ['a'] }], /jwksUri must be https: \(http: only for a loopback host\)/],
  ['http JWKS on a private address', [{ issuer: 'x', jwksUri: 'http://10.0.0.5/jwks', audiences: ['a'] }], /jwksUri must be https:/],
  ['JWKS URL with credentials', [{ issuer: 'x', jwksUri: 'https://user:pw@idp.example.com/jwks', audiences: ['a'] }], /must not contain credentials/],
  ['JWKS not a URL', [{ issuer: 'x', jwksUri: 'idp.example.com/jwks', audiences: ['a'] }], /is not an absolute URL/],
  ['file: JWKS', [{ issuer: 'x', jwksUri: 'file:///etc/passwd', audiences: ['a'] }], /must be an https: URL/],
  ['discovery on http public issuer', [{ issuer: 'http://idp.example.com', discovery: true, audiences: ['a'] }], /discovery needs an issuer that is an https: URL/],
  ['discovery on a non-URL issuer', [{ issuer: 'kalamdb', discovery: true, audiences: ['a'] }], /discovery needs an issuer/],
  ['HS secret under 32 bytes', [{ issuer: 'kalamdb-test', secret: SECRET_31, algorithms: ['HS256'], audiences: ['a'] }], /secret must be at least 32 bytes for HS256 \(it has 31\)/],
  ['HS384 secret under 48 bytes', [{ issuer: 'k', secret: 's'.repeat(40), algorithms: ['HS384'], audiences: ['a'] }], /at least 48 bytes for HS384/],
  ['unknown algorithm', [{ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', algorithms: ['RS1'], audiences: ['a'] }], /unknown algorithm "RS1"/],
  ['alg none', [{ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', algorithms: ['none'], audiences: ['a'] }], /unknown algorithm "none"/],
  ['HS mixed with RS', [{ issuer: 'k', secret: 's'.repeat(64), algorithms: ['HS256', 'RS256'], audiences: ['a'] }], /must not be mixed/],
  ['HS with a JWKS', [{ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', algorithms: ['HS256'], audiences: ['a'] }], /HS algorithms need a secret/],
  ['secret with RS256', [{ issuer: 'k', secret: 's'.repeat(64), algorithms: ['RS256'], audiences: ['a'] }], /a secret issuer needs HS256/],
  ['no audiences', [{ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks' }], /audiences must be a non-empty array/],
  ['empty audiences', [{ issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', audiences: [] }], /audiences must be a non-empty array/],
  ['clock tolerance Infinity', [{ issuer: 'https://i.example', jwksUri: 'https://i.example/jwks', audiences: ['a'], clockToleranceSeconds: Infinity }], /clockToleranceSeconds must be a finite number from 0 to 300/],
  ['clock tolerance 301', [{ issuer: 'https://i.example', jwksUri: 'https://i.example/jwks', audiences: ['a'], clockToleranceSeconds: 301 }], /clockToleranceSeconds/],
  ['clock tolerance string', [{ issuer: 'https://i.example', jwksUri: 'https://i.example/jwks', audiences: ['a'], clockToleranceSeconds: '30' }], /clockToleranceSeconds/],
  ['empty rolesClaim', [{ issuer: 'https://i.example', jwksUri: 'https://i.example/jwks', audiences: ['a'], rolesClaim: '' }], /rolesClaim must not be empty/],
  ['empty allowedTypes', [{ issuer: 'https://i.example', jwksUri: 'https://i.example/jwks', audiences: ['a'], allowedTypes: [] }], /allowedTypes must be a non-empty array/],
  ['duplicate issuer', [{ issuer: 'https://i.example', jwksUri: 'https://i.example/jwks', audiences: ['a'] }, { issuer: 'https://i.example', discovery: true, audiences: ['b'] }], /listed twice/],
  ['allowPrivateNetwork not a boolean', [{ issuer: 'https://i.example', jwksUri: 'https://i.example/jwks', audiences: ['a'], allowPrivateNetwork: 'yes' }], /allowPrivateNetwork must be true or false/],
  ['not an array', { issuer: 'https://i.example' }, /must be a JSON array/]
]

t.test('every bad entry throws one ConfigError line naming TRUSTED_ISSUERS', async (t) => {
  for (const [name, issuers, pattern] of bad) {
    let caught: unknown
    try {
      resolveOptions({ issuers: issuers as unknown[] })
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError, `${name}: ConfigError`)
    const err = caught as ConfigError
    t.equal(err.variable, 'TRUSTED_ISSUERS', name)
    t.match(err.message, /^TRUSTED_ISSUERS: /, name)
    t.match(err.message, pattern, name)
    t.notMatch(err.message, /\n/, `${name}: one line`)
    t.notMatch(err.message, SECRET_31, `${name}: the secret is not echoed`)
  }
})

t.test('the CONTRACT §5 example is valid', async (t) => {
  const resolved = resolveOptions({
    issuers: [
      { issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks', audiences: ['my-api'], algorithms: ['RS256', 'ES256'] },
      { issuer: 'https://accounts.example.org', discovery: true, audiences: ['my-api'] },
      { issuer: 'kalamdb-test', secret: 'x'.repeat(32), algorithms: ['HS256'], audiences: ['my-api'] },
      { issuer: 'http://localhost:8080/realms/dev', jwksUri: 'http://127.0.0.1:8080/realms/dev/protocol/openid-connect/certs', audiences: ['account'] }
    ]
  })
  t.equal(resolved.issuers.size, 4)
  t.same(resolved.issuers.get('https://accounts.example.org')?.algorithms, ['RS256'], 'RS256 by default')
  t.equal(resolved.issuers.get('https://accounts.example.org')?.clockToleranceSeconds, 30)
  t.equal(resolved.timeoutMs, 5000)
  t.equal(resolved.maxResponseBytes, 256 * 1024)
  t.equal(resolved.maxKeys, 100)
  t.equal(resolved.cooldownMs, 30_000)
  t.equal(resolved.cacheMaxAgeMs, 600_000)
  t.equal(resolved.maxStaleMs, 86_400_000)
  t.ok(Object.isFrozen(resolved))
  t.ok(Object.isFrozen(resolved.issuers.get('kalamdb-test')))
})

t.test('plugin limits are validated too', async (t) => {
  t.throws(() => resolveOptions({ timeoutMs: 0 }), /timeoutMs must be a positive whole number/)
  t.throws(() => resolveOptions({ maxKeys: 1.5 }), /maxKeys/)
  t.throws(() => resolveOptions({ cooldownMs: 60_000, cacheMaxAgeMs: 30_000 }), /cacheMaxAgeMs must not be shorter than cooldownMs/)
  t.throws(() => resolveOptions({ maxStaleMs: 1000 }), /maxStaleMs must not be shorter than cacheMaxAgeMs/)
  t.throws(() => resolveOptions({ failureBackoffMs: 60_000 }), /failureBackoffMs must not be longer than cooldownMs/)
  t.equal(resolveOptions({}).failureBackoffMs, 5000)
  t.equal(resolveOptions({ cooldownMs: 1000 }).failureBackoffMs, 1000, 'never longer than the cooldown')
})

t.test('registering the plugin with a bad entry fails with the ConfigError', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const err = await app.register(trustedIssuers, { issuers: [{ issuer: 'x', secret: 'short', audiences: ['a'] }] }).ready().then(() => null, (e: unknown) => e)
  t.ok(err instanceof ConfigError)
  t.match((err as Error).message, /^TRUSTED_ISSUERS: entry 0 \("x"\): secret must be at least 32 bytes/)
})

t.test('malformed JSON in the environment is a ConfigError too', async (t) => {
  t.throws(() => loadConfig({ TRUSTED_ISSUERS: '[{"issuer": ' }), { name: 'ConfigError', variable: 'TRUSTED_ISSUERS' })
})

t.test('the standalone server refuses to start with one clear line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ti-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = {
    ...process.env,
    PORT: '0',
    DATABASE_URL: `file:${join(dir, 'db.sqlite')}`,
    AUTH_KEYS_DIR: join(dir, 'keys'),
    LOG_LEVEL: 'silent',
    TRUSTED_ISSUERS: JSON.stringify([{ issuer: 'https://idp.example.com', jwksUri: 'http://idp.example.com/jwks', audiences: ['my-api'] }])
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'server.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  t.equal(code, 1)
  const lines = stderr.trim().split('\n')
  t.equal(lines.length, 1, stderr)
  t.match(lines[0], /TRUSTED_ISSUERS: entry 0 \("https:\/\/idp\.example\.com"\): jwksUri must be https: \(http: only for a loopback host\)/)
})
