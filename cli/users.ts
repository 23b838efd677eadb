import { randomBytes } from 'node:crypto'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs, withApp, out } from './context.ts'
import { isGatehouseError } from '../lib/errors.ts'

/** Coded refusals of fastify.users that are the operator's to fix, not a fault of the CLI. */
const REFUSALS = new Set(['NOT_FOUND', 'CONFLICT', 'INVALID_ROLE', 'WEAK_PASSWORD', 'EMAIL_TAKEN'])

function roleList (raw: string): string[] {
  return raw.split(',').map((r) => r.trim()).filter((r) => r !== '')
}

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
    const via = { via: 'cli' }
    try {
      if (action === 'create') {
        if (positional.length !== 1) throw new UsageError('name exactly one email')
        const generated = !flags.has('password-stdin')
        const password = generated ? randomBytes(18).toString('base64url') : await readStdin()
        const roles = roleList(String(flags.get('role') ?? 'user'))
        return await withApp(config, async (app) => {
          const name = typeof flags.get('name') === 'string' ? flags.get('name') as string : null
          const user = await app.users.create({ email: positional[0], password, name, roles }, via)
          out(`created user ${user.email} (id ${user.id}, roles ${user.roles.join(',')})`)
          if (generated) out(`password (shown once): ${password}`)
          return 0
        })
      }
      if (positional.length !== (action === 'set-role' ? 2 : 1)) throw new UsageError(action === 'set-role' ? 'name a user and the roles' : 'name exactly one user')
      return await withApp(config, async (app) => {
        const user = await app.users.find(positional[0])
        if (action === 'verify-email') {
          await app.accounts.markVerified(user.id, 'cli')
          out(`${user.email}: the address is marked as verified`)
          return 0
        }
        if (action === 'set-role') {
          const roles = roleList(positional[1])
          if (roles.length === 0) throw new UsageError('name at least one role')
          await app.users.update(user.id, { roles }, via)
          out(`${user.email}: roles ${roles.join(',')} (effective at the user's next request)`)
          return 0
        }
        const disabled = action === 'disable'
        await app.users.update(user.id, { disabled }, via)
        out(disabled ? `disabled ${user.email}: its sessions are revoked and its tokens refused` : `enabled ${user.email}`)
        return 0
      })
    } catch (err) {
      if (isGatehouseError(err) && REFUSALS.has(err.code)) {
        process.stderr.write(`gatehouse users: ${err.message} (${err.code})\n`)
        return 1
      }
      throw err
    }
  }
}
