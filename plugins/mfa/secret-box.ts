// AES-256-GCM sealing of TOTP secrets with a key ring kept outside the database: the file
// `mfa-encryption.keys` in AUTH_KEYS_DIR, beside the signing keys, generated on first start
// (mode 0600) like them. The newest key seals; every key in the file opens, so a rotation
// (a new key put first) keeps existing ciphertexts readable; each ciphertext names its key.
//
// Sealed form: `v1.<kid>.<iv>.<ciphertext>.<tag>`, base64url parts, a fresh 96-bit IV each time.
// The associated data binds a ciphertext to its owner (the user id), so a row copied onto another
// user's row does not open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const SECRET_KEYS_FILE = 'mfa-encryption.keys'
const VERSION = 'v1'
const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export class SecretBoxError extends Error {
  override name = 'SecretBoxError'
}

export interface SecretKey {
  kid: string
  createdAt: string
  key: Buffer
}

interface KeyFileEntry { kid: string, createdAt: string, key: string }

export interface SecretBox {
  /** Kid of the key that seals. */
  readonly currentKid: string
  /** Kids of every key that opens. */
  readonly kids: readonly string[]
  seal: (plaintext: string, associatedData: string) => string
  /** Throws SecretBoxError when the ciphertext is malformed, names an unknown key or fails authentication. */
  open: (sealed: string, associatedData: string) => string
  /** The key id a sealed value names (undefined when malformed). */
  kidOf: (sealed: string) => string | undefined
}

function newKey (): SecretKey {
  return { kid: `k${Date.now().toString(36)}${randomBytes(4).toString('hex')}`, createdAt: new Date().toISOString(), key: randomBytes(32) }
}

function serialise (keys: SecretKey[]): string {
  const entries: KeyFileEntry[] = keys.map((k) => ({ kid: k.kid, createdAt: k.createdAt, key: k.key.toString('base64url') }))
  return JSON.stringify({ keys: entries }, null, 2) + '\n'
}

function parse (text: string, file: string): SecretKey[] {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new SecretBoxError(`${file} is not valid JSON`)
  }
  const list = (doc as { keys?: unknown } | null)?.keys
  if (!Array.isArray(list) || list.length === 0) throw new SecretBoxError(`${file} holds no key`)
  const seen = new Set<string>()
  return list.map((entry: Partial<KeyFileEntry>, i) => {
    if (typeof entry?.kid !== 'string' || !KID_PATTERN.test(entry.kid) || seen.has(entry.kid)) throw new SecretBoxError(`${file}: key ${i} has a missing, malformed or repeated kid`)
    seen.add(entry.kid)
    const key = typeof entry.key === 'string' ? Buffer.from(entry.key, 'base64url') : Buffer.alloc(0)
    if (key.length !== 32) throw new SecretBoxError(`${file}: key ${entry.kid} is not 32 bytes`)
    return { kid: entry.kid, createdAt: typeof entry.createdAt === 'string' ? entry.createdAt : '', key }
  })
}

