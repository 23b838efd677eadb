// Shared by the organization tests: accounts whose address is confirmed, and membership the way
// the server grants it: an admin's invitation, its mail read back from a real SMTP server, and
// the invitee's acceptance.
import type { FastifyInstance } from 'fastify'
import { account, call, type Account } from '../rbac/fixtures.ts'
import { linkToken, type TestSmtp } from '../helpers/smtp.ts'

/** An account (fixtures.account) whose address is confirmed, as the CLI's `users verify` does. */
export async function verifiedAccount (app: FastifyInstance, options: { email?: string, name?: string, roles?: string[] } = {}): Promise<Account> {
  const created = await account(app, options)
  await app.accounts.markVerified(created.id, 'test')
  return created
}

/** The link token of the next invitation mail to `email`. */
export async function invitationToken (smtp: TestSmtp, email: string): Promise<string> {
  const mail = await smtp.next((m) => m.to.includes(email) && /invited to join/.test(m.subject))
  return linkToken(mail, 'accept-invite')
}

/** `admin` invites `member` with `role` and `member` accepts: a member from then. */
export async function join (app: FastifyInstance, smtp: TestSmtp, orgId: string, admin: Account, member: Account, role: string): Promise<void> {
  const invited = await call(app, 'POST', `/orgs/${orgId}/members`, admin, { email: member.email, role })
  if (invited.status !== 202) throw new Error(`invite: ${invited.status} ${JSON.stringify(invited.body)}`)
  const token = await invitationToken(smtp, member.email.trim().toLowerCase())
  const accepted = await call(app, 'POST', '/orgs/invitations/accept', member, { token })
  if (accepted.status !== 200) throw new Error(`accept: ${accepted.status} ${JSON.stringify(accepted.body)}`)
}
