import type { FastifyInstance } from 'fastify'
import { loadSecretKeys, retireSecretKey, rotateSecretKey, SecretBoxError, SECRET_KEYS_FILE } from '../plugins/mfa/secret-box.ts'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs, withApp, out, table } from './context.ts'

class CliFailure extends Error {}

async function findUser (app: FastifyInstance, emailOrId: string): Promise<{ id: string, email: string }> {
  const prisma = app.store.prisma
  const user = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(emailOrId)
    ? await prisma.user.findUnique({ where: { id: emailOrId.toLowerCase() } })
    : await prisma.user.findUnique({ where: { email: app.credentials.normalizeEmail(emailOrId) } })
  if (user === null || user.deletedAt !== null) throw new CliFailure(`no user ${emailOrId}`)
  return { id: user.id, email: user.email }
}

export const mfaCommand: Command = {
  summary: 'turn off a user\'s second factors; rotate the key that seals TOTP secrets',
  usage: [
    'Usage: gatehouse mfa reset <email|id>      remove the user\'s TOTP, recovery codes and passkeys (audited)',
    '       gatehouse mfa keys                  the sealing keys and how many TOTP secrets each seals',
    `       gatehouse mfa rotate-key            add a key to ${SECRET_KEYS_FILE} that seals from now on`,
    '       gatehouse mfa reseal                seal every TOTP secret under the newest key',
    '       gatehouse mfa retire-key <kid>      remove a key that seals no secret any more'
  ].join('\n'),
  async run (args, config) {
    const [action, ...rest] = args
    if (!['reset', 'keys', 'rotate-key', 'reseal', 'retire-key'].includes(action ?? '')) {
      throw new UsageError(action === undefined ? 'name an action: reset, keys, rotate-key, reseal or retire-key' : `unknown action "${action}"`)
    }
    const { positional } = parseArgs(rest, {})
    try {
      if (action === 'reset') {
        if (positional.length !== 1) throw new UsageError('name exactly one user')
        return await withApp(config, async (app) => {
          const user = await findUser(app, positional[0])
          const removed = await app.mfa.reset(user.id, { via: 'cli' })
          out(`${user.email}: second factors removed (TOTP: ${removed.totp ? 'yes' : 'none'}, passkeys: ${removed.passkeys}, recovery codes: ${removed.recoveryCodes}); a password alone logs in now`)
          return 0
        })
      }
      if (positional.length !== (action === 'retire-key' ? 1 : 0)) throw new UsageError(action === 'retire-key' ? 'name exactly one key id' : `unexpected argument ${positional[0]}`)
      if (action === 'rotate-key') {
        const kid = rotateSecretKey(config.keysDir)
        out(`new sealing key ${kid} in ${config.keysDir}; older keys still open existing secrets (instances re-read the file when they meet one).`)
        out('Next: copy the key file to every instance, then run `gatehouse mfa reseal`, then `gatehouse mfa retire-key <old kid>`.')
        return 0
      }
      return await withApp(config, async (app) => {
        if (action === 'reseal') {
          out(`sealed ${await app.mfa.resealAll()} TOTP secret(s) under ${app.mfa.currentKeyId()}`)
          return 0
        }
        const counts = await app.mfa.secretsByKey()
        if (action === 'keys') {
          const keys = loadSecretKeys(config.keysDir, false).keys
          out(table(keys.map((k, i) => ({ kid: k.kid, status: i === 0 ? 'sealing' : 'opening', created: k.createdAt, secrets: String(counts[k.kid] ?? 0) })), ['kid', 'status', 'created', 'secrets']))
          return 0
        }
        const kid = positional[0]
        if ((counts[kid] ?? 0) > 0) throw new CliFailure(`${counts[kid]} TOTP secret(s) are still sealed with ${kid}: run \`gatehouse mfa reseal\` first`)
        retireSecretKey(config.keysDir, kid)
        out(`retired ${kid}`)
        return 0
      })
    } catch (err) {
      if (err instanceof CliFailure || err instanceof SecretBoxError) {
        process.stderr.write(`gatehouse mfa: ${err.message}\n`)
        return 1
      }
      throw err
    }
  }
}
