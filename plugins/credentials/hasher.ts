// argon2id through @node-rs/argon2 with every parameter passed explicitly (its documented
// defaults have drifted from the ones it uses), behind a bounded semaphore.
import { randomBytes } from 'node:crypto'
import type * as Argon2 from '@node-rs/argon2'
import { requirePeer } from '../../lib/peer.ts'
import { createSemaphore, QueueFullError, type Semaphore } from './semaphore.ts'
import { SALT_BYTES, type Argon2Parameters } from './options.ts'

/** @node-rs/argon2's `Algorithm.Argon2id` (a const enum, which erasable TypeScript cannot import). */
const ARGON2ID = 2
/** `Version.V0x13`. */
const VERSION_0x13 = 1

export interface Hasher {
  /** PHC string of argon2id with the configured parameters and a fresh 16-byte salt. */
  hash: (password: string) => Promise<string>
  /** False for a wrong password and for a stored value that is not an argon2 PHC string. */
  verify: (phc: string, password: string) => Promise<boolean>
  /** True when `phc` is not argon2id v1.3 or any of its parameters is below the configured ones. */
  needsRehash: (phc: string) => boolean
  readonly parameters: Readonly<Argon2Parameters>
  readonly semaphore: Semaphore
  /** argon2 operations started (hash + verify), for tests and metrics. */
  readonly operations: number
}

export { QueueFullError }

export function createHasher (parameters: Readonly<Argon2Parameters>, concurrency: number, maxQueue: number): Hasher {
  const { hash: argon2Hash, verify: argon2Verify, parseOptions } = requirePeer<typeof Argon2>('@node-rs/argon2', 'gatehouse-credentials')
  const semaphore = createSemaphore(concurrency, maxQueue)
  let operations = 0

  function hash (password: string): Promise<string> {
    return semaphore.run(() => {
      operations++
      return argon2Hash(password, {
        algorithm: ARGON2ID,
        version: VERSION_0x13,
        memoryCost: parameters.memoryCost,
        timeCost: parameters.timeCost,
        parallelism: parameters.parallelism,
        outputLen: parameters.outputLen,
        salt: randomBytes(SALT_BYTES)
      })
    })
  }

  function verify (phc: string, password: string): Promise<boolean> {
    return semaphore.run(async () => {
      operations++
      try {
        return await argon2Verify(phc, password)
      } catch {
        // Not a PHC string argon2 can decode: it cannot match any password.
        return false
      }
    })
  }

  function needsRehash (phc: string): boolean {
    if (!phc.startsWith('$argon2id$')) return true
    try {
      const p = parseOptions(phc)
      return p.version !== VERSION_0x13 ||
        p.memoryCost < parameters.memoryCost ||
        p.timeCost < parameters.timeCost ||
        p.parallelism < parameters.parallelism ||
        p.outputLen < parameters.outputLen ||
        p.saltLen < SALT_BYTES
    } catch {
      return true
    }
  }

  return {
    hash,
    verify,
    needsRehash,
    parameters,
    semaphore,
    get operations () { return operations }
  }
}
