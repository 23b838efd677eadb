import { listKeys, rotateKey, retireKey, KeyRingError, KEY_ALGORITHMS } from '../plugins/tokens/keys.ts'
import type { SigningAlgorithm } from '../lib/algorithms.ts'
import { redisClient } from '../plugins/redis/index.ts'
import { createPrismaClient } from '../plugins/store/client.ts'
import { migrate, parseDatabaseUrl } from '../plugins/store/index.ts'
import type { GatehouseConfig } from '../server/config.ts'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs, table, out } from './context.ts'
import { AUDIT_EVENTS, type AuditEventType } from '../plugins/audit/index.ts'

/** Tells running instances (through Redis, when configured) to reload their key rings now. */
async function announce (config: GatehouseConfig): Promise<string> {
  if (config.redisUrl === undefined) return 'running instances pick the change up within seconds (they re-read AUTH_KEYS_DIR)'
  const redis = redisClient(config.redisUrl)
  try {
    await redis.connect()
    await redis.publish('gatehouse:keys', JSON.stringify({ reload: true }))
    return 'running instances were told through Redis'
  } catch {
    return 'Redis could not be reached: running instances pick the change up within seconds (they re-read AUTH_KEYS_DIR)'
  } finally {
    redis.disconnect()
  }
}

async function auditKeyEvent (config: GatehouseConfig, type: AuditEventType, details: Record<string, unknown>): Promise<void> {
  // As at `npm start`: the embedded SQLite database is migrated on first use.
  if (parseDatabaseUrl(config.databaseUrl).provider === 'sqlite') await migrate(config.databaseUrl)
  const { prisma } = await createPrismaClient(config.databaseUrl)
  try {
    await prisma.auditEvent.create({ data: { type, outcome: 'success', details: JSON.stringify({ ...details, via: 'cli' }) } })
  } catch {
    process.stderr.write(`warning: the ${type} audit event could not be written (is the database migrated?)\n`)
  } finally {
    await prisma.$disconnect()
  }
}

export const keysCommand: Command = {
  summary: 'list, rotate or retire signing keys (AUTH_KEYS_DIR)',
  usage: [
    'Usage: gatehouse keys list',
    '       gatehouse keys rotate [--alg RS256|ES256|EdDSA]   add a key that signs from now on',
    '       gatehouse keys retire <kid> [--force]             stop publishing and accepting a key'
  ].join('\n'),
  async run (args, config) {
    const [action, ...rest] = args
    try {
      if (action === 'list') {
        parseArgs(rest, {})
        out(`keys in ${config.keysDir}:`)
        out(table(listKeys(config.keysDir).map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, created: k.createdAt, retired: k.retiredAt ?? '' })), ['kid', 'alg', 'status', 'created', 'retired']))
        return 0
      }
      if (action === 'rotate') {
        const { flags, positional } = parseArgs(rest, { alg: true })
        if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`)
        const alg = (flags.get('alg') as string | undefined ?? config.signingAlgorithm) as SigningAlgorithm
        if (!KEY_ALGORITHMS.includes(alg)) throw new UsageError(`--alg must be one of ${KEY_ALGORITHMS.join(', ')}`)
        out(`generating a ${alg} key in ${config.keysDir}...`)
        const key = rotateKey(config.keysDir, alg)
        await auditKeyEvent(config, AUDIT_EVENTS.KEY_ROTATED, { kid: key.kid, alg: key.alg })
        out(`new signing key: kid ${key.kid} (${key.alg}); older keys keep verifying until retired`)
        out(await announce(config))
        return 0
      }
      if (action === 'retire') {
        const { flags, positional } = parseArgs(rest, { force: false })
        if (positional.length !== 1) throw new UsageError('name exactly one kid to retire')
        const key = retireKey(config.keysDir, positional[0], { force: flags.has('force'), graceSeconds: config.accessTokenTtl })
        await auditKeyEvent(config, AUDIT_EVENTS.KEY_RETIRED, { kid: key.kid })
        out(`retired key ${key.kid}: it is no longer published and its tokens no longer verify`)
        out(await announce(config))
        return 0
      }
      throw new UsageError(action === undefined ? 'name an action: list, rotate or retire' : `unknown action "${action}"`)
    } catch (err) {
      if (err instanceof KeyRingError) {
        process.stderr.write(`gatehouse keys: ${err.message}\n`)
        return 1
      }
      throw err
    }
  }
}
