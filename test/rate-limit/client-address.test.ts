// The limiter keys on request.ip: X-Forwarded-For is ignored unless TRUST_PROXY trusts the hop
// it came from; IPv6 clients are counted per /64; IPv4-mapped IPv6 counts as the IPv4 address.
import t from 'tap'
import { tinyApp, login, PASSWORD } from './helpers.ts'
import { build } from '../helpers/build.ts'

const spoofed = (i: number): string => `10.${i}.${i}.${i}`

t.test('without trustProxy a rotating X-Forwarded-For does not reset the limit', async (t) => {
  const { app } = await tinyApp(t)
  for (let i = 0; i < 10; i++) {
    const res = await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '198.51.100.50', headers: { 'x-forwarded-for': spoofed(i) } })
    t.equal(res.statusCode, 200)
  }
  const res = await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '198.51.100.50', headers: { 'x-forwarded-for': spoofed(99) } })
  t.equal(res.statusCode, 429, 'still limited on the socket address')
})

t.test('behind a trusted proxy the client address from X-Forwarded-For is used, and spoofed entries before it are not', async (t) => {
  const { app } = await tinyApp(t, { trustProxy: ['127.0.0.1'] })
  // The proxy at 127.0.0.1 appends the address it saw; anything the client sent comes before it.
  for (let i = 0; i < 10; i++) {
    const res = await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': `${spoofed(i)}, 198.51.100.60` } })
    t.equal(res.statusCode, 200)
  }
  const limited = await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': `${spoofed(42)}, 198.51.100.60` } })
  t.equal(limited.statusCode, 429, 'the real client is limited however it spoofs')
  const other = await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '198.51.100.61' } })
  t.equal(other.statusCode, 200, 'another client behind the same proxy has its own budget')
  const direct = await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '198.51.100.62', headers: { 'x-forwarded-for': '198.51.100.61' } })
  t.equal(direct.statusCode, 200)
  for (let i = 0; i < 10; i++) await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '198.51.100.62', headers: { 'x-forwarded-for': spoofed(i) } })
  t.equal((await app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '198.51.100.62', headers: { 'x-forwarded-for': spoofed(7) } })).statusCode, 429,
    'an untrusted peer cannot choose its address with X-Forwarded-For')
})

t.test('IPv6 clients are counted per /64; IPv4-mapped addresses as IPv4', async (t) => {
  const { app } = await tinyApp(t)
  for (let i = 1; i <= 10; i++) t.equal((await login(app, `v6-${i}@example.com`, PASSWORD, `2001:db8:aa:bb::${i.toString(16)}`)).statusCode, 200)
  t.equal((await login(app, 'v6-x@example.com', PASSWORD, '2001:db8:aa:bb:ffff:1:2:3')).statusCode, 429, 'another address of the same /64 is limited')
  t.equal((await login(app, 'v6-y@example.com', PASSWORD, '2001:db8:aa:bc::1')).statusCode, 200, 'the next /64 is not')

  for (let i = 0; i < 10; i++) await login(app, `v4-${i}@example.com`, PASSWORD, i % 2 === 0 ? '203.0.113.77' : '::ffff:203.0.113.77')
  t.equal((await login(app, 'v4-x@example.com', PASSWORD, '::ffff:203.0.113.77')).statusCode, 429, 'IPv4 and IPv4-mapped share one budget')
})

t.test('the app honours TRUST_PROXY', async (t) => {
  t.test('unset: X-Forwarded-For is ignored', async (t) => {
    const { app } = await build(t, { app: { rateLimit: { classes: { default: { max: 3 } } } } })
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/health', headers: { 'x-forwarded-for': spoofed(i) } })).statusCode, 200)
    t.equal((await app.inject({ url: '/health', headers: { 'x-forwarded-for': spoofed(9) } })).statusCode, 429)
  })
  t.test('TRUST_PROXY=127.0.0.1: the client address behind the proxy is used', async (t) => {
    const { app } = await build(t, { env: { TRUST_PROXY: '127.0.0.1' }, app: { rateLimit: { classes: { default: { max: 3 } } } } })
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/health', headers: { 'x-forwarded-for': `${spoofed(i)}, 198.51.100.9` } })).statusCode, 200)
    t.equal((await app.inject({ url: '/health', headers: { 'x-forwarded-for': `${spoofed(9)}, 198.51.100.9` } })).statusCode, 429)
    t.equal((await app.inject({ url: '/health', headers: { 'x-forwarded-for': '198.51.100.10' } })).statusCode, 200)
  })
})
