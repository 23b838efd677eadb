// TOTP (RFC 6238) through otpauth: 6 digits, 30-second steps, HMAC-SHA-1 (what every
// authenticator app reads from an otpauth:// URI), and a check that reports the time step a code
// belongs to, so the caller can refuse a step already used (RFC 6238 §5.2).
import { Secret, TOTP } from 'otpauth'
import encodeQR from '@paulmillr/qr'

export const TOTP_DIGITS = 6
export const TOTP_PERIOD = 30
export const TOTP_ALGORITHM = 'SHA1'
/** Steps of clock drift accepted on either side of the current one. */
export const TOTP_WINDOW = 1
/** 160 bits, the HMAC-SHA-1 block-size recommendation of RFC 4226 §4. */
const SECRET_BYTES = 20

export function newTotpSecret (): string {
  return new Secret({ size: SECRET_BYTES }).base32
}

function totp (secretBase32: string, issuer = '', label = 'account'): TOTP {
  return new TOTP({ issuer, label, secret: Secret.fromBase32(secretBase32), algorithm: TOTP_ALGORITHM, digits: TOTP_DIGITS, period: TOTP_PERIOD })
}

/** The otpauth:// URI an authenticator app enrols from (issuer and account label). */
export function otpauthUri (secretBase32: string, issuer: string, label: string): string {
  return totp(secretBase32, issuer, label).toString()
}

/** The QR code of `text` as an SVG data URL. */
export function qrCodeDataUrl (text: string): string {
  const svg = encodeQR(text, 'svg', { ecc: 'medium' })
  return `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}`
}

/** The time step of `timestampMs`. */
export function totpStep (timestampMs: number): number {
  return TOTP.counter({ period: TOTP_PERIOD, timestamp: timestampMs })
}

/** The code of `secret` at `timestampMs` (tests, tools). */
export function totpCode (secretBase32: string, timestampMs: number): string {
  return totp(secretBase32).generate({ timestamp: timestampMs })
}

/** The step `code` belongs to, within ±TOTP_WINDOW of `timestampMs`; null when it matches none. */
export function matchTotp (secretBase32: string, code: string, timestampMs: number): number | null {
  if (typeof code !== 'string' || !/^\d{6}$/.test(code)) return null
  const delta = totp(secretBase32).validate({ token: code, timestamp: timestampMs, window: TOTP_WINDOW })
  return delta === null ? null : totpStep(timestampMs) + delta
}
