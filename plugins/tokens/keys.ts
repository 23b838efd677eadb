// The signing key ring: one JSON file per key in AUTH_KEYS_DIR (or a private key PEM a deployment
// drops in). The newest key that is not retired signs; every other non-retired key still verifies,
// so tokens signed before a rotation stay valid until their key is retired.
//
// These are plain functions: the plugin, the CLI (`gatehouse keys ...`) and tests share them.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject, type JsonWebKey } from 'node:crypto'
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../lib/algorithms.ts'

/** The algorithms a key of the ring may have. */
export const KEY_ALGORITHMS: readonly SigningAlgorithm[] = SIGNING_ALGORITHMS
/** RFC 7638 thumbprints are 43 base64url characters; PEM file names are checked with the same pattern. */
export const KID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/
const MIN_RSA_BITS = 2048
/** @default 900 s: the longest access-token lifetime a key must outlive after it stops signing. */
export const DEFAULT_RETIRE_GRACE_SECONDS = 900

export class KeyRingError extends Error {
  override name = 'KeyRingError'
}

/** The public members of a signing key, as served at /.well-known/jwks.json. */
export interface PublicJwk {
  kty: string
  kid: string
  alg: SigningAlgorithm
  use: 'sig'
  n?: string
  e?: string
  crv?: string
  x?: string
  y?: string
}

export interface SigningKey {
  kid: string
  alg: SigningAlgorithm
  /** Epoch milliseconds. */
  createdAt: number
  /** Epoch milliseconds; a retired key neither signs nor verifies. */
  retiredAt?: number
  /** File the key was read from (its name inside the folder). */
  file: string
  privateKey: KeyObject
  publicKey: KeyObject
  /** PEM encodings, the form fast-jwt takes. */
  privatePem: string
  publicPem: string
  publicJwk: PublicJwk
}

export interface KeyRing {
  dir: string
  /** Non-retired keys, newest first; the first one signs. */
  active: SigningKey[]
  retired: SigningKey[]
  /** Files that could not be read as keys, with the reason (never the key material). */
  rejected: Array<{ file: string, reason: string }>
}

export interface KeyInfo {
  kid: string
  alg: SigningAlgorithm
  createdAt: string
  retiredAt?: string
  status: 'signing' | 'verifying' | 'retired'
  file: string
}

/** The JSON document of one key file. */
interface KeyFile {
  kid: string
  alg: SigningAlgorithm
  createdAt: string
  retiredAt?: string
  privateJwk: JsonWebKey
}

function base64url (buffer: Buffer): string {
  return buffer.toString('base64url')
}

/** RFC 7638 §3: SHA-256 over the required members, in lexicographic order, no whitespace. */
export function jwkThumbprint (jwk: JsonWebKey): string {
  let members: Record<string, unknown>
  if (jwk.kty === 'RSA') members = { e: jwk.e, kty: 'RSA', n: jwk.n }
  else if (jwk.kty === 'EC') members = { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y }
  else if (jwk.kty === 'OKP') members = { crv: jwk.crv, kty: 'OKP', x: jwk.x }
  else throw new KeyRingError(`unsupported key type ${String(jwk.kty)}`)
  return base64url(createHash('sha256').update(JSON.stringify(members)).digest())
}

/** The algorithm a key object can sign with, or an error for keys Gatehouse refuses. */
function algorithmOf (key: KeyObject): SigningAlgorithm {
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails ?? {}
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new KeyRingError(`RSA keys must have at least ${MIN_RSA_BITS} bits`)
    return 'RS256'
  }
  if (type === 'ec') {
    if (details.namedCurve !== 'prime256v1') throw new KeyRingError(`EC keys must use P-256 (got ${String(details.namedCurve)})`)
    return 'ES256'
  }
  if (type === 'ed25519') return 'EdDSA'
  throw new KeyRingError(`unsupported key type ${String(type)} (use RSA >= 2048, EC P-256 or Ed25519)`)
}

