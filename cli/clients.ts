import { createOAuthClient, GRANT_TYPES, type GrantType } from '../plugins/sessions/clients.ts'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs, withApp, out } from './context.ts'
import { AUDIT_EVENTS } from '../plugins/audit/index.ts'

export const clientsCommand: Command = {
  summary: 'register an OAuth client for /oauth/token (its secret is printed once)',
  usage: [
    'Usage: gatehouse clients create <name> [--id CLIENT_ID] [--grants client_credentials[,...]] [--roles ROLE[,ROLE]]',
    `         grants: ${GRANT_TYPES.join(', ')} (default client_credentials)`
  ].join('\n'),
  async run (args, config) {
    const [action, ...rest] = args
    if (action !== 'create') throw new UsageError(action === undefined ? 'name an action: create' : `unknown action "${action}"`)
    const { positional, flags } = parseArgs(rest, { id: true, grants: true, roles: true })
    if (positional.length !== 1) throw new UsageError('name the client')
    const grants = String(flags.get('grants') ?? 'client_credentials').split(',').map((g) => g.trim()) as GrantType[]
    const unknown = grants.find((g) => !GRANT_TYPES.includes(g))
    if (unknown !== undefined) throw new UsageError(`unknown grant ${unknown}`)
    const roles = typeof flags.get('roles') === 'string' ? String(flags.get('roles')).split(',').map((r) => r.trim()).filter((r) => r !== '') : []
    return await withApp(config, async (app) => {
      const created = await createOAuthClient(app.store.prisma, {
        name: positional[0],
        grants,
        roles,
        ...(typeof flags.get('id') === 'string' ? { id: flags.get('id') as string } : {})
      })
      app.audit.record({ type: AUDIT_EVENTS.CLIENT_CREATED, outcome: 'success', details: { clientId: created.clientId, grants, roles, via: 'cli' } })
      out(`client_id:     ${created.clientId}`)
      out(`client_secret: ${created.clientSecret}`)
      out('The secret is shown once and stored only as a hash: keep it in your secret store now.')
      return 0
    })
  }
}
