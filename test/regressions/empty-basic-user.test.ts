// Found by test/security/fuzz.test.ts: `Authorization: Basic Og==` (base64 of ":", an empty
// user-id) reached the per-account throttle with an empty key and answered 500.
import t from 'tap'
import { build } from '../helpers/build.ts'

t.test('an empty Basic user-id is invalid credentials, not a 500', async (t) => {
  const { app } = await build(t)
  for (const pair of [':', ':password', '   :password']) {
    const res = await app.inject({ url: '/auth/me', headers: { authorization: `Basic ${Buffer.from(pair).toString('base64')}` } })
    t.equal(res.statusCode, 401, JSON.stringify(pair))
    t.equal(res.json().code, 'INVALID_CREDENTIALS')
    t.equal(res.headers['www-authenticate'], 'Basic realm="gatehouse"')
  }
})