function toSigningKey (privateKey: KeyObject, file: string, alg: SigningAlgorithm | undefined, createdAt: number, retiredAt: number | undefined, expectedKid?: string): SigningKey {
  if (privateKey.type !== 'private') throw new KeyRingError('not a private key')
  const actual = algorithmOf(privateKey)
  if (alg !== undefined && alg !== actual) throw new KeyRingError(`alg ${alg} does not match the key type (${actual})`)
  const publicKey = createPublicKey(privateKey)
  const jwk = publicKey.export({ format: 'jwk' })
  const kid = jwkThumbprint(jwk)
  if (expectedKid !== undefined && expectedKid !== kid) throw new KeyRingError('kid is not the RFC 7638 thumbprint of the key')
  const publicJwk: PublicJwk = { kty: jwk.kty as string, kid, alg: actual, use: 'sig' }
  if (jwk.kty === 'RSA') {
    publicJwk.n = jwk.n
    publicJwk.e = jwk.e
  } else {
    publicJwk.crv = jwk.crv
    publicJwk.x = jwk.x
    if (jwk.kty === 'EC') publicJwk.y = jwk.y
  }
  return {
    kid,
    alg: actual,
    createdAt,
    retiredAt,
    file,
    privateKey,
    publicKey,
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicJwk
  }
}

function parseTime (value: unknown, field: string): number {
  const time = typeof value === 'string' ? Date.parse(value) : NaN
  if (!Number.isFinite(time)) throw new KeyRingError(`${field} is not an ISO date`)
  return time
}

function readKeyFile (dir: string, file: string): SigningKey {
  const path = join(dir, file)
  if (file.endsWith('.pem')) {
    // A private key PEM provided by the deployment: its age is the file's modification time.
    const key = createPrivateKey(readFileSync(path))
    return toSigningKey(key, file, undefined, statSync(path).mtimeMs, undefined)
  }
  let doc: KeyFile
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    throw new KeyRingError('not valid JSON')
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new KeyRingError('not a JSON object')
  if (!KEY_ALGORITHMS.includes(doc.alg)) throw new KeyRingError(`alg must be one of ${KEY_ALGORITHMS.join(', ')}`)
  if (typeof doc.kid !== 'string' || !KID_PATTERN.test(doc.kid)) throw new KeyRingError('kid is missing or malformed')
  if (doc.privateJwk === null || typeof doc.privateJwk !== 'object' || typeof doc.privateJwk.d !== 'string') {
    throw new KeyRingError('privateJwk must be a private JWK')
  }
  let key: KeyObject
  try {
    key = createPrivateKey({ key: doc.privateJwk, format: 'jwk' })
  } catch {
    throw new KeyRingError('privateJwk is not a usable private key')
  }
  const createdAt = parseTime(doc.createdAt, 'createdAt')
  const retiredAt = doc.retiredAt === undefined || doc.retiredAt === null ? undefined : parseTime(doc.retiredAt, 'retiredAt')
  return toSigningKey(key, file, doc.alg, createdAt, retiredAt, doc.kid)
}

function isKeyFileName (name: string): boolean {
  return !name.startsWith('.') && (name.endsWith('.json') || name.endsWith('.pem'))
}

/** Newest first; ties broken by kid so every instance picks the same signing key. */
function byAge (a: SigningKey, b: SigningKey): number {
  return b.createdAt - a.createdAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0)
}

/**
 * Reads every key file of `dir`. Unreadable files are reported in `rejected` (and never used);
 * the same key present twice counts once.
 */
export function loadKeyRing (dir: string): KeyRing {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = []
    else throw new KeyRingError(`cannot read the keys folder ${dir}: ${(err as Error).message}`)
  }
  const byKid = new Map<string, SigningKey>()
  const rejected: KeyRing['rejected'] = []
  for (const file of names.filter(isKeyFileName).sort()) {
    try {
      const key = readKeyFile(dir, file)
      const seen = byKid.get(key.kid)
      // A retirement recorded in any copy wins.
      if (seen === undefined || (key.retiredAt !== undefined && seen.retiredAt === undefined)) byKid.set(key.kid, key)
    } catch (err) {
      rejected.push({ file, reason: err instanceof KeyRingError ? err.message : 'unreadable key file' })
    }
  }
  const keys = [...byKid.values()].sort(byAge)
  return {
    dir,
    active: keys.filter((k) => k.retiredAt === undefined),
    retired: keys.filter((k) => k.retiredAt !== undefined),
    rejected
  }
}

function generatePrivateKey (alg: SigningAlgorithm): KeyObject {
  if (alg === 'RS256') return generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS, publicExponent: 0x10001 }).privateKey
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519').privateKey
  throw new KeyRingError(`unknown algorithm ${String(alg)}: use one of ${KEY_ALGORITHMS.join(', ')}`)
}

function ensureDir (dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
}

