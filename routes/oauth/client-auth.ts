// Client authentication at the OAuth endpoints (RFC 6749 §2.3.1): client_secret_basic (the
// Authorization header, id and secret form-urlencoded before base64) or client_secret_post
// (client_id + client_secret in the body), never both. Without credentials the caller is the
// public client named by client_id, or the built-in public client when client_id is omitted.
import { hasDuplicateAuthorization } from '../../plugins/authenticate/index.ts'
import type { FastifyRequest } from 'fastify'
import type { PrismaClient } from '../../plugins/store/index.ts'
import { findOAuthClient, verifyClientSecret } from '../../plugins/sessions/index.ts'
import { invalidClient, invalidRequest } from './errors.ts'

export interface IdentifiedClient {
  id: string
  /** True when the client proved it holds its secret. */
  authenticated: boolean
  grants: string[]
  roles: string[]
}

export interface ClientFields {
  client_id?: string
  client_secret?: string
}

function formDecode (value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '))
}

/** `Basic base64(urlencode(id):urlencode(secret))`, or null when there is no Authorization header. */
export function parseBasicClient (header: string | undefined): { id: string, secret: string } | null {
  if (header === undefined) return null
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header)
  if (match === null) throw invalidClient('The Authorization header must be HTTP Basic client credentials')
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) throw invalidClient('The Authorization header must be HTTP Basic client credentials')
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) }
  } catch {
    throw invalidClient('The Authorization header must be HTTP Basic client credentials')
  }
}

export const PUBLIC_CLIENT_GRANTS = ['password', 'refresh_token']

export async function identifyClient (request: FastifyRequest, body: ClientFields, prisma: PrismaClient, defaultClientId: string): Promise<IdentifiedClient> {
  if (hasDuplicateAuthorization(request.raw.rawHeaders)) throw invalidRequest('More than one Authorization header')
  const basic = parseBasicClient(request.headers.authorization)
  if (basic !== null && body.client_secret !== undefined) throw invalidRequest('Use one client authentication method, not two')
  if (basic !== null && body.client_id !== undefined && body.client_id !== basic.id) throw invalidRequest('client_id does not match the Authorization header')
  const id = basic?.id ?? body.client_id ?? defaultClientId
  const secret = basic?.secret ?? body.client_secret

  if (id === defaultClientId) {
    if (secret !== undefined) throw invalidClient()
    return { id, authenticated: false, grants: PUBLIC_CLIENT_GRANTS, roles: [] }
  }
  const client = await findOAuthClient(prisma, id)
  if (client === null) throw invalidClient()
  if (client.secretHash === null) {
    // A registered public client: it has no secret to present.
    if (secret !== undefined) throw invalidClient()
    return { id: client.id, authenticated: false, grants: client.grants, roles: client.roles }
  }
  if (secret === undefined || !(await verifyClientSecret(client.secretHash, secret))) throw invalidClient()
  return { id: client.id, authenticated: true, grants: client.grants, roles: client.roles }
}
