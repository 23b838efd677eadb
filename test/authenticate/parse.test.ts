// Authorization header parsing (RFC 7235 §2.1, RFC 7617), without Fastify.
import t from 'tap'
import { decodeBasic, parseAuthorization } from '../../plugins/authenticate/parse.ts'

t.test('scheme names are case-insensitive; credentials follow one or more spaces', async (t) => {
  t.same(parseAuthorization('Bearer a.b.c'), { scheme: 'bearer', credentials: 'a.b.c' })
  t.same(parseAuthorization('bearer a.b.c'), { scheme: 'bearer', credentials: 'a.b.c' })
  t.same(parseAuthorization('BEARER   a.b.c'), { scheme: 'bearer', credentials: 'a.b.c' })
  t.same(parseAuthorization('basic dTpw'), { scheme: 'basic', credentials: 'dTpw' })
  t.same(parseAuthorization('APIKEY gh_live_x.y'), { scheme: 'apikey', credentials: 'gh_live_x.y' })
})

t.test('malformed headers', async (t) => {
  for (const header of ['Bearer', 'Bearer ', ' Bearer x', 'Token abc', 'Digest x', 'Bearerabc', 'ApiKey a b', 'ApiKey ☃']) {
    t.throws(() => parseAuthorization(header), { code: 'MALFORMED_AUTHORIZATION', statusCode: 400 }, JSON.stringify(header))
  }
})

t.test('Basic credentials', async (t) => {
  const encode = (s: string): string => Buffer.from(s, 'utf8').toString('base64')
  t.same(decodeBasic(encode('alice@example.com:pa:ss')), { email: 'alice@example.com', password: 'pa:ss' }, 'the password may contain colons')
  t.same(decodeBasic(encode('zoë@example.com:pässwörd')), { email: 'zoë@example.com', password: 'pässwörd' }, 'UTF-8')
  for (const bad of ['!!!!', 'abc', encode('no-colon'), encode(':password-without-email'), 'Og==', Buffer.from([0xff, 0xfe, 0x3a]).toString('base64'), 'A'.repeat(8192)]) {
    t.throws(() => decodeBasic(bad), { code: 'MALFORMED_AUTHORIZATION' }, JSON.stringify(bad.slice(0, 20)))
  }
})
