// The plugins' options of the standalone server, from its configuration (CONTRACT §2). The
// plugins themselves know nothing of environment variables.
import type { GatehouseConfig } from './config.ts'
import type { TokensOptions } from '../plugins/tokens/index.ts'
import type { SessionsOptions } from '../plugins/sessions/index.ts'
import type { MfaOptions } from '../plugins/mfa/index.ts'
import type { BrowserOptions } from '../plugins/browser/index.ts'
import type { MailerOptions } from '../plugins/mailer/index.ts'
import type { AccountsOptions } from '../plugins/accounts/index.ts'
import type { OrgsOptions } from '../plugins/orgs/index.ts'
import type { ProvidersOptions } from '../plugins/providers/index.ts'

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
export function mfaOptionsFromConfig (config: Pick<GatehouseConfig, 'keysDir' | 'webauthnRpId' | 'webauthnOrigins' | 'stepUpMaxAge'>): MfaOptions {
  return {
    keysDir: config.keysDir,
    stepUpMaxAge: config.stepUpMaxAge,
    webauthn: config.webauthnRpId === undefined ? undefined : { rpId: config.webauthnRpId, origins: config.webauthnOrigins }
  }
}

export function browserOptionsFromConfig (config: Pick<GatehouseConfig, 'corsOrigins' | 'issuer'>): BrowserOptions {
  return { corsOrigins: config.corsOrigins, ownOrigin: new URL(config.issuer).origin }
}

export function mailerOptionsFromConfig (config: Pick<GatehouseConfig, 'smtpUrl' | 'mailFrom' | 'mailOutboxDir' | 'appUrl' | 'appName'>): MailerOptions {
  return { smtpUrl: config.smtpUrl, from: config.mailFrom, outboxDir: config.mailOutboxDir, appUrl: config.appUrl, appName: config.appName }
}

/** The bootstrap admin's address counts as verified: the operator vouches for it. */
export function accountsOptionsFromConfig (config: Pick<GatehouseConfig, 'appUrl' | 'emailVerificationTtl' | 'passwordResetTtl' | 'requireVerifiedEmail' | 'accessTokenTtl' | 'adminEmail'>): AccountsOptions {
  return {
    appUrl: config.appUrl,
    emailVerificationTtl: config.emailVerificationTtl,
    passwordResetTtl: config.passwordResetTtl,
    requireVerifiedEmail: config.requireVerifiedEmail,
    accessTokenTtl: config.accessTokenTtl,
    verifiedEmails: config.adminEmail === undefined ? [] : [config.adminEmail]
  }
}

/** Invitation links point where the other mails' links do (APP_URL). */
export function orgsOptionsFromConfig (config: Pick<GatehouseConfig, 'appUrl' | 'orgInvitationTtl'>): OrgsOptions {
  return { appUrl: config.appUrl, invitationTtl: config.orgInvitationTtl }
}

/** The provider registers `<AUTH_ISSUER>/auth/providers/<id>/callback`; stored provider tokens are sealed with the TOTP key. */
export function providersOptionsFromConfig (config: Pick<GatehouseConfig, 'issuer' | 'keysDir' | 'loginProviders' | 'loginRedirectUris'>): ProvidersOptions {
  return {
    providers: config.loginProviders,
    redirectUris: config.loginRedirectUris,
    callbackBase: `${config.issuer}/auth/providers`,
    keysDir: config.keysDir
  }
}
