// The membership cache of the default resolver: hits, invalidation, the unhealthy-bus bypass,
// and the race where a slow load started before an invalidation must not be cached.
import t from 'tap'
import { createMembershipCache } from '../../plugins/rbac/memberships.ts'

function setup (options: { ttlMs?: number, max?: number } = {}) {
  const state = new Map<string, Map<string, string>>([['u1', new Map([['o1', 'admin']])]])
  let loads = 0
  let healthy = true
  let now = 0
  let gate: Promise<void> | null = null
  const cache = createMembershipCache({
    ttlMs: options.ttlMs ?? 1000,
    max: options.max ?? 100,
    healthy: () => healthy,
    now: () => now,
    load: async (userId) => {
      loads++
      const snapshot = new Map(state.get(userId) ?? [])
      if (gate !== null) await gate
      return snapshot
    }
  })
  return {
    cache,
    state,
    loads: () => loads,
    setHealthy: (h: boolean) => { healthy = h },
    advance: (ms: number) => { now += ms },
    hold: () => { let release!: () => void; gate = new Promise((resolve) => { release = resolve }); return () => { gate = null; release() } }
  }
}

t.test('cached until invalidated or expired', async (t) => {
  const s = setup()
  t.equal(await s.cache.get('u1', 'o1'), 'admin')
  t.equal(await s.cache.get('u1', 'o2'), null)
  t.equal(s.loads(), 1, 'one load per user serves every organization')
  s.state.get('u1')?.set('o1', 'viewer')
  t.equal(await s.cache.get('u1', 'o1'), 'admin', 'stale until told')
  s.cache.invalidate('u1')
  t.equal(await s.cache.get('u1', 'o1'), 'viewer', 'fresh after invalidation')
  s.state.get('u1')?.delete('o1')
  s.advance(1001)
  t.equal(await s.cache.get('u1', 'o1'), null, 'fresh after the ttl')
})

t.test('bypassed while the bus is unhealthy', async (t) => {
  const s = setup()
  await s.cache.get('u1', 'o1')
  s.setHealthy(false)
  s.state.get('u1')?.set('o1', 'viewer')
  t.equal(await s.cache.get('u1', 'o1'), 'viewer', 'reads the database every time')
  const before = s.loads()
  await s.cache.get('u1', 'o1')
  t.equal(s.loads(), before + 1)
  t.equal(s.cache.size, 0, 'nothing is kept')
  s.setHealthy(true)
  await s.cache.get('u1', 'o1')
  t.equal(s.cache.size, 1)
})

t.test('a load that started before an invalidation is not cached', async (t) => {
  const s = setup()
  const release = s.hold()
  const slow = s.cache.get('u1', 'o1')
  s.state.get('u1')?.set('o1', 'viewer')
  s.cache.invalidate('u1')
  release()
  t.equal(await slow, 'admin', 'the in-flight request sees the state it read')
  t.equal(await s.cache.get('u1', 'o1'), 'viewer', 'the next request sees the change')
})

t.test('clear drops everything, including in-flight loads', async (t) => {
  const s = setup()
  const release = s.hold()
  const slow = s.cache.get('u1', 'o1')
  s.state.get('u1')?.delete('o1')
  s.cache.clear()
  release()
  await slow
  t.equal(await s.cache.get('u1', 'o1'), null)
})

t.test('bounded size', async (t) => {
  const s = setup({ max: 2 })
  for (const u of ['a', 'b', 'c']) await s.cache.get(u, 'o1')
  t.equal(s.cache.size, 2)
  const none = setup({ ttlMs: 0 })
  await none.cache.get('u1', 'o1')
  t.equal(none.cache.size, 0, 'ttl 0 disables the cache')
})
