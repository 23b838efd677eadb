// Password policy in the spirit of NIST SP 800-63B §3.1.1.2 (rev. 4): a length floor counted in
// Unicode code points after NFKC, a byte ceiling checked before any hashing, a list of common and
// breached passwords, and nothing else: no composition rules, no forced rotation.
import { domainToASCII } from 'node:url'
import { hasUnsafeCharacter } from '../../lib/input.ts'
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

/**
 * The form emails are stored and compared in: trimmed, NFKC-normalised, the local part lower-cased,
 * the domain in its UTS #46 ASCII form (IDNA: `Bücher.example` and `xn--bcher-kva.example` are one
 * domain) without a trailing dot. A domain that IDNA refuses is kept lower-cased (and then fails
 * isPlausibleEmail at registration).
 */
export function normalizeEmail (email: string): string {
  const text = String(email).trim().normalize('NFKC')
  const at = text.lastIndexOf('@')
  if (at <= 0 || at === text.length - 1) return text.toLowerCase()
  const local = text.slice(0, at).toLowerCase()
  const domain = text.slice(at + 1).toLowerCase().replace(/\.$/, '')
  const ascii = domain === '' || hasUnsafeCharacter(domain) ? '' : domainToASCII(domain)
  return `${local}@${ascii === '' ? domain : ascii}`
}

// Characters an address never needs and a lookalike uses: controls, format characters (zero-width
// space and joiners, bidi controls, soft hyphen), private-use and unassigned code points, and
// NUL or unpaired surrogates.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\s]/u

// Scripts told apart in a local part. Letters of any other script count as one script of their own.
const SCRIPTS: ReadonlyArray<readonly [string, RegExp]> = [
  ['Latin', /\p{Script=Latin}/u], ['Cyrillic', /\p{Script=Cyrillic}/u], ['Greek', /\p{Script=Greek}/u],
  ['Armenian', /\p{Script=Armenian}/u], ['Georgian', /\p{Script=Georgian}/u], ['Hebrew', /\p{Script=Hebrew}/u],
  ['Arabic', /\p{Script=Arabic}/u], ['Devanagari', /\p{Script=Devanagari}/u], ['Thai', /\p{Script=Thai}/u],
  ['Han', /\p{Script=Han}/u], ['Hiragana', /\p{Script=Hiragana}/u], ['Katakana', /\p{Script=Katakana}/u],
  ['Hangul', /\p{Script=Hangul}/u]
]
// Scripts that may be written together: UTS #39's "highly restrictive" level, Latin with Japanese
// (Han, Hiragana, Katakana) or with Korean (Han, Hangul). Latin with Cyrillic or Greek never.
const TOGETHER: ReadonlyArray<ReadonlySet<string>> = [new Set(['Latin', 'Han', 'Hiragana', 'Katakana']), new Set(['Latin', 'Han', 'Hangul'])]

/** The scripts of the letters in `text` (digits, punctuation and symbols belong to none). */
export function scriptsOf (text: string): Set<string> {
  const found = new Set<string>()
  for (const char of text) {
    if (!/\p{L}/u.test(char)) continue
    found.add(SCRIPTS.find(([, re]) => re.test(char))?.[0] ?? 'Other')
  }
  return found
}

/** True when the letters of `local` come from scripts that are not written together (`pаypal`, Latin with a Cyrillic а). */
export function isMixedScript (local: string): boolean {
  const scripts = scriptsOf(local)
  if (scripts.size <= 1) return false
  return !TOGETHER.some((group) => [...scripts].every((s) => group.has(s)))
}

/**
 * A deliberately loose shape check (one `@`, something on both sides) that refuses what only a
 * lookalike needs: invisible or format characters anywhere, a domain IDNA cannot encode, and a
 * local part that mixes scripts. Whole-script lookalikes (an all-Cyrillic local part) are distinct
 * addresses and stay distinct accounts, as mail providers treat them.
 */
export function isPlausibleEmail (normalized: string): boolean {
  if (normalized.length > 320 || !/^[^@]+@[^@]+$/u.test(normalized) || INVISIBLE.test(normalized) || hasUnsafeCharacter(normalized)) return false
  const at = normalized.lastIndexOf('@')
  const domain = normalized.slice(at + 1)
  if (!/^[a-z0-9.-]+$/.test(domain) || domain.startsWith('.') || domain.includes('..')) return false
  return !isMixedScript(normalized.slice(0, at))
}