function writeAtomically (path: string, content: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(tmp, content, { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
}

export interface LoadedKeys {
  keys: SecretKey[]
  /** True when the file did not exist and a first key was written. */
  generated: boolean
  /** True when the file is readable by group or others. */
  loose: boolean
}

/** Reads the key file of `dir`; creates it with one key when absent and `generate` is true. */
export function loadSecretKeys (dir: string, generate = true): LoadedKeys {
  const path = join(dir, SECRET_KEYS_FILE)
  let text: string
  let generated = false
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT' || !generate) {
      throw new SecretBoxError(`${path} cannot be read (${(err as { code?: string }).code ?? (err as Error).message})`)
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const content = serialise([newKey()])
    try {
      // Exclusive create: of two instances starting together, one writes and both read its key.
      writeFileSync(path, content, { mode: 0o600, flag: 'wx' })
      generated = true
    } catch (writeErr) {
      if ((writeErr as { code?: string }).code !== 'EEXIST') throw writeErr
    }
    text = readFileSync(path, 'utf8')
  }
  const loose = (statSync(path).mode & 0o077) !== 0
  return { keys: parse(text, path), generated, loose }
}

/** Puts a new key first in the file (it seals from then on); the older keys keep opening. Returns its kid. */
export function rotateSecretKey (dir: string): string {
  const { keys } = loadSecretKeys(dir, true)
  const key = newKey()
  writeAtomically(join(dir, SECRET_KEYS_FILE), serialise([key, ...keys]))
  return key.kid
}

/** Removes the key `kid` from the file (never the sealing key). Ciphertexts under it stop opening. */
export function retireSecretKey (dir: string, kid: string): void {
  const { keys } = loadSecretKeys(dir, false)
  const index = keys.findIndex((k) => k.kid === kid)
  if (index === -1) throw new SecretBoxError(`no key ${kid}`)
  if (index === 0) throw new SecretBoxError(`${kid} is the sealing key: rotate first`)
  writeAtomically(join(dir, SECRET_KEYS_FILE), serialise(keys.filter((k) => k.kid !== kid)))
}

export function createSecretBox (keys: readonly SecretKey[]): SecretBox {
  if (keys.length === 0) throw new SecretBoxError('no key')
  const byKid = new Map(keys.map((k) => [k.kid, k.key]))
  const current = keys[0]

  function kidOf (sealed: string): string | undefined {
    const parts = typeof sealed === 'string' ? sealed.split('.') : []
    return parts.length === 5 && parts[0] === VERSION ? parts[1] : undefined
  }

  return {
    currentKid: current.kid,
    kids: keys.map((k) => k.kid),
    kidOf,
    seal (plaintext, associatedData) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', current.key, iv)
      cipher.setAAD(Buffer.from(associatedData, 'utf8'))
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return [VERSION, current.kid, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
    },
    open (sealed, associatedData) {
      const kid = kidOf(sealed)
      if (kid === undefined) throw new SecretBoxError('malformed ciphertext')
      const key = byKid.get(kid)
      if (key === undefined) throw new SecretBoxError(`the ciphertext was sealed with key ${kid}, which is not in ${SECRET_KEYS_FILE}`)
      const [, , iv, ciphertext, tag] = sealed.split('.')
      const tagBytes = Buffer.from(tag, 'base64url')
      // A full 128-bit tag only: GCM would also accept truncated ones.
      if (tagBytes.length !== 16) throw new SecretBoxError('the ciphertext does not authenticate')
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: 16 })
        decipher.setAAD(Buffer.from(associatedData, 'utf8'))
        decipher.setAuthTag(tagBytes)
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
      } catch {
        throw new SecretBoxError('the ciphertext does not authenticate')
      }
    }
  }
}

/**
 * A box over the key file of `dir` that follows the file: it is re-read when a ciphertext names a
 * key this box does not hold (a rotation made by the CLI or another instance), at most once a
 * second, and before sealing when the file changed (checked at most every 10 s), so that every
 * instance seals with the newest key soon after a rotation.
 */
export function createKeyFileBox (dir: string, initial: readonly SecretKey[]): SecretBox {
  const path = join(dir, SECRET_KEYS_FILE)
  let box = createSecretBox(initial)
  let lastReload = 0
  let lastStat = Date.now()
  let mtime = mtimeOf(path)

  function mtimeOf (file: string): number {
    try {
      return statSync(file).mtimeMs
    } catch {
      return 0
    }
  }

  function reload (): void {
    const now = Date.now()
    if (now - lastReload < 1000) return
    lastReload = now
    try {
      mtime = mtimeOf(path)
      box = createSecretBox(loadSecretKeys(dir, false).keys)
    } catch {
      // Keep the keys in hand: a half-written or removed file must not stop logins.
    }
  }

  return {
    get currentKid () { return box.currentKid },
    get kids () { return box.kids },
    kidOf: (sealed) => box.kidOf(sealed),
    seal (plaintext, associatedData) {
      const now = Date.now()
      if (now - lastStat >= 10_000) {
        lastStat = now
        if (mtimeOf(path) !== mtime) reload()
      }
      return box.seal(plaintext, associatedData)
    },
    open (sealed, associatedData) {
      const kid = box.kidOf(sealed)
      if (kid !== undefined && !box.kids.includes(kid)) reload()
      return box.open(sealed, associatedData)
    }
  }
}