/** Writes a key file atomically with mode 0600 (write a temporary file, then rename). */
function writeKeyFile (dir: string, file: string, doc: KeyFile): void {
  const tmp = join(dir, `.${file}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    chmodSync(tmp, 0o600)
    renameSync(tmp, join(dir, file))
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

function keyFileOf (key: SigningKey): KeyFile {
  const doc: KeyFile = {
    kid: key.kid,
    alg: key.alg,
    createdAt: new Date(key.createdAt).toISOString(),
    privateJwk: key.privateKey.export({ format: 'jwk' })
  }
  if (key.retiredAt !== undefined) doc.retiredAt = new Date(key.retiredAt).toISOString()
  return doc
}

/**
 * Generates a new key of `alg` in `dir`; from the next (re)load on it is the signing key.
 * Returns its public description.
 */
export function rotateKey (dir: string, alg: SigningAlgorithm = 'RS256'): KeyInfo {
  ensureDir(dir)
  // A key created in the same millisecond as the newest one must still sort as newer.
  const newest = loadKeyRing(dir).active[0]
  const createdAt = Math.max(Date.now(), newest === undefined ? 0 : newest.createdAt + 1)
  const key = toSigningKey(generatePrivateKey(alg), '', alg, createdAt, undefined)
  key.file = `${key.kid}.json`
  writeKeyFile(dir, key.file, keyFileOf(key))
  return describe(key, 'signing')
}

export interface RetireOptions {
  /** Retire even the signing key, or a key whose tokens may still be valid. @default false */
  force?: boolean
  /** Seconds a key must have stopped signing before it may be retired (the longest access-token lifetime). @default 900 */
  graceSeconds?: number
  now?: number
}

/**
 * Marks key `kid` retired: it leaves the JWKS and its tokens stop verifying. Refuses (unless
 * `force`) the current signing key, and a key that stopped signing less than `graceSeconds` ago
 * (tokens it signed may still be in use).
 */
export function retireKey (dir: string, kid: string, options: RetireOptions = {}): KeyInfo {
  if (!KID_PATTERN.test(kid)) throw new KeyRingError('malformed kid')
  const ring = loadKeyRing(dir)
  const key = ring.active.find((k) => k.kid === kid)
  if (key === undefined) {
    if (ring.retired.some((k) => k.kid === kid)) throw new KeyRingError(`key ${kid} is already retired`)
    throw new KeyRingError(`no key ${kid} in ${dir}`)
  }
  if (key.file.endsWith('.pem')) throw new KeyRingError(`key ${kid} comes from ${key.file}: remove that file to retire it`)
  const now = options.now ?? Date.now()
  const grace = (options.graceSeconds ?? DEFAULT_RETIRE_GRACE_SECONDS) * 1000
  const index = ring.active.indexOf(key)
  if (options.force !== true) {
    if (index === 0) throw new KeyRingError(`key ${kid} is the current signing key: rotate first (or use --force)`)
    // It stopped signing when the next newer key was created.
    const stoppedSigningAt = ring.active[index - 1].createdAt
    if (now - stoppedSigningAt < grace) {
      const wait = Math.ceil((grace - (now - stoppedSigningAt)) / 1000)
      throw new KeyRingError(`key ${kid} stopped signing less than ${grace / 1000} s ago; tokens it signed may still be valid (retry in ${wait} s, or use --force)`)
    }
  }
  key.retiredAt = now
  writeKeyFile(dir, key.file, keyFileOf(key))
  return describe(key, 'retired')
}

function describe (key: SigningKey, status: KeyInfo['status']): KeyInfo {
  const info: KeyInfo = { kid: key.kid, alg: key.alg, createdAt: new Date(key.createdAt).toISOString(), status, file: key.file }
  if (key.retiredAt !== undefined) info.retiredAt = new Date(key.retiredAt).toISOString()
  return info
}

/** Every key of `dir` with its status, newest first (never any key material). */
export function listKeys (dir: string): KeyInfo[] {
  const ring = loadKeyRing(dir)
  return [
    ...ring.active.map((k, i) => describe(k, i === 0 ? 'signing' : 'verifying')),
    ...ring.retired.map((k) => describe(k, 'retired'))
  ]
}

/** True when a key file in `dir` can be read by group or others (POSIX only). */
export function looseKeyFiles (dir: string): string[] {
  if (process.platform === 'win32') return []
  const loose: string[] = []
  for (const name of readdirSync(dir).filter(isKeyFileName)) {
    if ((statSync(join(dir, name)).mode & 0o077) !== 0) loose.push(name)
  }
  return loose
}
