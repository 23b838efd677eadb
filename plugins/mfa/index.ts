// gatehouse-mfa: second factors (TOTP with recovery codes, passkeys) as `fastify.mfa`, and
// `fastify.passkeys` when WebAuthn is configured. See docs/mfa.md.
//
// The TOTP secrets are sealed with a key file in `keysDir` (AUTH_KEYS_DIR), created on first
// start like the signing keys: the database alone never reveals a secret.
import { join } from 'node:path'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Audit } from '../audit/index.ts'
import type { LoginThrottle } from '../rate-limit/index.ts'
import { resolveOptions, type MfaOptions } from './options.ts'
import { createKeyFileBox, loadSecretKeys, SECRET_KEYS_FILE } from './secret-box.ts'
import { createMfaService, type MfaService } from './service.ts'
import { createPasskeys, type Passkeys } from './passkeys.ts'

declare module 'fastify' {
  interface FastifyInstance {
    mfa: MfaService
    /** Null when WebAuthn is not configured. */
    passkeys: Passkeys | null
  }
}

async function mfaPlugin (fastify: FastifyInstance, input: MfaOptions): Promise<void> {
  const options = resolveOptions(input)
  const loaded = loadSecretKeys(options.keysDir, options.generateKey)
  const file = join(options.keysDir, SECRET_KEYS_FILE)
  if (loaded.generated) {
    fastify.log.warn({ file },
      `${file} did not exist, so a new key that seals TOTP secrets was generated there with mode 0600. ` +
      'Keep it with the signing keys (a secret store mounted into every instance): without it no TOTP secret in the database can be opened. ' +
      'Rotate with `gatehouse mfa rotate-key`; see docs/mfa.md.')
  }
  if (loaded.loose) fastify.log.warn({ file }, 'AUTH_KEYS_DIR: the TOTP sealing key file is readable by group or others; restrict it to mode 0600')
  const audit = fastify.hasDecorator('audit') ? fastify.getDecorator<Audit>('audit') : null
  const mfa = createMfaService({
    prisma: fastify.store.prisma,
    box: createKeyFileBox(options.keysDir, loaded.keys),
    audit,
    loginThrottle: () => fastify.hasDecorator('loginThrottle') ? fastify.getDecorator<LoginThrottle>('loginThrottle') : null,
    log: fastify.log,
    options
  })
  let passkeys: Passkeys | null = null
  if (options.webauthn !== null) {
    passkeys = createPasskeys({ prisma: fastify.store.prisma, audit, log: fastify.log, webauthn: options.webauthn, challengeTtl: options.challengeTtl, clock: options.clock })
    mfa.usePasskeys(passkeys.factor)
  }
  fastify.decorate('mfa', mfa)
  fastify.decorate('passkeys', passkeys)
}

export const mfa = fp(mfaPlugin, { name: 'gatehouse-mfa', fastify: '5.x', dependencies: ['gatehouse-store'] })
export default mfa
export { resolveOptions, checkWebAuthn, MfaOptionsError } from './options.ts'
export type { MfaOptions, WebAuthnOptions } from './options.ts'
export type { MfaService, MfaStatus, MfaMethod, MfaChallenge, CompletedLogin, SensitiveAction, StepUpProof, StepUpCheck } from './service.ts'
export type { Passkeys, PasskeyInfo } from './passkeys.ts'
export { rotateSecretKey, retireSecretKey, loadSecretKeys, createKeyFileBox, SECRET_KEYS_FILE } from './secret-box.ts'
export type { SecretBox } from './secret-box.ts'
