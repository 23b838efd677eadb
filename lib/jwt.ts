// Reading the parts of a compact JWS (RFC 7515 §7.1) and its claims, shared by the verifiers of
// Gatehouse's own tokens and of trusted issuers' tokens, authenticate and RBAC. Nothing here
// verifies a signature.
import { bearerError, type GatehouseError } from './errors.ts'

/** RFC 8725 §3: bound the work an unauthenticated token can cause. */
export const MAX_TOKEN_LENGTH = 8 * 1024
/**
 * Three base64url segments (RFC 7515 §7.1); JWE (5 segments) fails here. An empty signature passes
 * the shape check so that it is reported as what it is (INVALID_SIGNATURE) by the verifier.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

function invalid (message: string): GatehouseError {
  return bearerError('INVALID_TOKEN', message)
}

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

/** Size and shape (RFC 7515 §7.1) of a compact JWS. Throws INVALID_TOKEN. */
export function checkShape (token: string): void {
  if (token.length > MAX_TOKEN_LENGTH) throw invalid('The token is too large')
  if (!COMPACT_JWS.test(token)) throw invalid('The token is not a compact JWS')
}

/** Reads `iss` of a token's payload without verifying anything (to route it to its verifier). */
export function peekIssuer (token: string): unknown {
  checkShape(token)
  const dot1 = token.indexOf('.')
  const payload = parseSegment(token.slice(dot1 + 1, token.indexOf('.', dot1 + 1)))
  if (!isObject(payload)) throw invalid('The token payload is not a JSON object')
  return payload.iss
}
