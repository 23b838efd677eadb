import type { GatehouseConfig } from '../server/config.ts'
import { migrateCommand } from './migrate.ts'
import { keysCommand } from './keys.ts'
import { usersCommand } from './users.ts'
import { clientsCommand } from './clients.ts'
import { auditCommand } from './audit.ts'

export { UsageError } from './errors.ts'

export interface Command {
  summary: string
  usage: string
  run: (args: string[], config: GatehouseConfig) => Promise<number>
}

export const COMMANDS: Record<string, Command> = {
  migrate: migrateCommand,
  keys: keysCommand,
  users: usersCommand,
  clients: clientsCommand,
  audit: auditCommand
}

export function usage (): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length))
  return [
    'Usage: gatehouse <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Configuration comes from the environment (DATABASE_URL, AUTH_KEYS_DIR, ...): see docs/configuration.md.',
    ''
  ].join('\n')
}
