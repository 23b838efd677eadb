// gatehouse-bootstrap-admin: when ADMIN_EMAIL and ADMIN_PASSWORD are set, the account exists with
// the global `admin` role before the server starts serving. It is created with the password
// (hashed by gatehouse-credentials, after the password policy), or an existing account that is
// not yet an active admin is promoted: its password is set to ADMIN_PASSWORD and its sessions,
// access tokens and API keys are revoked (CONTRACT §2), so an account registered by someone else
// before ADMIN_EMAIL was set cannot become an admin with its own password. Idempotent, and safe
// when several instances start at once (a lost creation race falls back to promotion). The
// password is never logged.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ConfigError } from '../lib/options.ts'
import { isGatehouseError } from '../lib/errors.ts'
import { isUniqueViolation } from '../plugins/store/index.ts'
import { parseRoles } from '../lib/roles.ts'
import { AUDIT_EVENTS } from '../plugins/audit/index.ts'

export interface BootstrapAdminOptions {
  /** The account's email (normalised by gatehouse-credentials). Nothing happens when unset. */
  email?: string
  /** Its password: set when the account is created or promoted; an active admin's is left as it is. */
  password?: string
  /** The global role to grant. @default 'admin' */
  role?: string
}

export type BootstrapResult = 'created' | 'promoted' | 'unchanged'

async function ensureAdmin (fastify: FastifyInstance, email: string, password: string, role: string): Promise<{ id: string, result: BootstrapResult }> {
  const prisma = fastify.store.prisma
  const existing = await prisma.user.findUnique({ where: { email }, select: { id: true, roles: true, status: true, deletedAt: true, passwordHash: true } })
  if (existing === null) {
    const passwordHash = await fastify.credentials.hashPassword(password)
    try {
      const created = await prisma.user.create({ data: { email, passwordHash, roles: JSON.stringify([role]) }, select: { id: true } })
      return { id: created.id, result: 'created' }
    } catch (err) {
      if (!isUniqueViolation(err)) throw err
      return ensureAdmin(fastify, email, password, role)
    }
  }
  const roles = parseRoles(existing.roles)
  const fine = roles.includes(role) && existing.status === 'active' && existing.deletedAt === null && existing.passwordHash !== null
  if (fine) return { id: existing.id, result: 'unchanged' }
  // Anyone may have registered this address before the operator set ADMIN_EMAIL: the account
  // becomes an admin only with ADMIN_PASSWORD as its password, and whatever its owner so far
  // holds (sessions, access tokens, API keys) stops working.
  const passwordHash = await fastify.credentials.hashPassword(password)
  const now = new Date()
  await prisma.$transaction([
    prisma.user.update({
      where: { id: existing.id },
      data: {
        roles: JSON.stringify(roles.includes(role) ? roles : [role, ...roles]),
        status: 'active',
        deletedAt: null,
        passwordHash,
        passwordChangedAt: now,
        tokenVersion: { increment: 1 }
      }
    }),
    prisma.refreshFamily.updateMany({ where: { userId: existing.id, revokedAt: null }, data: { revokedAt: now, revokedReason: 'bootstrap_admin' } }),
    prisma.refreshToken.updateMany({ where: { userId: existing.id, revokedAt: null }, data: { revokedAt: now } })
  ])
  await fastify.credentials.revokeUserApiKeys(existing.id, 'bootstrap_admin')
  await fastify.credentials.forgetUser(existing.id)
  return { id: existing.id, result: 'promoted' }
}

async function bootstrapAdminPlugin (fastify: FastifyInstance, options: BootstrapAdminOptions): Promise<void> {
  if (options.email === undefined || options.password === undefined) return
  const role = options.role ?? 'admin'
  if (fastify.hasDecorator('rbac') && !fastify.rbac.isRole(role)) throw new ConfigError('ADMIN_EMAIL', `the role ${JSON.stringify(role)} is not in the global role hierarchy`)
  const email = fastify.credentials.normalizeEmail(options.email)
  let password: string
  try {
    password = fastify.credentials.checkPasswordPolicy(options.password, { email })
  } catch (err) {
    if (isGatehouseError(err)) throw new ConfigError('ADMIN_PASSWORD', `does not meet the password policy (${err.message})`)
    throw err
  }
  const { id, result } = await ensureAdmin(fastify, email, password, role)
  if (result !== 'unchanged') {
    if (fastify.hasDecorator('tokens')) await fastify.tokens.userChanged(id)
    fastify.audit.record({ type: AUDIT_EVENTS.ROLES_CHANGED, outcome: 'success', subjectId: id, reason: 'bootstrap_admin', details: { role, result } })
  }
  if (result === 'promoted') {
    fastify.log.warn({ userId: id, email, result }, `bootstrap admin ${email}: an existing account was promoted to ${role}; its password is now ADMIN_PASSWORD and its sessions, access tokens and API keys were revoked`)
  } else {
    fastify.log.info({ userId: id, email, result }, `bootstrap admin ${email}: ${result === 'created' ? 'created' : `already ${role}`}`)
  }
}

export const bootstrapAdmin = fp(bootstrapAdminPlugin, {
  name: 'gatehouse-bootstrap-admin',
  fastify: '5.x',
  dependencies: ['gatehouse-store', 'gatehouse-credentials', 'gatehouse-audit']
})
export default bootstrapAdmin
