// Client identities: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 per /64; refresh family ids.
import t from 'tap'
import { clientAddressKey, refreshFamilyId } from '../../plugins/rate-limit/index.ts'
import { newFamilyId, newRefreshToken, parseRefreshToken } from '../../plugins/sessions/refresh-token.ts'
import { ipv6Groups } from '../../plugins/rate-limit/client-key.ts'

t.test('IPv4 and IPv4-mapped IPv6 are the same client', async (t) => {
  t.equal(clientAddressKey('203.0.113.5'), '203.0.113.5')
  t.equal(clientAddressKey('::ffff:203.0.113.5'), '203.0.113.5')
  t.equal(clientAddressKey('::FFFF:203.0.113.5'), '203.0.113.5')
  t.equal(clientAddressKey('::ffff:cb00:7105'), '203.0.113.5', 'mapped, written in hex')
  t.equal(clientAddressKey('0:0:0:0:0:ffff:cb00:7105'), '203.0.113.5')
})

t.test('IPv6 addresses of one /64 share a key; other networks do not', async (t) => {
  const a = clientAddressKey('2001:db8:1:2:3:4:5:6')
  t.equal(a, '2001:db8:1:2::/64')
  t.equal(clientAddressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), a)
  t.equal(clientAddressKey('2001:db8:1:2::1'), a)
  t.equal(clientAddressKey('2001:DB8:1:2::abcd'), a, 'case does not matter')
  t.not(clientAddressKey('2001:db8:1:3::1'), a)
  t.equal(clientAddressKey('::1'), '0:0:0:0::/64')
  t.equal(clientAddressKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'zone ids are dropped')
  t.equal(clientAddressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64', 'embedded IPv4 (NAT64) parses')
  t.equal(clientAddressKey('[2001:db8:1:2::1]'), a, 'brackets are dropped')
})

t.test('the prefix length is configurable', async (t) => {
  t.equal(clientAddressKey('2001:db8:1:2:3:4:5:6', 48), '2001:db8:1::/48')
  t.equal(clientAddressKey('2001:db8:1:2ff:3:4:5:6', 56), '2001:db8:1:200::/56')
  t.equal(clientAddressKey('2001:db8:1:2:3:4:5:6', 128), '2001:db8:1:2:3:4:5:6/128')
  t.equal(clientAddressKey('2001:db8:1:2:3:4:5:6', 0), '::/0')
})

t.test('ipv6Groups expands every notation to 8 groups', async (t) => {
  t.same(ipv6Groups('::'), [0, 0, 0, 0, 0, 0, 0, 0])
  t.same(ipv6Groups('1::'), [1, 0, 0, 0, 0, 0, 0, 0])
  t.same(ipv6Groups('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304])
  t.same(ipv6Groups('1:2:3:4:5:6:7.8.9.10'), [1, 2, 3, 4, 5, 6, 0x0708, 0x090a])
  t.equal(ipv6Groups('1.2.3.4'), null)
  t.equal(ipv6Groups('nonsense'), null)
})

t.test('anything that is no address is used as it is', async (t) => {
  t.equal(clientAddressKey('unix-socket'), 'unix-socket')
  const long = clientAddressKey('x'.repeat(5000))
  t.match(long, /^sha256:[0-9a-f]{64}$/, 'a long non-address is hashed, so keys stay short')
  t.not(long, clientAddressKey('y'.repeat(5000)))
})

t.test('refreshFamilyId takes the family part of a well-formed refresh token only, in the format sessions mints', async (t) => {
  const secret = 'A'.repeat(43)
  const family = '0b0c3f9e-7f2a-4c1e-9d59-2d1f7b3c8a11'
  t.equal(refreshFamilyId(`${family}.${secret}`), family)
  t.equal(refreshFamilyId(`${family}.${'x'.repeat(43)}`), family)
  const minted = newRefreshToken(newFamilyId())
  t.equal(refreshFamilyId(minted), parseRefreshToken(minted)?.familyId, 'the limiter and sessions read the same family id')
  for (const bad of [undefined, null, 42, '', 'abc', `.${secret}`, `fam_1-x.${secret}`, `${family}.${secret}x`, `${family}.${'A'.repeat(42)}`, `${family.toUpperCase()}.${secret}`, `${family}.${secret}.x`, `${'f'.repeat(200)}.${secret}`, { refresh_token: 'x' }]) {
    t.equal(refreshFamilyId(bad), null, `rejects ${JSON.stringify(bad)}`)
  }
})

t.test('property: two IPv6 addresses share a key exactly when their first 64 bits agree, in any notation', async (t) => {
  const fc = await import('fast-check')
  const group = fc.integer({ min: 0, max: 0xffff })
  const address = fc.array(group, { minLength: 8, maxLength: 8 })
    // IPv4-mapped addresses are IPv4 clients by design; leave them out of this property.
    .filter((g) => !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff))
  const full = (g: number[]): string => g.map((x) => x.toString(16).padStart(4, '0')).join(':')
  // Node's URL parser writes the canonical compressed form (RFC 5952).
  const compressed = (g: number[]): string => new URL(`http://[${full(g)}]/`).hostname.slice(1, -1)
  fc.assert(fc.property(address, address, (a, b) => {
    const sameNetwork = a.slice(0, 4).every((x, i) => x === b[i])
    const keyA = clientAddressKey(full(a))
    return keyA === clientAddressKey(compressed(a)) &&
      keyA === clientAddressKey(full(a).toUpperCase()) &&
      (keyA === clientAddressKey(compressed(b))) === sameNetwork &&
      keyA === clientAddressKey(full([...a.slice(0, 4), ...b.slice(4)]))
  }), { numRuns: 2000 })
  t.pass('2000 random pairs held the property')
})
