// The JWS algorithms (RFC 7518 §3.1) Gatehouse knows: the ones it signs its own access tokens
// with, and the wider sets a trusted external issuer may be configured for.

/** Asymmetric algorithms a trusted issuer's JWKS may sign with. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const
/** Shared-secret algorithms a trusted issuer may be configured for. */
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const
export type AsymmetricAlgorithm = typeof ASYMMETRIC_ALGORITHMS[number]
export type HmacAlgorithm = typeof HMAC_ALGORITHMS[number]
export type Algorithm = AsymmetricAlgorithm | HmacAlgorithm

/** The algorithms of Gatehouse's own signing keys (and so of its access tokens). */
export const SIGNING_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const satisfies readonly AsymmetricAlgorithm[]
export type SigningAlgorithm = typeof SIGNING_ALGORITHMS[number]
export const DEFAULT_SIGNING_ALGORITHM: SigningAlgorithm = 'RS256'

export function isSigningAlgorithm (value: unknown): value is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly unknown[]).includes(value)
}
