// The store gives each SQLite statement and transaction its own turn of the event loop
// (plugins/store/sqlite-turns.ts): a burst of queries must not run as one long turn in which
// no socket is read and no connection accepted.
import t from 'tap'
import { createTurns, pacedAdapter } from '../../plugins/store/sqlite-turns.ts'
import { createPrismaClient } from '../../plugins/store/client.ts'
import { createTestDatabase } from '../helpers/databases.ts'

/** Counts check phases: a setImmediate that schedules itself again runs once per turn. */
function turnCounter (): { now: () => number, stop: () => void } {
  let turn = 0
  let timer: NodeJS.Immediate | undefined
  const tick = (): void => { turn++; timer = setImmediate(tick) }
  timer = setImmediate(tick)
  return { now: () => turn, stop: () => clearImmediate(timer) }
}

t.test('turns: first come, first served, one per turn of the event loop', async (t) => {
  const turns = createTurns()
  const counter = turnCounter()
  t.teardown(counter.stop)
  const seen: Array<{ i: number, turn: number }> = []
  const asked = Array.from({ length: 20 }, async (_x, i) => { await turns.next(); seen.push({ i, turn: counter.now() }) })
  t.equal(turns.waiting(), 20, 'every caller waits, none goes through at once')
  await Promise.all(asked)
  t.same(seen.map((s) => s.i), Array.from({ length: 20 }, (_x, i) => i), 'in the order asked')
  for (let k = 1; k < seen.length; k++) {
    t.ok(seen[k].turn > seen[k - 1].turn, `caller ${k} went through on a later turn than caller ${k - 1}`)
  }
  t.equal(turns.waiting(), 0)
  await turns.next()
  t.pass('a caller after the queue drained goes through too')
})

t.test('turns: a long queue is served in order', async (t) => {
  const turns = createTurns()
  const order: number[] = []
  await Promise.all(Array.from({ length: 3000 }, async (_x, i) => { await turns.next(); order.push(i) }))
  t.equal(order.length, 3000)
  t.ok(order.every((v, i) => v === i), 'FIFO across queue compactions')
})

t.test('pacedAdapter: top-level calls wait for a turn, others pass through on the adapter', async (t) => {
  const turns = createTurns()
  const calls: string[] = []
  const adapter = {
    name: 'fake',
    async queryRaw (q: string) { calls.push(`query ${q}`); return q.length },
    async executeRaw (q: string) { calls.push(`execute ${q}`); return 1 },
    async executeScript (s: string) { calls.push(`script ${s}`) },
    async startTransaction () { calls.push('begin'); return { tx: true } },
    dispose () { calls.push(`dispose ${this.name}`) }
  }
  const paced = pacedAdapter(adapter, turns)
  const pending = paced.queryRaw('abc')
  t.same(calls, [], 'the query has not run yet')
  t.equal(turns.waiting(), 1)
  t.equal(await pending, 3, 'its result comes back')
  t.equal(await paced.executeRaw('x'), 1)
  t.same(await paced.startTransaction(), { tx: true })
  await paced.executeScript('s')
  paced.dispose()
  t.same(calls, ['query abc', 'execute x', 'begin', 'script s', 'dispose fake'], 'called on the adapter itself')
  t.equal(paced.name, 'fake', 'properties read through')
})

t.test('the store\'s SQLite client: a burst of queries leaves turns to the rest of the process', async (t) => {
  const db = await createTestDatabase('sqlite')
  const { prisma } = await createPrismaClient(db.url)
  t.teardown(async () => { await prisma.$disconnect(); await db.drop() })
  await prisma.$queryRaw`SELECT 1` // connected
  const [mode] = await prisma.$queryRaw<Array<{ journal_mode: string }>>`PRAGMA journal_mode`
  const [sync] = await prisma.$queryRaw<Array<{ synchronous: bigint | number }>>`PRAGMA synchronous`
  t.equal(mode.journal_mode, 'wal', 'WAL, as the migrations left the file')
  t.equal(Number(sync.synchronous), 1, 'synchronous=NORMAL, set by the store')
  const counter = turnCounter()
  t.teardown(counter.stop)
  const turnsSeen = new Set<number>()
  await Promise.all(Array.from({ length: 30 }, async () => {
    await prisma.$queryRaw`SELECT 1`
    turnsSeen.add(counter.now())
  }))
  t.equal(turnsSeen.size, 30, 'each of 30 concurrent queries answered on a turn of its own')
  const [a, b] = await prisma.$transaction([prisma.$queryRaw<Array<{ v: number }>>`SELECT 1 AS v`, prisma.$queryRaw<Array<{ v: number }>>`SELECT 2 AS v`])
  t.same([Number(a[0].v), Number(b[0].v)], [1, 2], 'a batch transaction still runs')
})
