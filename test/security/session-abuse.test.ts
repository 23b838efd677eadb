// security.md §(b) rows 41-53 and the concurrency cases of issue 10: refresh-token abuse,
// login enumeration, password policy, parallel refresh/logout/registration; and a scan of
// every debug log line and every stored row for the secrets used.
import t from 'tap'
import { target, PASSWORD, assertNoSecrets } from './helpers.ts'
import { providers } from '../helpers/databases.ts'

const post = async (url: string, path: string, body: unknown, token?: string): Promise<{ status: number, body: any }> => {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? null : JSON.parse(text) }
}

for (const { provider, skip } of await providers()) {
  t.test(`refresh-token abuse, enumeration, policy and concurrency on ${provider}`, { skip, timeout: 180_000 }, async (t) => {
    // Limits raised so the suite measures the token logic, not the rate limiter (tested on its own).
    const s = await target(t, { provider, app: { rateLimit: { failedCredentials: { max: 10_000 }, classes: { login: { max: 10_000 }, register: { max: 10_000 }, refresh: { max: 10_000 } } } } })
    const secrets = [PASSWORD, s.accessToken, s.refreshToken]

    // Row 41: rotate RT1 -> RT2, replay RT1: reused, and RT2 dies with its family.
    const rt2 = await post(s.url, '/auth/refresh', { refresh_token: s.refreshToken })
    t.equal(rt2.status, 200)
    secrets.push(rt2.body.refresh_token, rt2.body.access_token)
    const replay = await post(s.url, '/auth/refresh', { refresh_token: s.refreshToken })
    t.equal(replay.status, 401)
    t.equal(replay.body.code, 'REFRESH_TOKEN_REUSED')
    t.equal((await post(s.url, '/auth/refresh', { refresh_token: rt2.body.refresh_token })).status, 401, 'the successor died with the family')
    t.equal((await s.me(rt2.body.access_token)).status, 401, 'and so did the family\'s access token')

    // Row 42 / issue 10: 100 parallel refreshes of one token: exactly one successor.
    const session = await post(s.url, '/auth/login', { email: s.email, password: PASSWORD })
    t.equal(session.status, 200)
    secrets.push(session.body.refresh_token)
    const results = await Promise.all(Array.from({ length: 100 }, () => post(s.url, '/auth/refresh', { refresh_token: session.body.refresh_token })))
    const winners = results.filter((r) => r.status === 200)
    t.equal(winners.length, 1, 'exactly one of 100 parallel refreshes succeeds')
    t.ok(results.every((r) => r.status === 200 || (r.status === 401 && ['REFRESH_TOKEN_REUSED', 'INVALID_REFRESH_TOKEN'].includes(r.body.code))), 'the others are refused, none with a 5xx')
    t.equal((await post(s.url, '/auth/refresh', { refresh_token: winners[0].body.refresh_token })).status, 401, 'the reuse revoked the family, successor included')

    // Row 44: logout, then refresh.
    const s2 = await post(s.url, '/auth/login', { email: s.email, password: PASSWORD })
    t.equal((await post(s.url, '/auth/logout', {}, s2.body.access_token)).status, 204)
    const afterLogout = await post(s.url, '/auth/refresh', { refresh_token: s2.body.refresh_token })
    t.equal(afterLogout.status, 401)
    t.ok(['TOKEN_REVOKED', 'INVALID_REFRESH_TOKEN'].includes(afterLogout.body.code), `refresh after logout: ${afterLogout.body.code}`)
    t.equal((await s.me(s2.body.access_token)).status, 401, 'the logged-out session\'s access token stops at once')

    // Parallel logout and refresh: never a live successor of a logged-out family.
    const s3 = await post(s.url, '/auth/login', { email: s.email, password: PASSWORD })
    const [, raced] = await Promise.all([post(s.url, '/auth/logout', {}, s3.body.access_token), post(s.url, '/auth/refresh', { refresh_token: s3.body.refresh_token })])
    if (raced.status === 200) {
      t.equal((await post(s.url, '/auth/refresh', { refresh_token: raced.body.refresh_token })).status, 401, 'a successor minted during the logout is dead after it')
    } else {
      t.equal(raced.status, 401, 'the refresh lost the race to the logout')
    }

    // Row 45: a password change revokes the other sessions' refresh tokens.
    const keep = await post(s.url, '/auth/login', { email: s.email, password: PASSWORD })
    const other = await post(s.url, '/auth/login', { email: s.email, password: PASSWORD })
    const newPassword = `${PASSWORD} and more`
    secrets.push(newPassword)
    t.equal((await post(s.url, '/auth/password', { current_password: PASSWORD, new_password: newPassword }, keep.body.access_token)).status, 204)
    t.equal((await post(s.url, '/auth/refresh', { refresh_token: other.body.refresh_token })).status, 401, 'another session\'s refresh token is revoked')
    t.equal((await s.me(other.body.access_token)).status, 401, 'and its access token')
    t.equal((await s.me(keep.body.access_token)).status, 200, 'the session that changed it goes on')

    // Row 46: junk refresh tokens are 401, never 500; the query string is ignored.
    for (const junk of ['', 'x', 'a'.repeat(10_000), "' OR 1=1 --", 'abc.def', '\u0000', `${s.refreshToken}x`]) {
      const res = await post(s.url, '/auth/refresh', { refresh_token: junk })
      t.ok(res.status === 401 || res.status === 400, `refresh_token ${JSON.stringify(junk.slice(0, 12))}: ${res.status} ${res.body?.code}`)
      t.ok(res.status < 500)
    }
    const viaQuery = await fetch(`${s.url}/auth/refresh?refresh_token=${encodeURIComponent(keep.body.refresh_token)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    t.not(viaQuery.status, 200, 'a refresh token in the query string is not used')

    // Row 47: unknown email and wrong password are indistinguishable.
    const unknown = await post(s.url, '/auth/login', { email: 'nobody-here@example.com', password: PASSWORD })
    const wrong = await post(s.url, '/auth/login', { email: s.email, password: 'wrong password but long enough' })
    t.equal(unknown.status, 401)
    t.same(unknown.body, wrong.body, 'same body for unknown email and wrong password')
    t.equal(unknown.body.code, 'INVALID_CREDENTIALS')

    // Rows 52-53: the password policy.
    const weak = async (password: string) => post(s.url, '/auth/register', { email: `p${Math.random().toString(36).slice(2)}@example.com`, password })
    for (const [password, why] of [['short pass', 'too short'], ['password123456789', 'common'], ['x'.repeat(2048), 'over 1,024 bytes']] as const) {
      const res = await weak(password)
      t.equal(res.status, 400, `${why}: 400`)
      t.equal(res.body.code, 'WEAK_PASSWORD', `${why}: WEAK_PASSWORD`)
    }
    t.equal((await weak('correct horse battery staple')).status, 201, 'a passphrase without digits or symbols is fine (no composition rules)')
    t.equal((await weak('𝓉𝒽𝒾𝓈 𝒾𝓈 𝒶 𝓁𝑜𝓃𝑔 𝓊𝓃𝒾𝒸𝑜𝒹𝑒 𝓅𝒶𝓈𝓈𝓅𝒽𝓇𝒶𝓈𝑒 ✓ 𝓌𝒾𝓉𝒽 𝓈𝓎𝓂𝒷𝑜𝓁𝓈 ✓✓✓✓✓✓✓✓')).status, 201, 'a 64-character Unicode passphrase is accepted')

    // Row 51 + issue 10: parallel registrations of one email (in different cases) make one account.
    const email = `Race-${Math.random().toString(36).slice(2)}@Example.com`
    const regs = await Promise.all(Array.from({ length: 10 }, (_, i) => post(s.url, '/auth/register', { email: i % 2 === 0 ? email : email.toLowerCase(), password: PASSWORD })))
    t.equal(regs.filter((r) => r.status === 201).length, 1, 'one account')
    t.ok(regs.filter((r) => r.status !== 201).every((r) => r.status === 409 && r.body.code === 'EMAIL_TAKEN'), 'the rest: EMAIL_TAKEN')
    for (const r of regs) if (r.status === 201) secrets.push(r.body.access_token, r.body.refresh_token)

    await assertNoSecrets(t, s.app, s.logs, secrets)
  })
}
