// Counter keys. The client address is `request.ip`, which Fastify derives from the socket
// unless `trustProxy` (TRUST_PROXY) names the proxies whose X-Forwarded-For may be believed.
// An IPv6 host usually owns a whole /64 (RFC 4291 §2.5.4, RFC 6177), so counting per address
// would let one client rotate through 2^64 of them: IPv6 is counted per network prefix.
import { createHash } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import { parseRefreshToken } from '../../lib/refresh-token.ts'

/** Expands an IPv6 address to its 8 16-bit groups, or null when it is not one. */
export function ipv6Groups (address: string): number[] | null {
  if (!isIPv6(address)) return null
  let text = address
  const groups: number[] = []
  // RFC 4291 §2.2 (3): the last 32 bits may be written as dotted IPv4.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  let tail: number[] = []
  if (dotted !== null) {
    const octets = dotted[1].split('.').map(Number)
    tail = [(octets[0] << 8) | octets[1], (octets[2] << 8) | octets[3]]
    text = text.slice(0, -dotted[1].length)
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1)
  }
  const [head, rest] = text.split('::') as [string, string | undefined]
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map((h) => parseInt(h, 16))
  const left = parse(head)
  const right = rest === undefined ? [] : parse(rest)
  const missing = 8 - left.length - right.length - tail.length
  groups.push(...left)
  if (rest !== undefined) for (let i = 0; i < missing; i++) groups.push(0)
  groups.push(...right, ...tail)
  return groups.length === 8 ? groups : null
}

/**
 * The rate-limit identity of a client address: IPv4 as is (also when written IPv4-mapped,
 * `::ffff:a.b.c.d`), IPv6 reduced to its `subnet`-bit prefix, e.g. `2001:db8:1:2::/64`.
 */
export function clientAddressKey (ip: string, subnet = 64): string {
  const address = ip.replace(/%.*$/, '').replace(/^\[|\]$/g, '')
  if (isIPv4(address)) return address
  const groups = ipv6Groups(address)
  // Not an address (only possible through a trusted proxy's header): bounded key length.
  if (groups === null) return ip.length <= 64 ? ip : `sha256:${createHash('sha256').update(ip).digest('hex')}`
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`
  }
  const masked = groups.map((group, i) => {
    const bits = Math.min(16, Math.max(0, subnet - i * 16))
    return bits === 0 ? 0 : group & (0xffff << (16 - bits)) & 0xffff
  })
  const kept = Math.ceil(subnet / 16)
  const shown = masked.slice(0, kept).map((g) => g.toString(16)).join(':')
  return kept >= 8 ? `${shown}/${subnet}` : `${shown}::/${subnet}`
}

/** The family id of a well-formed refresh token, or null. Never returns any part of the secret. */
export function refreshFamilyId (token: unknown): string | null {
  return parseRefreshToken(token)?.familyId ?? null
}
