// The live key ring of gatehouse-tokens: the keys of AUTH_KEYS_DIR with a verifier each, the key
// that signs, the JWKS document, and the reloads that pick up rotations and retirements made
// elsewhere (another instance, `gatehouse keys`): on a timer when the folder changed, on a
// `keys` notice, and on an unknown kid that claims our issuer (at most once a second).
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { SigningAlgorithm } from '../../lib/algorithms.ts'
import { StartupError } from '../../lib/startup-error.ts'
import { loadKeyRing, looseKeyFiles, rotateKey, type KeyRing, type PublicJwk, type SigningKey } from './keys.ts'
import { createKeySigner, type KeySigner, type VerifierSettings } from './jwt.ts'
import { createKeyVerifier, type KeyVerifier } from './verify.ts'

/** The bus channel on which a change of the keys folder is announced (`gatehouse keys`). */
export const KEYS_CHANNEL = 'keys'
/** An unknown kid of our issuer re-reads the keys folder at most this often. */
export const KEY_RELOAD_MIN_INTERVAL_MS = 1000

export interface RingKey {
  key: SigningKey
  verifier: KeyVerifier
  sign?: KeySigner
}

export interface KeyRingLog {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

export interface KeyRingSettings {
  keysDir: string
  signingAlgorithm: SigningAlgorithm
  generateKeys: boolean
  /** Seconds between checks of the folder; 0 = none. */
  keysReloadInterval: number
  verifier: VerifierSettings
}

/** Names, sizes and modification times of the key files: a cheap test for "something changed". */
function folderSignature (dir: string): string {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.json') || n.endsWith('.pem')).sort().map((name) => {
      const stat = statSync(join(dir, name))
      return `${name}:${stat.size}:${stat.mtimeMs}`
    }).join('|')
  } catch {
    return ''
  }
}

function warnGenerated (log: KeyRingLog, dir: string, alg: SigningAlgorithm, kid: string): void {
  log.warn(
    { keysDir: dir, kid, alg },
    `AUTH_KEYS_DIR (${dir}) held no signing key, so a new ${alg} key (kid ${kid}) was generated there with mode 0600. ` +
    'This is for development only: a real deployment provides its own keys (generated once, kept in a secret store, ' +
    'mounted into every instance), because a key generated at start is lost with the container and differs between ' +
    'instances, and then tokens stop verifying after a restart or on another instance. ' +
    'Rotate with `gatehouse keys rotate`; see docs/tokens.md.'
  )
}

/**
 * Opens the ring. Throws StartupError KEYS_MISSING when the folder holds no usable key and none
 * may be generated.
 */
