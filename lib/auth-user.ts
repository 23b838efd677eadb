// The authenticated principal that `authenticate` puts on `request.user` (null until then).
// RBAC, routes and apps read it; it is the same shape for our own tokens, HTTP Basic, API
// keys and tokens from trusted external issuers.

export type AuthScheme = 'bearer' | 'basic' | 'apikey'

export interface AuthUser {
  /** Our user id, or the external token's `sub`. */
  id: string
  sub: string
  /** Issuer of the credential: this server's issuer for our own credentials. */
  iss: string
  /** Global roles (for our users, the current roles from the database, not the token's copy). */
  roles: string[]
  scheme: AuthScheme
  /** True for a token from a trusted external issuer (no database account is required). */
  external: boolean
  /** Refresh family (session) id of our own access tokens. */
  sid?: string
  email?: string
  /** OAuth client of a client_credentials token. */
  clientId?: string
  /** The verified claims of a bearer token. */
  claims?: Record<string, unknown>
  /** An external token whose issuer entry sets `adminApi: true` (CONTRACT §14). */
  adminApi?: boolean
}

/** A user of this server's own database: not an external token, not an OAuth client's token. */
export function isLocalUser (user: AuthUser | null | undefined): user is AuthUser {
  return user != null && !user.external && user.clientId === undefined
}

/**
 * Who may use the admin API and manage organizations (CONTRACT §14): local users, and external
 * tokens of an issuer whose entry sets `adminApi: true`. An OAuth client's token never.
 */
export function mayAdminister (user: AuthUser | null | undefined): user is AuthUser {
  if (user == null || user.clientId !== undefined) return false
  return !user.external || user.adminApi === true
}

declare module 'fastify' {
  interface FastifyRequest {
    user: AuthUser | null
  }
}
