import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs, withApp, out } from './context.ts'

async function findUser (app: FastifyInstance, emailOrId: string): Promise<{ id: string, email: string, roles: string[] }> {
  const prisma = app.store.prisma
  const user = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(emailOrId)
    ? await prisma.user.findUnique({ where: { id: emailOrId.toLowerCase() } })
    : await prisma.user.findUnique({ where: { email: app.credentials.normalizeEmail(emailOrId) } })
  if (user === null || user.deletedAt !== null) throw new CliFailure(`no user ${emailOrId}`)
  return { id: user.id, email: user.email, roles: JSON.parse(user.roles) }
}

class CliFailure extends Error {}

async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

export const usersCommand: Command = {
  summary: 'create users, disable or enable them, set their global roles',
  usage: [
    'Usage: gatehouse users create <email> [--name NAME] [--role ROLE[,ROLE]] [--password-stdin]',
    '         without --password-stdin a strong password is generated and printed once',
    '       gatehouse users disable <email|id>      the user\'s sessions and tokens stop at once',
    '       gatehouse users enable <email|id>',
    '       gatehouse users set-role <email|id> <ROLE[,ROLE]>',
    '       gatehouse users verify-email <email|id>  mark the address as verified (no mail is sent)'
  ].join('\n'),
  async run (args, config) {
    const [action, ...rest] = args
    if (!['create', 'disable', 'enable', 'set-role', 'verify-email'].includes(action ?? '')) {
      throw new UsageError(action === undefined ? 'name an action: create, disable, enable, set-role or verify-email' : `unknown action "${action}"`)
    }
    const { positional, flags } = parseArgs(rest, { name: true, role: true, 'password-stdin': false })
    try {
      if (action === 'create') {
        if (positional.length !== 1) throw new UsageError('name exactly one email')
        const generated = !flags.has('password-stdin')
        const password = generated ? randomBytes(18).toString('base64url') : await readStdin()
        const roles = String(flags.get('role') ?? 'user').split(',').map((r) => r.trim()).filter((r) => r !== '')
        return await withApp(config, async (app) => {
          const normalised = app.credentials.checkPasswordPolicy(password)
          const user = await app.store.prisma.user.create({
            data: {
              email: app.credentials.normalizeEmail(positional[0]),
              name: typeof flags.get('name') === 'string' ? flags.get('name') as string : null,
              passwordHash: await app.credentials.hashPassword(normalised),
              roles: JSON.stringify(roles)
            }
          }).catch((err: { code?: string }) => {
            if (err.code === 'CONFLICT') throw new CliFailure(`a user with the email ${positional[0]} already exists`)
            throw err
          })
          app.audit.record({ type: 'register', outcome: 'success', subjectId: user.id, details: { via: 'cli', roles } })
          out(`created user ${user.email} (id ${user.id}, roles ${roles.join(',')})`)
          if (generated) out(`password (shown once): ${password}`)
          return 0
        })
      }
      if (positional.length !== (action === 'set-role' ? 2 : 1)) throw new UsageError(action === 'set-role' ? 'name a user and the roles' : 'name exactly one user')
      return await withApp(config, async (app) => {
        const user = await findUser(app, positional[0])
        const prisma = app.store.prisma
        if (action === 'verify-email') {
          await app.accounts.markVerified(user.id, 'cli')
          out(`${user.email}: the address is marked as verified`)
          return 0
        }
        if (action === 'set-role') {
          const roles = positional[1].split(',').map((r) => r.trim()).filter((r) => r !== '')
          if (roles.length === 0) throw new UsageError('name at least one role')
          await prisma.user.update({ where: { id: user.id }, data: { roles: JSON.stringify(roles) } })
          await app.tokens.userChanged(user.id)
          app.audit.record({ type: 'roles_changed', outcome: 'success', subjectId: user.id, details: { via: 'cli', from: user.roles, to: roles } })
          out(`${user.email}: roles ${roles.join(',')} (effective at the user's next request)`)
          return 0
        }
        const disabled = action === 'disable'
        await prisma.user.update({ where: { id: user.id }, data: { status: disabled ? 'disabled' : 'active' } })
        if (disabled) await app.sessions.revokeAllFamilies(user.id, 'disabled')
        await app.tokens.userChanged(user.id)
        app.audit.record({ type: disabled ? 'user_disabled' : 'user_enabled', outcome: 'success', subjectId: user.id, details: { via: 'cli' } })
        out(disabled ? `disabled ${user.email}: its sessions are revoked and its tokens refused` : `enabled ${user.email}`)
        return 0
      })
    } catch (err) {
      if (err instanceof CliFailure) {
        process.stderr.write(`gatehouse users: ${err.message}\n`)
        return 1
      }
      if ((err as { code?: string }).code === 'WEAK_PASSWORD') {
        process.stderr.write(`gatehouse users: ${(err as Error).message}\n`)
        return 1
      }
      throw err
    }
  }
}
