// Password policy in the spirit of NIST SP 800-63B §3.1.1.2 (rev. 4): a length floor counted in
// Unicode code points after NFKC, a byte ceiling checked before any hashing, a list of common and
// breached passwords, and nothing else: no composition rules, no forced rotation.
import { readFileSync } from 'node:fs'
import { gatehouseError, type GatehouseError } from '../../lib/errors.ts'

export interface PasswordPolicy {
  minLength: number
  maxBytes: number
  /** Lower-cased NFKC forms of refused passwords. */
  common: ReadonlySet<string>
}

/** The comparison form of a password for the common-password list. */
export function commonForm (password: string): string {
  return password.normalize('NFKC').toLowerCase()
}

/** Reads a list of one password per line (blank lines ignored) into its comparison forms. */
export function loadCommonPasswords (file: string, extra: readonly string[] = []): Set<string> {
  const set = new Set<string>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const entry = line.endsWith('\r') ? line.slice(0, -1) : line
    if (entry !== '') set.add(commonForm(entry))
  }
  for (const entry of extra) set.add(commonForm(entry))
  return set
}

/** An ascending or descending run of digits ("123456789", "4321"), a year, or one repeated character. */
export function isPredictableRun (run: string): boolean {
  if (run.length < 2) return false
  if (/^(.)\1+$/s.test(run)) return true
  if (!/^\d+$/.test(run)) return false
  if (/^(19|20)\d\d$/.test(run)) return true
  const step = run.charCodeAt(1) - run.charCodeAt(0)
  if (step !== 1 && step !== -1) return false
  for (let i = 2; i < run.length; i++) if (run.charCodeAt(i) - run.charCodeAt(i - 1) !== step) return false
  return true
}

/**
 * True when `folded` is a listed password with a predictable run added before or after it
 * ("password123456789", "!!!!dragon"): guessers try exactly these first, so they are as common as
 * the word itself. Nothing else is required of a password (no composition rules).
 */
export function isPaddedCommon (folded: string, common: ReadonlySet<string>): boolean {
  const suffix = /^(.{4,}?)(\d+|(.)\3+)$/su.exec(folded)
  if (suffix !== null && common.has(suffix[1]) && isPredictableRun(suffix[2])) return true
  const prefix = /^(\d+|(.)\2+)(.{4,})$/su.exec(folded)
  if (prefix !== null && common.has(prefix[3]) && isPredictableRun(prefix[1])) return true
  return false
}

export function weakPassword (rule: string): GatehouseError {
  return gatehouseError('WEAK_PASSWORD', `The password does not meet the password policy: ${rule}`)
}

/** True when the raw input is too large to be hashed (checked before normalisation and hashing). */
export function exceedsMaxBytes (password: string, maxBytes: number): boolean {
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: skip the byte count for short strings.
  return password.length * 3 > maxBytes && Buffer.byteLength(password, 'utf8') > maxBytes
}

/**
 * Returns the NFKC form of `password` (what gets hashed) or throws WEAK_PASSWORD naming the rule.
 * `context` holds account values the password must not equal (the email address).
 */
export function checkPasswordPolicy (policy: PasswordPolicy, password: unknown, context: { email?: string } = {}): string {
  if (typeof password !== 'string') throw weakPassword('the password must be a string')
  if (exceedsMaxBytes(password, policy.maxBytes)) {
    throw weakPassword(`the password must be at most ${policy.maxBytes} bytes long`)
  }
  const normalized = password.normalize('NFKC')
  if (exceedsMaxBytes(normalized, policy.maxBytes)) {
    throw weakPassword(`the password must be at most ${policy.maxBytes} bytes long`)
  }
  let codePoints = 0
  for (const _ of normalized) codePoints++
  if (codePoints < policy.minLength) {
    throw weakPassword(`the password must be at least ${policy.minLength} characters long`)
  }
  const folded = normalized.toLowerCase()
  if (policy.common.has(folded)) {
    throw weakPassword('the password is on the list of common or breached passwords')
  }
  if (isPaddedCommon(folded, policy.common)) {
    throw weakPassword('the password is a common password with a predictable sequence added')
  }
  if (context.email !== undefined && folded === commonForm(context.email)) {
    throw weakPassword('the password must not be the email address')
  }
  return normalized
}

/** Trimmed, NFKC-normalised, lower-cased: the form emails are stored and compared in. */
export function normalizeEmail (email: string): string {
  return String(email).trim().normalize('NFKC').toLowerCase()
}

/** A deliberately loose shape check (one `@`, something on both sides, no whitespace). */
export function isPlausibleEmail (normalized: string): boolean {
  return normalized.length <= 320 && /^[^\s@]+@[^\s@]+$/u.test(normalized)
}
