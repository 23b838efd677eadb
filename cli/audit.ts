import { createPrismaClient } from '../plugins/store/client.ts'
import type { Command } from './commands.ts'
import { UsageError } from './errors.ts'
import { parseArgs, out } from './context.ts'

interface Row { id: string, type: string, outcome: string, reason: string | null, actorId: string | null, subjectId: string | null, ip: string | null, createdAt: Date }

function format (e: Row): string {
  return [e.createdAt.toISOString(), e.type, e.outcome, e.reason ?? '-', `actor=${e.actorId ?? '-'}`, `subject=${e.subjectId ?? '-'}`, `ip=${e.ip ?? '-'}`].join('  ')
}

export const auditCommand: Command = {
  summary: 'print the latest audit events, or follow new ones',
  usage: 'Usage: gatehouse audit tail [-n N | --lines N] [--type TYPE] [--follow]',
  async run (args, config) {
    const [action, ...rest] = args
    if (action !== 'tail') throw new UsageError(action === undefined ? 'name an action: tail' : `unknown action "${action}"`)
    const normalised = rest.map((a) => (a === '-n' ? '--lines' : a))
    const { positional, flags } = parseArgs(normalised, { lines: true, type: true, follow: false })
    if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`)
    const lines = Number(flags.get('lines') ?? 20)
    if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) throw new UsageError('--lines must be a whole number from 1 to 10000')
    const type = typeof flags.get('type') === 'string' ? flags.get('type') as string : undefined
    const { prisma } = await createPrismaClient(config.databaseUrl)
    try {
      const latest = await prisma.auditEvent.findMany({ where: type === undefined ? {} : { type }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: lines })
      for (const event of latest.reverse()) out(format(event))
      if (!flags.has('follow')) return 0
      let since = latest.at(-1)?.createdAt ?? new Date(0)
      const seen = new Set(latest.map((e) => e.id))
      let stop = false
      process.once('SIGINT', () => { stop = true })
      process.once('SIGTERM', () => { stop = true })
      while (!stop) {
        await new Promise((resolve) => setTimeout(resolve, 1000))
        const fresh = await prisma.auditEvent.findMany({ where: { createdAt: { gte: since }, ...(type === undefined ? {} : { type }) }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: 1000 })
        for (const event of fresh) {
          if (seen.has(event.id)) continue
          seen.add(event.id)
          out(format(event))
          since = event.createdAt
        }
      }
      return 0
    } finally {
      await prisma.$disconnect()
    }
  }
}
