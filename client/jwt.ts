// Reads the payload of a compact JWS (RFC 7515 §7.1) WITHOUT verifying it: the client only wants
// the `exp` claim to plan its refresh. The server verifies every token; nothing here is trusted
// for authorization.

/** base64url (RFC 4648 §5) to bytes, with atob (global in browsers and Node 16+). */
export function base64UrlDecode (input: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(input)) throw new TypeError('not base64url')
  const base64 = input.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (input.length % 4)) % 4)
  const binary = atob(base64)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/** The JSON payload of a JWT, or null when it is not one. */
export function decodeJwtPayload (token: string): Record<string, unknown> | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  try {
    const payload: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64UrlDecode(parts[1])))
    return payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? payload as Record<string, unknown> : null
  } catch {
    return null
  }
}

/** The `exp` claim (RFC 7519 §4.1.4) in epoch seconds, or undefined. */
export function tokenExp (token: string): number | undefined {
  const exp = decodeJwtPayload(token)?.exp
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined
}
