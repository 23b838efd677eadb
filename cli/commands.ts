import type { GatehouseConfig } from '../lib/config.ts'
import { migrateCommand } from './migrate.ts'

export class UsageError extends Error {
  override name = 'UsageError'
}

export interface Command {
  summary: string
  usage: string
  run: (args: string[], config: GatehouseConfig) => Promise<number>
}

export const COMMANDS: Record<string, Command> = {
  migrate: migrateCommand
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
