// Found by test/security/fuzz.test.ts: `Authorization: Basic Og==` (base64 of ":", an empty
// user-id) reached the per-account throttle with an empty key and answered 500.
import t from 'tap'
import { build } from '../helpers/build.ts'

const basic = (pair: string): string => `Basic ${Buffer.from(pair).toString('base64')}`

t.test('an empty Basic user-id is refused, never a 500', async (t) => {
  const { app } = await build(t)
  for (const pair of [':', ':password']) {
    const res = await app.inject({ url: '/auth/me', headers: { authorization: basic(pair) } })
    t.equal(res.statusCode, 400, `${JSON.stringify(pair)}: not "email:password"`)
    t.equal(res.json().code, 'MALFORMED_AUTHORIZATION')
  }
  // A user-id of spaces only passes the parser but normalises to an empty email.
  const blank = await app.inject({ url: '/auth/me', headers: { authorization: basic('   :a long enough password') } })
  t.equal(blank.statusCode, 401)
  t.equal(blank.json().code, 'INVALID_CREDENTIALS')
  t.equal(blank.headers['www-authenticate'], 'Basic realm="gatehouse"')
})
