// The audit event types Gatehouse records: every `type` it writes is one of these. Apps that
// record through gatehouse-audit may add their own.

/** The event types Gatehouse records (apps may add their own). */
export const AUDIT_EVENTS = Object.freeze({
  REGISTER: 'register',
  LOGIN: 'login',
  /** outcome 'failure', reason: unknown_user | bad_password | disabled | rate_limited | ... */
  LOGIN_FAILURE: 'login',
  REFRESH: 'refresh',
  REFRESH_REUSE: 'refresh_reuse',
  LOGOUT: 'logout',
  LOGOUT_ALL: 'logout_all',
  PASSWORD_CHANGE: 'password_change',
  API_KEY_CREATED: 'api_key_created',
  API_KEY_REVOKED: 'api_key_revoked',
  ROLES_CHANGED: 'roles_changed',
  ORG_CREATED: 'org_created',
  MEMBERSHIP_ADDED: 'membership_added',
  MEMBERSHIP_CHANGED: 'membership_changed',
  MEMBERSHIP_REMOVED: 'membership_removed',
  /** An invitation mailed (or mailed again); details: { invitationId, email, role }; never the token. */
  INVITATION_SENT: 'invitation_sent',
  /** outcome 'failure', reason: malformed | unknown | used | revoked | expired | wrong_email | email_not_verified | already_member */
  INVITATION_ACCEPTED: 'invitation_accepted',
  INVITATION_REVOKED: 'invitation_revoked',
  USER_DISABLED: 'user_disabled',
  USER_ENABLED: 'user_enabled',
  USER_DELETED: 'user_deleted',
  CLIENT_CREATED: 'client_created',
  /** An access token issued to an OAuth client (client_credentials grant). */
  CLIENT_CREDENTIALS: 'client_credentials',
  KEY_ROTATED: 'key_rotated',
  KEY_RETIRED: 'key_retired',
  MFA_TOTP_SETUP: 'mfa_totp_setup',
  MFA_TOTP_ENABLED: 'mfa_totp_enabled',
  MFA_TOTP_DISABLED: 'mfa_totp_disabled',
  MFA_RECOVERY_CODES_REGENERATED: 'mfa_recovery_codes_regenerated',
  MFA_RECOVERY_CODE_USED: 'mfa_recovery_code_used',
  /** The second step of a password login; details: { method }. */
  LOGIN_MFA: 'login_mfa',
  LOGIN_PASSKEY: 'login_passkey',
  PASSKEY_REGISTERED: 'passkey_registered',
  PASSKEY_REMOVED: 'passkey_removed',
  /** Every second factor of an account removed by an admin or the CLI. */
  MFA_RESET: 'mfa_reset',
  EMAIL_VERIFICATION_SENT: 'email_verification_sent',
  EMAIL_VERIFIED: 'email_verified',
  EMAIL_CHANGE_REQUESTED: 'email_change_requested',
  EMAIL_CHANGED: 'email_changed',
  PASSWORD_RESET_REQUESTED: 'password_reset_requested',
  PASSWORD_RESET: 'password_reset',
  /** A sign-in through an external provider (LOGIN_PROVIDERS); details: { provider }. outcome 'failure', reason: account_exists... */
  PROVIDER_LOGIN: 'provider_login',
  /** An external identity linked to an account; details: { provider, via: signup | verified_email | session }. */
  PROVIDER_LINKED: 'provider_linked',
  /** A signed-in user started linking a provider; details: { provider }. */
  PROVIDER_LINK_STARTED: 'provider_link_started',
  /** An external identity removed from an account; outcome 'failure', reason: last_sign_in_method. */
  PROVIDER_UNLINKED: 'provider_unlinked'
})

export type AuditEventType = typeof AUDIT_EVENTS[keyof typeof AUDIT_EVENTS]
