// The account as GET /auth/me shows it, in one statement: the user's row, whether a confirmed TOTP
// factor exists, the number of passkeys, the memberships with their organizations (aggregated
// into one JSON text column) and one row per linked provider identity (a left join, so its
// timestamp keeps the column's type). Read through the ORM the same answer was six statements
// (the relation and every count a query of its own), each through the query compiler; the
// profile is read on every call, so it is one round trip here. On the store's own client it goes
// to the driver adapter's connection directly (`store.sqlite`, `store.postgres`, as a login's
// and a refresh's statements do), without the client's request pipeline; on an app's own client
// the same text runs as a Prisma raw query.
import type { PrismaClient, Provider } from '../../plugins/store/index.ts'
import { prepared, rowsOf, sql, type PostgresConnection, type SqliteConnection } from '../../lib/sql-connection.ts'

export interface ProfileRow {
  id: string
  email: string
  name: string | null
  deletedAt: Date | null
  emailVerifiedAt: Date | null
  /** A confirmed TOTP factor exists. */
  totp: boolean
  /** The number of registered passkeys. */
  passkeys: number
  /** The memberships, in no particular order. */
  orgs: Array<{ id: string, name: string, role: string }>
  /** The linked provider identities, oldest first (never their tokens). */
  identities: Array<{ providerId: string, email: string | null, linkedAt: Date }>
}

interface RawRow {
  id: string
  email: string
  name: string | null
  deleted_at: Date | null
  email_verified_at: Date | null
  totp: number | bigint
  passkeys: number | bigint
  orgs: string | null
  p_provider_id: string | null
  p_email: string | null
  p_created_at: Date | null
}

export type ProfileReader = (userId: string) => Promise<ProfileRow | null>

function toProfile (rows: RawRow[]): ProfileRow | null {
  if (rows.length === 0) return null
  const first = rows[0]
  const orgs = first.orgs === null ? [] : JSON.parse(first.orgs) as ProfileRow['orgs']
  const identities: ProfileRow['identities'] = []
  for (const r of rows) {
    if (r.p_provider_id !== null && r.p_created_at !== null) identities.push({ providerId: r.p_provider_id, email: r.p_email, linkedAt: r.p_created_at })
  }
  return {
    id: first.id,
    email: first.email,
    name: first.name,
    deletedAt: first.deleted_at,
    emailVerifiedAt: first.email_verified_at,
    totp: Number(first.totp) === 1,
    passkeys: Number(first.passkeys),
    orgs,
    identities
  }
}

const SELECT = (orgs: string, id: string): string => `
  SELECT u.id, u.email, u.name, u.deleted_at, u.email_verified_at,
         CASE WHEN EXISTS (SELECT 1 FROM mfa_totp t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL) THEN 1 ELSE 0 END AS totp,
         (SELECT count(*) FROM webauthn_credentials w WHERE w.user_id = u.id) AS passkeys,
         (SELECT ${orgs} FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = u.id) AS orgs,
         p.provider_id AS p_provider_id, p.email AS p_email, p.created_at AS p_created_at
  FROM users u
  LEFT JOIN provider_identities p ON p.user_id = u.id
  WHERE u.id = ${id}
  ORDER BY p.created_at ASC`

const PROFILE_PG = prepared(SELECT("json_agg(json_build_object('id', o.id, 'name', o.name, 'role', m.role))::text", '$1'))
const PROFILE_SQLITE = SELECT("json_group_array(json_object('id', o.id, 'name', o.name, 'role', m.role))", '?')
const DATE_COLUMNS = new Set(['deleted_at', 'email_verified_at', 'p_created_at'])

/** `direct`: the store's own connection (`store.sqlite` or `store.postgres`), when it created the client. */
export function createProfileReader (prisma: PrismaClient, provider: Provider, direct?: SqliteConnection | PostgresConnection): ProfileReader {
  const text = provider === 'postgresql' ? PROFILE_PG : PROFILE_SQLITE
  if (direct !== undefined) {
    return async (userId) => toProfile(rowsOf<RawRow>(await (await direct.connection()).queryRaw(sql(text, [userId])), DATE_COLUMNS))
  }
  return async (userId) => toProfile(await prisma.$queryRawUnsafe<RawRow[]>(text, userId))
}
