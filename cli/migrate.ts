import { migrate, pendingMigrations, redactDatabaseUrl } from '../plugins/store/index.ts'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'

export const migrateCommand: Command = {
  summary: 'apply the pending database migrations (SQLite or PostgreSQL, from DATABASE_URL)',
  usage: 'Usage: gatehouse migrate [--check]\n  --check  list pending migrations and exit 1 if any, without applying them',
  async run (args, config) {
    const unknown = args.filter((a) => a !== '--check')
    if (unknown.length > 0) throw new UsageError(`unknown option ${unknown[0]}`)
    const where = redactDatabaseUrl(config.databaseUrl)
    if (args.includes('--check')) {
      const pending = await pendingMigrations(config.databaseUrl)
      process.stdout.write(pending.length === 0 ? `${where}: up to date\n` : `${where}: ${pending.length} pending: ${pending.join(', ')}\n`)
      return pending.length === 0 ? 0 : 1
    }
    process.stdout.write(`migrating ${where}\n`)
    const started = Date.now()
    const result = await migrate(config.databaseUrl, { log: (line) => process.stdout.write(`  ${line}\n`) })
    if (result.createdDatabase) process.stdout.write('  (the database was created)\n')
    process.stdout.write(result.applied.length === 0
      ? `up to date (${result.alreadyApplied} migration(s) already applied)\n`
      : `applied ${result.applied.length} migration(s) in ${Date.now() - started} ms\n`)
    return 0
  }
}
