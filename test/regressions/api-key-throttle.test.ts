// Found by an outside test: @fastify/rate-limit appended its hook after a route's (or a scope's)
// `onRequest: authenticate`, so a failed credential was answered before anything was counted:
// 1,200 forged Bearer tokens, 300 bad API keys and 200 malformed headers from one address were
// all 401/400, never 429, and HTTP Basic with a new email each time gave unlimited credential
// stuffing and unlimited argon2 work. Now every budget is checked in the limiter's own hooks,
// before any credential; failed credentials of any scheme spend a tighter per-address budget;
// Basic and ApiKey failures feed the per-account throttle like wrong passwords.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { PASSWORD, listening, client } from './limiter-helpers.ts'
import { providers } from '../helpers/databases.ts'

for (const { provider, skip } of await providers()) {
  t.test(`API key failures feed the per-account throttle, on ${provider}`, { skip }, async (t) => {
    // A back-off long enough that a slow machine cannot outlive it between the requests.
    const { base } = await listening(t, provider, { loginThrottle: { baseDelayMs: 60_000 } })
    const call = client(base)
    const registered = await call('198.51.100.1', 'POST', '/auth/register', { body: { email: 'lin@example.com', password: PASSWORD } })
    const created = await call('198.51.100.1', 'POST', '/auth/api-keys', { authorization: `Bearer ${registered.body.access_token as string}`, body: { name: 'ci' } })
    t.equal(created.status, 201)
    const key = created.body.key as string
    const lookup = key.split('_').slice(0, 2).join('_') // `gh_<16 hex>`; the secret may hold `_` too
    // Wrong secrets for a real key, each from a different address (no address budget is spent).
    const seen: string[] = []
    for (let i = 0; i < 6; i++) {
      const res = await call(`203.0.113.${40 + i}`, 'GET', '/auth/me', { authorization: `ApiKey ${lookup}_${randomBytes(32).toString('base64url')}` })
      seen.push(`${res.status} ${String(res.code)}`)
      t.ok(res.status === 401 || res.status === 429, `wrong secret ${i + 1}: refused (${res.status} ${String(res.code)})`)
    }
    const login = await call('198.51.100.3', 'POST', '/auth/login', { body: { email: 'lin@example.com', password: PASSWORD } })
    t.equal(login.status, 429, `the account is in back-off after the failures (answers before: ${seen.join(", ")})`)
    t.equal(login.code, 'RATE_LIMITED')
    t.equal((await call('198.51.100.4', 'GET', '/auth/me', { authorization: `ApiKey ${key}` })).status, 200, 'the right key never touches the throttle')
  })
}
