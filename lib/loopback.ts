// Loopback hosts: the only ones a plain http: URL may name wherever tokens, keys or the issuer
// travel (key sources, AUTH_ISSUER). client/options.ts applies the same rule in its own copy,
// because client/ compiles alone for the browser; test/client/units.test.ts keeps them equal.

/** localhost, 127.0.0.0/8 and ::1 (as URL.hostname spells them): traffic that never leaves the machine. */
export function isLoopbackHost (hostname: string): boolean {
  const host = hostname.toLowerCase()
  if (host === 'localhost' || host === '[::1]' || host === '::1') return true
  const parts = host.split('.')
  return parts.length === 4 && parts[0] === '127' && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)
}
