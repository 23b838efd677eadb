import t from 'tap'
import { loadConfig, ConfigError } from '../server/config.ts'

t.test('defaults follow CONTRACT §2', async (t) => {
  const config = loadConfig({})
  t.equal(config.port, 3000)
  t.equal(config.host, '127.0.0.1')
  t.equal(config.databaseUrl, 'file:./data/gatehouse.db')
  t.equal(config.redisUrl, undefined)
  t.equal(config.issuer, 'http://127.0.0.1:3000')
  t.equal(config.audience, 'gatehouse')
  t.equal(config.keysDir, './data/keys')
  t.equal(config.accessTokenTtl, 900)
  t.equal(config.refreshTokenTtl, 604800)
  t.equal(config.refreshTokenMaxTtl, 30 * 86400)
  t.equal(config.refreshReuseGrace, 0)
  t.same(config.trustedIssuers, [])
  t.equal(config.trustProxy, undefined)
  t.equal(config.logLevel, 'info')
  t.equal(config.stepUpMaxAge, 300)
  t.equal(loadConfig({ STEP_UP_MAX_AGE: '120' }).stepUpMaxAge, 120)
  t.ok(Object.isFrozen(config))
})

t.test('AUTH_ISSUER follows HOST and PORT', async (t) => {
  t.equal(loadConfig({ HOST: '0.0.0.0', PORT: '8080' }).issuer, 'http://0.0.0.0:8080')
  t.equal(loadConfig({ AUTH_ISSUER: 'https://auth.example.com/' }).issuer, 'https://auth.example.com')
})

t.test('TRUST_PROXY forms', async (t) => {
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
  t.same(loadConfig({ TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,::1' }).trustProxy, ['127.0.0.1', '10.0.0.0/8', '::1'])
})

const bad: Array<[Record<string, string>, string]> = [
  [{ PORT: 'eighty' }, 'PORT'],
  [{ PORT: '70000' }, 'PORT'],
  [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
  [{ DATABASE_URL: 'postgresql://' }, 'DATABASE_URL'],
  [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
  [{ AUTH_ISSUER: 'not a url' }, 'AUTH_ISSUER'],
  [{ AUTH_ISSUER: 'http://auth.example.com' }, 'AUTH_ISSUER'],
  [{ AUTH_SIGNING_ALG: 'HS256' }, 'AUTH_SIGNING_ALG'],
  [{ ACCESS_TOKEN_TTL: '-5' }, 'ACCESS_TOKEN_TTL'],
  [{ REFRESH_TOKEN_TTL: '9999999', REFRESH_TOKEN_MAX_TTL: '3600' }, 'REFRESH_TOKEN_TTL'],
  [{ REFRESH_REUSE_GRACE: '30' }, 'REFRESH_REUSE_GRACE'],
  [{ STEP_UP_MAX_AGE: '5' }, 'STEP_UP_MAX_AGE'],
  [{ STEP_UP_MAX_AGE: 'five minutes' }, 'STEP_UP_MAX_AGE'],
  [{ TRUSTED_ISSUERS: '[{"issuer":' }, 'TRUSTED_ISSUERS'],
  [{ TRUSTED_ISSUERS: '{"issuer":"x"}' }, 'TRUSTED_ISSUERS'],
  [{ ADMIN_EMAIL: 'a@example.com' }, 'ADMIN_PASSWORD'],
  [{ TRUST_PROXY: 'yes please' }, 'TRUST_PROXY'],
  [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL']
]

for (const [env, variable] of bad) {
  t.test(`${JSON.stringify(env)} is refused, naming ${variable}`, async (t) => {
    const err = (() => { try { loadConfig(env); return null } catch (e) { return e } })()
    t.ok(err instanceof ConfigError)
    t.equal((err as ConfigError).variable, variable)
    t.match((err as Error).message, new RegExp(`^${variable}: `))
    t.notMatch((err as Error).message, /\n/, 'one line')
  })
}
