// The plugins' options of the standalone server, from its configuration (CONTRACT §2). The
// plugins themselves know nothing of environment variables.
import type { GatehouseConfig } from './config.ts'
import type { TokensOptions } from '../plugins/tokens/index.ts'
import type { SessionsOptions } from '../plugins/sessions/index.ts'
import type { MfaOptions } from '../plugins/mfa/index.ts'

export function tokensOptionsFromConfig (config: Pick<GatehouseConfig, 'issuer' | 'audience' | 'keysDir' | 'signingAlgorithm' | 'accessTokenTtl'>): TokensOptions {
  return {
    issuer: config.issuer,
    audience: config.audience,
    keysDir: config.keysDir,
    signingAlgorithm: config.signingAlgorithm,
    accessTokenTtl: config.accessTokenTtl
  }
}

export function sessionsOptionsFromConfig (config: Pick<GatehouseConfig, 'refreshTokenTtl' | 'refreshTokenMaxTtl' | 'accessTokenTtl' | 'refreshReuseGrace'>): SessionsOptions {
  return {
    refreshTokenTtl: config.refreshTokenTtl,
    refreshTokenMaxTtl: config.refreshTokenMaxTtl,
    accessTokenTtl: config.accessTokenTtl,
    reuseGraceSeconds: config.refreshReuseGrace
  }
}

/** The TOTP sealing key lives with the signing keys; passkeys are off without an RP id. */
export function mfaOptionsFromConfig (config: Pick<GatehouseConfig, 'keysDir' | 'webauthnRpId' | 'webauthnOrigins'>): MfaOptions {
  return {
    keysDir: config.keysDir,
    webauthn: config.webauthnRpId === undefined ? undefined : { rpId: config.webauthnRpId, origins: config.webauthnOrigins }
  }
}