export function openKeyRing (settings: KeyRingSettings, log: KeyRingLog) {
  const dir = settings.keysDir
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  let initial = loadKeyRing(dir)
  if (initial.active.length === 0 && settings.generateKeys) {
    const created = rotateKey(dir, settings.signingAlgorithm)
    warnGenerated(log, dir, created.alg, created.kid)
    initial = loadKeyRing(dir)
  }
  if (initial.active.length === 0) {
    const rejected = initial.rejected.length > 0 ? ` (rejected: ${initial.rejected.map((r) => `${r.file}: ${r.reason}`).join('; ')})` : ''
    throw new StartupError('KEYS_MISSING', `AUTH_KEYS_DIR: ${dir} holds no usable signing key${rejected}`)
  }
  const loose = looseKeyFiles(dir)
  if (loose.length > 0) log.warn({ keysDir: dir, files: loose }, 'AUTH_KEYS_DIR: key files readable by group or others; restrict them to mode 0600')

  let byKid = new Map<string, RingKey>()
  let signing!: RingKey
  let jwksDocument: { keys: PublicJwk[] } = { keys: [] }
  let reloads = 0
  const listeners: Array<(removed: boolean) => void> = []

  function apply (ring: KeyRing): void {
    for (const r of ring.rejected) log.warn({ keysDir: ring.dir, file: r.file, reason: r.reason }, 'AUTH_KEYS_DIR: a key file was ignored')
    if (ring.active.length === 0) {
      log.error({ keysDir: ring.dir }, 'AUTH_KEYS_DIR: no usable key after reload; keeping the current keys')
      return
    }
    const next = new Map<string, RingKey>()
    for (const key of ring.active) next.set(key.kid, byKid.get(key.kid) ?? { key, verifier: createKeyVerifier(key, settings.verifier) })
    let removed = false
    for (const kid of byKid.keys()) if (!next.has(kid)) removed = true
    const previousSigner = byKid.size > 0 ? signing.key.kid : undefined
    byKid = next
    signing = next.get(ring.active[0].kid) as RingKey
    jwksDocument = Object.freeze({ keys: ring.active.map((k) => Object.freeze({ ...k.publicJwk })) }) as { keys: PublicJwk[] }
    for (const listener of listeners) listener(removed)
    if (previousSigner !== undefined && previousSigner !== signing.key.kid) {
      log.info({ kid: signing.key.kid, alg: signing.key.alg }, 'signing key changed')
    }
  }

  apply(initial)
  if (signing.key.alg !== settings.signingAlgorithm) {
    log.warn({ kid: signing.key.kid, alg: signing.key.alg, configured: settings.signingAlgorithm },
      `the signing key is ${signing.key.alg} but AUTH_SIGNING_ALG is ${settings.signingAlgorithm}: run \`gatehouse keys rotate --alg ${settings.signingAlgorithm}\` to switch`)
  }
  log.info({ kid: signing.key.kid, alg: signing.key.alg, verifying: byKid.size }, 'token signing key loaded')

  let lastReload = Date.now()
  let pendingReload: Promise<void> | null = null
  let folderState = folderSignature(dir)

  function reloadNow (): void {
    lastReload = Date.now()
    reloads++
    try {
      folderState = folderSignature(dir)
      apply(loadKeyRing(dir))
    } catch (err) {
      log.error({ keysDir: dir, err: { message: (err as Error).message } }, 'AUTH_KEYS_DIR: reload failed; keeping the current keys')
    }
  }

  /** Re-reads the folder at most once per KEY_RELOAD_MIN_INTERVAL_MS; concurrent callers share one read. */
  function scheduleReload (): Promise<void> {
    if (pendingReload !== null) return pendingReload
    const wait = Math.max(0, lastReload + KEY_RELOAD_MIN_INTERVAL_MS - Date.now())
    pendingReload = new Promise<void>((resolve) => {
      // Not unref'd: a request is waiting on it.
      setTimeout(() => {
        pendingReload = null
        reloadNow()
        resolve()
      }, wait)
    })
    return pendingReload
  }

  let reloadTimer: NodeJS.Timeout | undefined
  if (settings.keysReloadInterval > 0) {
    reloadTimer = setInterval(() => {
      if (Date.now() - lastReload < KEY_RELOAD_MIN_INTERVAL_MS) return
      if (folderSignature(dir) !== folderState) reloadNow()
    }, settings.keysReloadInterval * 1000)
    reloadTimer.unref()
  }

  return {
    /** The ring key of `kid`, if it is one of ours. */
    get: (kid: string): RingKey | undefined => byKid.get(kid),
    /** The key that signs new tokens (the newest that is not retired). */
    signing: (): RingKey => signing,
    /** The signer of a ring key, created on first use. */
    signerOf (ringKey: RingKey): KeySigner {
      ringKey.sign ??= createKeySigner(ringKey.key)
      return ringKey.sign
    },
    jwks: (): { keys: PublicJwk[] } => jwksDocument,
    keys: () => ({
      signing: { kid: signing.key.kid, alg: signing.key.alg },
      active: [...byKid.values()].map(({ key }) => ({ kid: key.kid, alg: key.alg, createdAt: new Date(key.createdAt).toISOString() }))
    }),
    size: (): number => byKid.size,
    reloads: (): number => reloads,
    reloadNow,
    scheduleReload,
    /** Called after every change of the ring; `removed` when a key left it (retired). */
    onChange (listener: (removed: boolean) => void): void {
      listeners.push(listener)
    },
    close (): void {
      if (reloadTimer !== undefined) clearInterval(reloadTimer)
    }
  }
}

export type LiveKeyRing = ReturnType<typeof openKeyRing>
