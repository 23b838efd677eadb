import { listKeys, rotateKey, retireKey, KeyRingError, KEY_ALGORITHMS, KEYS_CHANNEL } from '../plugins/tokens/index.ts'
import type { SigningAlgorithm } from '../lib/algorithms.ts'
import type { GatehouseConfig } from '../server/config.ts'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs, table, out, withCore } from './context.ts'
import { AUDIT_EVENTS, type AuditEventType } from '../plugins/audit/index.ts'

const REREAD = 'running instances pick the change up within seconds (they re-read AUTH_KEYS_DIR)'

/**
 * Records the change through gatehouse-audit and tells running instances, on the bus the tokens
 * plugin listens to, to reload their key rings now. Returns what the operator should know.
 */
async function recordAndAnnounce (config: GatehouseConfig, type: AuditEventType, details: Record<string, unknown>): Promise<string> {
  try {
    return await withCore(config, async (app) => {
      app.audit.record({ type, outcome: 'success', details: { ...details, via: 'cli' } })
      if (!app.bus.distributed) return config.redisUrl === undefined ? REREAD : `Redis could not be reached: ${REREAD}`
      await app.bus.publish(KEYS_CHANNEL, { reload: true })
      return 'running instances were told through Redis'
    })
  } catch (err) {
    process.stderr.write(`warning: the ${type} audit event could not be written (${(err as Error).message})\n`)
    return REREAD
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
        const told = await recordAndAnnounce(config, AUDIT_EVENTS.KEY_ROTATED, { kid: key.kid, alg: key.alg })
        out(`new signing key: kid ${key.kid} (${key.alg}); older keys keep verifying until retired`)
        out(told)
        return 0
      }
      if (action === 'retire') {
        const { flags, positional } = parseArgs(rest, { force: false })
        if (positional.length !== 1) throw new UsageError('name exactly one kid to retire')
        const key = retireKey(config.keysDir, positional[0], { force: flags.has('force'), graceSeconds: config.accessTokenTtl })
        const told = await recordAndAnnounce(config, AUDIT_EVENTS.KEY_RETIRED, { kid: key.kid })
        out(`retired key ${key.kid}: it is no longer published and its tokens no longer verify`)
        out(told)
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
