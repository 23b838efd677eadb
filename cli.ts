// gatehouse: the operations CLI (`npx gatehouse <command>`, or `npm run cli -- <command>`).
// Each command lives in cli/<command>.ts. Exit codes: 0 success, 1 failure, 2 usage error.
import { loadConfig, ConfigError } from './server/config.ts'
import { isOptionsError } from './lib/options.ts'
import { isStartupError } from './lib/startup-error.ts'
import { COMMANDS, usage, UsageError } from './cli/commands.ts'

export async function main (argv: string[]): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`gatehouse: unknown command "${name}"\n\n${usage()}`)
    return 2
  }
  try {
    const config = loadConfig()
    return await command.run(args, config)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`gatehouse ${name}: ${err.message}\n\n${command.usage}\n`)
      return 2
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`gatehouse: bad configuration: ${err.message}\n`)
      return 1
    }
    if (isStartupError(err) || isOptionsError(err)) {
      process.stderr.write(`gatehouse ${name}: ${err.message}\n`)
      return 1
    }
    const message = (err as Error).message ?? String(err)
    process.stderr.write(`gatehouse ${name}: ${message}\n`)
    return 1
  }
}

const invoked = process.argv[1] ?? ''
if (invoked.endsWith('cli.ts') || invoked.endsWith('cli.js')) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    process.stderr.write(`gatehouse: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
