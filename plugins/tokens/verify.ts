// Signature and claim checks of Gatehouse access tokens, with node:crypto, as plain functions.
//
// fast-jwt signs our tokens, but verification is done here (docs/tokens.md, "Why verification
// does not go through fast-jwt"; the signature itself in lib/signature.ts): fast-jwt checks a signature synchronously on the JavaScript
// thread, while `crypto.verify` with a callback runs it on libuv's thread pool, so a server with
// more than one core checks signatures in parallel with its HTTP work (what jose does through
// WebCrypto). The rules are fast-jwt's, in its order, and are tested against the same attack
// corpus: the signature with the one key the kid names, pinned to that key's algorithm, then the
// required claims, nbf, exp, iat + maxAge (with the clock tolerance), iss, aud, then our own
// claim rules (checkClaimTypes).
import type { KeyObject } from 'node:crypto'
import { bearerError, type GatehouseError } from '../../lib/errors.ts'
import type { SigningAlgorithm } from '../../lib/algorithms.ts'
import { isObject, parseSegment } from '../../lib/jwt.ts'
import { checkSignature, checkSignatureSync, signatureScheme } from '../../lib/signature.ts'
import { checkClaimTypes, CLOCK_TOLERANCE_SECONDS, type AccessTokenClaims, type VerifierSettings } from './jwt.ts'

const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'roles', 'ver'] as const

/** A compact JWS split once: the payload, and where the signature starts (the last dot). */
interface Split {
  payload: Record<string, unknown>
  dot: number
}

function invalid (message: string): GatehouseError {
  return bearerError('INVALID_TOKEN', message)
}

/** Payload as a JSON object, and the last dot; the shape was checked by checkShape. */
function split (token: string): Split {
  const dot1 = token.indexOf('.')
  const dot2 = token.indexOf('.', dot1 + 1)
  const payload = parseSegment(token.slice(dot1 + 1, dot2))
  if (!isObject(payload)) throw invalid('The token payload is not a JSON object')
  if (dot2 === token.length - 1) throw bearerError('INVALID_SIGNATURE')
  return { payload, dot: dot2 }
}

const WRONG_TYPE = 'A token claim has the wrong type'
const NOT_ACCEPTED = 'A token claim has a value that is not accepted'

/** A NumericDate claim (RFC 7519 §2) in milliseconds; an array or another type is refused. */
function dateOf (value: unknown): number {
  if (Array.isArray(value)) throw invalid(NOT_ACCEPTED)
  if (typeof value !== 'number' || Number.isNaN(value)) throw invalid(WRONG_TYPE)
  return value * 1000
}

export interface ClaimRules {
  issuer: string
  audience: string
  /** Milliseconds of accepted skew for nbf and exp (and iat in the future). */
  toleranceMs: number
  /** Milliseconds a token is accepted after its iat. */
  maxAgeMs: number
}

export function claimRules (settings: VerifierSettings): ClaimRules {
  return {
    issuer: settings.issuer,
    audience: settings.audience,
    toleranceMs: (settings.clockTolerance ?? CLOCK_TOLERANCE_SECONDS) * 1000,
    maxAgeMs: settings.accessTokenTtl * 1000
  }
}

/**
 * Every claim rule, for a payload whose signature holds. `now` in epoch milliseconds.
 * Throws the CONTRACT §4 error.
 */
export function checkClaims (payload: Record<string, unknown>, now: number, rules: ClaimRules): AccessTokenClaims {
  for (const claim of REQUIRED_CLAIMS) if (!(claim in payload)) throw bearerError('MISSING_CLAIM', `The token lacks the ${claim} claim`)
  if ('nbf' in payload && now < dateOf(payload.nbf) - rules.toleranceMs) throw bearerError('TOKEN_NOT_YET_VALID')
  if (now > dateOf(payload.exp) + rules.toleranceMs) throw bearerError('TOKEN_EXPIRED')
  // maxAge counts from iat without the tolerance (as fast-jwt's maxAge does).
  if (now > dateOf(payload.iat) + rules.maxAgeMs) throw bearerError('TOKEN_EXPIRED')
  // Anything but our exact issuer string (another string, an array that contains it: CVE-2025-30144).
  if (payload.iss !== rules.issuer) {
    if (typeof payload.iss === 'string' || Array.isArray(payload.iss)) throw bearerError('UNTRUSTED_ISSUER')
    throw invalid(WRONG_TYPE)
  }
  const aud = payload.aud
  const audiences = Array.isArray(aud) ? aud : [aud]
  for (const value of audiences) if (typeof value !== 'string') throw invalid(WRONG_TYPE)
  if (!audiences.includes(rules.audience)) throw invalid(NOT_ACCEPTED)
  checkClaimTypes(payload, now, rules.toleranceMs)
  return payload as AccessTokenClaims
}

export interface KeyVerifier {
  /** Signature and claims on the JavaScript thread. */
  verifySync: (token: string) => AccessTokenClaims
  /** Signature on libuv's thread pool, then the claims. Rejects with the CONTRACT §4 error. */
  verifyAsync: (token: string) => Promise<AccessTokenClaims>
}

/**
 * The verifier of one key, pinned to that key's algorithm: the caller has already matched the
 * token's kid and alg to it (parseHeader, then checkHeader once the signature holds).
 */
export function createKeyVerifier (key: { alg: SigningAlgorithm, publicKey: KeyObject }, settings: VerifierSettings): KeyVerifier {
  const rules = claimRules(settings)
  const scheme = signatureScheme(key.alg, key.publicKey)

  function accept (ok: boolean, payload: Record<string, unknown>): AccessTokenClaims {
    if (!ok) throw bearerError('INVALID_SIGNATURE')
    return checkClaims(payload, Date.now(), rules)
  }

  return {
    verifySync (token) {
      const parts = split(token)
      return accept(checkSignatureSync(scheme, token, parts.dot), parts.payload)
    },
    verifyAsync (token) {
      let parts: Split
      try {
        parts = split(token)
      } catch (err) {
        return Promise.reject(err)
      }
      return new Promise((resolve, reject) => {
        checkSignature(scheme, token, parts.dot, (ok) => {
          try {
            resolve(accept(ok, parts.payload))
          } catch (failure) {
            reject(failure)
          }
        })
      })
    }
  }
}
