// `gatehouse prisma`: Gatehouse's data model for an app that has its own Prisma schema. It prints
// the models of the package's prisma/schema.prisma (without its generator and datasource), or
// merges them into the app's schema between two marker lines, replacing an earlier merge. The app
// then generates one client for its models and Gatehouse's, creates the tables with its own
// migrations and passes the client to gatehouse-store (`store({ prisma, provider })`). See
// docs/store.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../lib/paths.ts'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs } from './context.ts'

export const BEGIN = '// gatehouse:begin (written by `gatehouse prisma --merge`; do not edit between the markers)'
export const END = '// gatehouse:end'
const BLOCK = /^(model|enum|generator|datasource|view|type)\s+(\w+)\s*\{[^}]*\}/gm

export class SchemaMergeError extends Error {
  override name = 'SchemaMergeError'
}

/** The model blocks (with their doc comments) of Gatehouse's schema, between the markers. */
export function gatehouseModels (schema = readFileSync(join(PACKAGE_ROOT, 'prisma', 'schema.prisma'), 'utf8')): string {
  const body = schema.slice(schema.search(/^(model|enum|generator|datasource)\s/m))
    .replace(/^(generator|datasource)\s+\w+\s*\{[^}]*\}\n*/gm, '')
    .trim()
  return `${BEGIN}\n${body}\n${END}\n`
}

function blockNames (schema: string): Set<string> {
  return new Set([...schema.matchAll(BLOCK)].filter((m) => m[1] === 'model' || m[1] === 'enum' || m[1] === 'view' || m[1] === 'type').map((m) => m[2]))
}

/** `appSchema` with Gatehouse's models in it: an earlier merge is replaced, else they are appended. */
export function mergeModels (appSchema: string, models = gatehouseModels()): string {
  const begin = appSchema.indexOf(BEGIN.slice(0, BEGIN.indexOf(' (')))
  const end = appSchema.indexOf(END)
  let own = appSchema
  if (begin !== -1 || end !== -1) {
    if (begin === -1 || end === -1 || end < begin) throw new SchemaMergeError('the schema has one gatehouse marker line without the other')
    own = appSchema.slice(0, begin) + appSchema.slice(end + END.length).replace(/^\n/, '')
  }
  const clash = [...blockNames(models)].filter((name) => blockNames(own).has(name))
  if (clash.length > 0) throw new SchemaMergeError(`the schema already defines ${clash.join(', ')}: rename the app's own model(s), Gatehouse's names are fixed`)
  if (begin !== -1) return appSchema.slice(0, begin) + models.trimEnd() + appSchema.slice(end + END.length)
  return `${own.trimEnd()}\n\n${models}`
}

export const prismaCommand: Command = {
  summary: 'print Gatehouse\'s Prisma models, or merge them into an app\'s own schema',
  usage: [
    'Usage: gatehouse prisma [--merge <schema.prisma>]',
    '  (no option)      print the models, to add to your schema',
    '  --merge <file>   write them into <file> between gatehouse marker lines (again: replaced in place)'
  ].join('\n'),
  async run (args) {
    const { positional, flags } = parseArgs(args, { merge: true })
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`)
    const target = flags.get('merge')
    if (target === undefined) {
      process.stdout.write(gatehouseModels())
      return 0
    }
    const file = String(target)
    if (!existsSync(file)) throw new UsageError(`${file} does not exist`)
    try {
      writeFileSync(file, mergeModels(readFileSync(file, 'utf8')))
    } catch (err) {
      if (err instanceof SchemaMergeError) {
        process.stderr.write(`gatehouse prisma: ${file}: ${err.message}\n`)
        return 1
      }
      throw err
    }
    process.stdout.write(`${file}: Gatehouse's models merged; generate the client and create the tables with your own migrations (prisma migrate)\n`)
    return 0
  }
}
