// Found by an outside test: @fastify/rate-limit appended its hook after a route's (or a scope's)
// `onRequest: authenticate`, so a failed credential was answered before anything was counted:
// 1,200 forged Bearer tokens, 300 bad API keys and 200 malformed headers from one address were
// all 401/400, never 429, and HTTP Basic with a new email each time gave unlimited credential
// stuffing and unlimited argon2 work. Now every budget is checked in the limiter's own hooks,
// before any credential; failed credentials of any scheme spend a tighter per-address budget;
// Basic and ApiKey failures feed the per-account throttle like wrong passwords.
import t from 'tap'
import { PASSWORD, FAILED_MAX, listening, client, basic, forgedJwt, forgedApiKey, type Answer } from './limiter-helpers.ts'
import { providers } from '../helpers/databases.ts'

for (const { provider, skip } of await providers()) {
  t.test(`failed credentials of every scheme are limited per address before they are checked, on ${provider}`, { skip }, async (t) => {
    const { base } = await listening(t, provider)
    const call = client(base)
    const registered = await call('198.51.100.1', 'POST', '/auth/register', { body: { email: 'ada@example.com', password: PASSWORD } })
    t.equal(registered.status, 201)
    const goodToken = registered.body.access_token as string

    const schemes: Array<{ name: string, from: string, authorization: (i: number) => string, status: number }> = [
      { name: 'forged Bearer tokens', from: '203.0.113.1', authorization: () => forgedJwt(), status: 401 },
      { name: 'unknown API keys', from: '203.0.113.2', authorization: () => forgedApiKey(), status: 401 },
      { name: 'malformed headers', from: '203.0.113.3', authorization: (i) => `Bogus ${i}`, status: 400 },
      { name: 'Basic with a new email each time', from: '203.0.113.4', authorization: (i) => basic(`victim${i}@example.com`, 'Password-guess-123'), status: 401 }
    ]
    for (const scheme of schemes) {
      const statuses: number[] = []
      let limited: Answer | undefined
      for (let i = 0; i < FAILED_MAX + 10; i++) {
        const res = await call(scheme.from, 'GET', '/auth/me', { authorization: scheme.authorization(i) })
        statuses.push(res.status)
        if (res.status === 429) limited ??= res
      }
      const first429 = statuses.indexOf(429)
      t.equal(first429, FAILED_MAX, `${scheme.name}: ${FAILED_MAX} are checked, then 429`)
      t.ok(statuses.slice(0, FAILED_MAX).every((s) => s === scheme.status), `${scheme.name}: each checked one is refused (${scheme.status})`)
      t.ok(statuses.slice(first429).every((s) => s === 429), `${scheme.name}: every later one is 429`)
      t.equal(limited?.code, 'RATE_LIMITED')
      t.ok(Number(limited?.retryAfter) >= 1, 'with Retry-After')
      // The address is spent: even a good credential from it is not checked now.
      t.equal((await call(scheme.from, 'GET', '/auth/me', { authorization: `Bearer ${goodToken}` })).status, 429, `${scheme.name}: the spent address gets 429 for any credential`)
      t.equal((await call(scheme.from, 'GET', '/health')).status, 200, 'a route without credentials still answers')
    }
    // Other addresses are unharmed.
    const login = await call('198.51.100.2', 'POST', '/auth/login', { body: { email: 'ada@example.com', password: PASSWORD } })
    t.equal(login.status, 200, 'a legitimate login from another address succeeds')
    t.equal((await call('198.51.100.2', 'GET', '/auth/me', { authorization: `Bearer ${goodToken}` })).status, 200)
  })

  t.test(`a parallel Basic flood costs a bounded number of password checks, and logins elsewhere go on, on ${provider}`, { skip }, async (t) => {
    const { base, app } = await listening(t, provider)
    const call = client(base)
    t.equal((await call('198.51.100.1', 'POST', '/auth/register', { body: { email: 'grace@example.com', password: PASSWORD } })).status, 201)
    const concurrency = 20
    const total = 200
    let next = 0
    const counts = new Map<number, number>()
    const logins: number[] = []
    async function worker (): Promise<void> {
      while (next < total) {
        const i = next++
        const res = await call('203.0.113.9', 'GET', '/auth/me', { authorization: basic(`stuffed${i}@example.com`, 'Password-guess-123') })
        counts.set(res.status, (counts.get(res.status) ?? 0) + 1)
      }
    }
    async function legitimate (): Promise<void> {
      for (let i = 0; i < 3; i++) logins.push((await call(`198.51.100.${10 + i}`, 'POST', '/auth/login', { body: { email: 'grace@example.com', password: PASSWORD } })).status)
    }
    await Promise.all([...Array.from({ length: concurrency }, worker), legitimate()])
    const checked = counts.get(401) ?? 0
    t.ok(checked >= FAILED_MAX, `at least the budget was checked (${checked})`)
    t.ok(checked <= FAILED_MAX + concurrency, `at most the budget plus the requests in flight were checked (${checked})`)
    t.equal(checked + (counts.get(429) ?? 0), total, `every other request was 429 (${JSON.stringify([...counts])})`)
    t.same(logins, [200, 200, 200], 'legitimate logins from other addresses succeed')
    await app.audit.flush()
    const verified = await app.store.prisma.auditEvent.count({ where: { type: 'login', outcome: 'failure', reason: 'unknown_user' } })
    t.equal(verified, checked, 'only the refused-by-password requests reached the password check')
  })
}
