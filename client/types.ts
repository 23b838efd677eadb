// Shapes of the server's answers the client reads (CONTRACT §3).

export interface GatehouseOrgMembership {
  id: string
  name: string
  role: string
}

/** GET /auth/me, and the `user` of login/register answers (which may carry fewer fields). */
export interface GatehouseUser {
  id: string
  email: string
  name?: string | null
  roles?: string[]
  orgs?: GatehouseOrgMembership[]
  [field: string]: unknown
}

/** The token response of /auth/login, /auth/register and /auth/refresh. */
export interface TokenResponseBody {
  access_token: string
  /** Absent in browser mode (`session: 'cookie'`): the refresh token is then an HttpOnly cookie. */
  refresh_token?: string
  token_type: string
  expires_in: number
  user?: GatehouseUser
}
