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
}

declare module 'fastify' {
  interface FastifyRequest {
    user: AuthUser | null
  }
}
