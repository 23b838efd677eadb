#!/usr/bin/env node
// `npx gatehouse ...`: runs the compiled CLI when built, else the TypeScript source via tsx.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const compiled = join(root, 'dist', 'cli.js')
let main
if (existsSync(compiled)) {
  ({ main } = await import(compiled))
} else {
  const { register } = await import('tsx/esm/api')
  register()
  ;({ main } = await import(join(root, 'cli.ts')))
}
process.exit(await main(process.argv.slice(2)))
