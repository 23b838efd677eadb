// Registered OAuth clients (oauth_clients). A confidential client's secret is 256 random bits
// shown once; only `$sha256$<base64url digest>` is stored. A fast hash is enough for a secret of
// that entropy (RFC 6819 §5.1.4.2.2): nobody can guess it, so a slow KDF would only cost CPU on
// every token request. Secrets stored as argon2id PHC strings (set by other tooling) verify too.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { verify as argon2Verify } from '@node-rs/argon2'
import type { PrismaClient } from '../store/index.ts'
import { DEFAULT_CLIENT_ID } from './options.ts'

export const GRANT_TYPES = ['password', 'refresh_token', 'client_credentials'] as const
export type GrantType = typeof GRANT_TYPES[number]

const SHA256_PREFIX = '$sha256$'
const CLIENT_ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/

export interface OAuthClientInput {
  /** The client_id; a random uuid when omitted. */
  id?: string
  name: string
  /** Grant types the client may use. */
  grants: string[]
  /** Global roles of the client's own (client_credentials) access tokens. */
  roles: string[]
}

export interface OAuthClient {
  id: string
  name: string
  confidential: boolean
  grants: string[]
  roles: string[]
}

export function hashClientSecret (secret: string): string {
  return SHA256_PREFIX + createHash('sha256').update(secret).digest('base64url')
}

/** Constant-time check of `secret` against a stored `$sha256$` or argon2id hash. */
export async function verifyClientSecret (stored: string, secret: string): Promise<boolean> {
  if (stored.startsWith(SHA256_PREFIX)) {
    const expected = Buffer.from(stored)
    const actual = Buffer.from(hashClientSecret(secret))
    return expected.length === actual.length && timingSafeEqual(expected, actual)
  }
  if (stored.startsWith('$argon2id$')) {
    try {
      return await argon2Verify(stored, secret)
    } catch {
      return false
    }
  }
  return false
}

function jsonList (raw: string): string[] {
  try {
    const value: unknown = JSON.parse(raw)
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
  } catch {
    return []
  }
}

/**
 * Registers a confidential client and returns its secret: the only time it is ever available
 * (the CLI prints it once). Throws on bad input; a taken id is the store's CONFLICT.
 */
export async function createOAuthClient (prisma: PrismaClient, input: OAuthClientInput): Promise<{ clientId: string, clientSecret: string }> {
  const clientId = input.id ?? randomUUID()
  if (!CLIENT_ID_PATTERN.test(clientId)) throw new TypeError('client id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -')
  if (clientId === DEFAULT_CLIENT_ID) throw new TypeError(`client id ${DEFAULT_CLIENT_ID} is the built-in public client`)
  const name = typeof input.name === 'string' ? input.name.trim() : ''
  if (name === '' || name.length > 200) throw new TypeError('client name must be 1-200 characters')
  const grants = [...new Set(input.grants)]
  if (grants.length === 0 || !grants.every((g) => (GRANT_TYPES as readonly string[]).includes(g))) {
    throw new TypeError(`client grants must be a non-empty list of ${GRANT_TYPES.join(', ')}`)
  }
  const roles = [...new Set(input.roles)]
  if (!roles.every((r) => typeof r === 'string' && /^[A-Za-z0-9:._-]{1,64}$/.test(r))) throw new TypeError('client roles must be role names')
  const clientSecret = randomBytes(32).toString('base64url')
  await prisma.oAuthClient.create({
    data: { id: clientId, name, secretHash: hashClientSecret(clientSecret), grants: JSON.stringify(grants), roles: JSON.stringify(roles) }
  })
  return { clientId, clientSecret }
}

/** A registered, non-revoked client, or null. */
export async function findOAuthClient (prisma: PrismaClient, clientId: string): Promise<(OAuthClient & { secretHash: string | null }) | null> {
  if (!CLIENT_ID_PATTERN.test(clientId)) return null
  const row = await prisma.oAuthClient.findUnique({ where: { id: clientId } })
  if (row === null || row.revokedAt !== null) return null
  return { id: row.id, name: row.name, confidential: row.secretHash !== null, grants: jsonList(row.grants), roles: jsonList(row.roles), secretHash: row.secretHash }
}
