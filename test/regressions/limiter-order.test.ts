// Found by an outside test: @fastify/rate-limit appended its hook after a route's (or a scope's)
// `onRequest: authenticate`, so a failed credential was answered before anything was counted:
// 1,200 forged Bearer tokens, 300 bad API keys and 200 malformed headers from one address were
// all 401/400, never 429, and HTTP Basic with a new email each time gave unlimited credential
// stuffing and unlimited argon2 work. Now every budget is checked in the limiter's own hooks,
// before any credential; failed credentials of any scheme spend a tighter per-address budget;
// Basic and ApiKey failures feed the per-account throttle like wrong passwords.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { PASSWORD, listening, client, forgedJwt } from './limiter-helpers.ts'
import { providers } from '../helpers/databases.ts'

// Hundreds of requests on each database through real servers: minutes on a busy 2-core machine.
t.setTimeout(10 * 60_000)

for (const { provider, skip } of await providers()) {
  t.test(`every budget is counted before authentication, on route and scope hooks alike, on ${provider}`, { skip }, async (t) => {
    const { base } = await listening(t, provider, { classes: { default: { max: 15 } }, failedCredentials: { max: 1000 } })
    const call = client(base)
    for (const [i, path] of ['/auth/me', '/admin/users', '/orgs/any-org'].entries()) {
      const from = `203.0.113.${20 + i}`
      const statuses: number[] = []
      for (let n = 0; n < 18; n++) statuses.push((await call(from, 'GET', path, { authorization: forgedJwt() })).status)
      t.equal(statuses.indexOf(429), 15, `${path}: the 16th request from one address is 429 though every one was refused`)
    }
  })

  t.test(`knowing a family id does not let a stranger block that family's refresh, on ${provider}`, { skip }, async (t) => {
    const { base } = await listening(t, provider)
    const call = client(base)
    const registered = await call('198.51.100.1', 'POST', '/auth/register', { body: { email: 'kay@example.com', password: PASSWORD } })
    const refreshToken = registered.body.refresh_token as string
    const family = refreshToken.slice(0, refreshToken.indexOf('.'))
    for (let i = 0; i < 40; i++) {
      const res = await call(`203.0.113.${60 + (i % 20)}`, 'POST', '/auth/refresh', { body: { refresh_token: `${family}.${randomBytes(32).toString('base64url')}` } })
      t.not(res.status, 200, 'a forged token never refreshes')
    }
    const real = await call('198.51.100.1', 'POST', '/auth/refresh', { body: { refresh_token: refreshToken } })
    t.equal(real.status, 200, "the owner's refresh still works")
  })
}
