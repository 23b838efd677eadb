// Reading the parts of a compact JWS (RFC 7515 §7.1) and its claims, shared by the verifiers of
// Gatehouse's own tokens and of trusted issuers' tokens and by RBAC. Nothing here verifies.

/** A base64url segment decoded as JSON, or undefined when it is not base64url JSON. */
export function parseSegment (segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}

/** A JSON object (not null, not an array). */
export function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Reads a claim by path through own properties of plain objects only (no prototype lookups). */
export function readClaim (claims: unknown, path: readonly string[]): unknown {
  let current: unknown = claims
  for (const part of path) {
    if (!isObject(current) || !Object.hasOwn(current, part)) return undefined
    current = current[part]
  }
  return current
}
