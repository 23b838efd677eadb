// Prisma and its drivers, ioredis and @node-rs/argon2 are optional peer dependencies: an app
// installs the ones its plugins use. They are loaded when a plugin needs them, never at import,
// so that a plugin which needs none of them (trusted-issuers, authenticate, rbac) loads none, and
// a missing one stops the registration with a message that says what to install.
import { createRequire } from 'node:module'
import { StartupError } from './startup-error.ts'

const require = createRequire(import.meta.url)

/** A StartupError with the code PEER_MISSING; `peer` names the package to install. */
export class MissingPeerError extends StartupError {
  override name = 'MissingPeerError'
  readonly peer: string

  constructor (peer: string, neededBy: string, options?: { cause?: unknown }) {
    super('PEER_MISSING', `${neededBy} needs the package ${peer}, which is not installed: run \`npm install ${peer}\` in the app`, options)
    this.peer = peer
  }
}

function isMissing (err: unknown, name: string): boolean {
  const { code, message } = err as { code?: unknown, message?: unknown }
  // A loader hook (tsx) may rethrow the resolver's error without its code: the wording tells then.
  if (typeof message !== 'string') return false
  if (code === undefined ? !/^Cannot find (?:package|module) /.test(message) : code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false
  // The module that could not be found is the first quoted name of the message: the package itself
  // ('pg', 'pg/lib/x') or a file inside it (.../node_modules/pg/...). A module missing inside the
  // package, or a longer name that merely starts with it, is something else.
  const missing = /['"]([^'"]+)['"]/.exec(message)?.[1]
  if (missing === undefined) return false
  return missing === name || missing.startsWith(`${name}/`) || missing.includes(`/node_modules/${name}/`)
}

/** `require(name)` of a CommonJS peer, or a MissingPeerError naming `neededBy`. */
export function requirePeer<T> (name: string, neededBy: string): T {
  try {
    return require(name) as T
  } catch (err) {
    if (isMissing(err, name)) throw new MissingPeerError(name, neededBy, { cause: err })
    throw err
  }
}

/** `import()` of a module that needs the peer `name`; a missing peer becomes a MissingPeerError. */
export async function importPeer<T> (name: string, neededBy: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (err) {
    if (isMissing(err, name)) throw new MissingPeerError(name, neededBy, { cause: err })
    throw err
  }
}
