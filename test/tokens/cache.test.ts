// The verified-token cache makes a repeated token cheap without ever outliving the token: an
// entry expires at exp (and at iat + TTL), it is bounded, and a token without iat is never
// accepted. Time is moved by shifting Date.now, which the plugin reads.
import t from 'tap'
import { Doorkeeper, ExpiringLru } from '../../lib/verified-cache.ts'
import { buildProtected, createUser, bearer } from './helpers.ts'
import { nowSec, ourToken } from './forge.ts'

function shiftClock (t: { teardown: (fn: () => void) => void }): (ms: number) => void {
  const real = Date.now
  let offset = 0
  Date.now = () => real() + offset
  t.teardown(() => { Date.now = real })
  return (ms) => { offset += ms }
}

t.test('ExpiringLru', async (t) => {
  const lru = new ExpiringLru<number>(2)
  lru.set('a', 1, 1000)
  lru.set('b', 2, 1000)
  t.equal(lru.get('a', 0), 1, 'a is now the most recently used')
  lru.set('c', 3, 1000)
  t.equal(lru.get('b', 0), undefined, 'the least recently used entry was evicted')
  t.equal(lru.get('a', 0), 1)
  t.equal(lru.get('a', 1000), undefined, 'an entry is gone at its expiry time')
  t.equal(lru.size, 1, 'and dropped')
  t.throws(() => new ExpiringLru(0), RangeError)
})

t.test('a cached token never outlives exp', async (t) => {
  const { app, config } = await buildProtected(t, { app: { tokens: { clockTolerance: 0 } } })
  const user = await createUser(app)
  const advance = shiftClock(t)
  const token = ourToken(app, config.keysDir, user.id, { claims: { exp: nowSec() + 60 } })
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200, 'a cache hit')
  t.equal(app.tokens.stats().verifiedCacheSize, 1, 'the token is in the verified cache')
  advance(61_000)
  const res = await app.inject({ url: '/protected', headers: bearer(token) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'TOKEN_EXPIRED', 'expired although it had been cached')
})

t.test('the clock tolerance applies on top of exp, then the token fails', async (t) => {
  const { app, config } = await buildProtected(t)
  const user = await createUser(app)
  const advance = shiftClock(t)
  const token = ourToken(app, config.keysDir, user.id, { claims: { exp: nowSec() + 60 } })
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  advance(60_000 + 20_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200, '20 s past exp: inside the 30 s tolerance')
  advance(12_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'TOKEN_EXPIRED', '32 s past exp: expired')
})

t.test('a cached token never outlives iat + TTL (maxAge), whatever its exp', async (t) => {
  const { app, config } = await buildProtected(t, { app: { tokens: { clockTolerance: 0 } } })
  const user = await createUser(app)
  const advance = shiftClock(t)
  const token = ourToken(app, config.keysDir, user.id, { claims: { exp: nowSec() + 86_400 } })
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  advance((config.accessTokenTtl + 1) * 1000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'TOKEN_EXPIRED')
})

t.test('a token without iat is never accepted, before or after its exp', async (t) => {
  const { app, config } = await buildProtected(t)
  const user = await createUser(app)
  const advance = shiftClock(t)
  const token = ourToken(app, config.keysDir, user.id, { claims: { iat: undefined, exp: nowSec() + 60 } })
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'MISSING_CLAIM')
  t.equal(app.tokens.stats().verifiedCacheSize, 0, 'nothing was cached')
  advance(120_000)
  t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).json().code, 'MISSING_CLAIM')
})

t.test('the verified cache is bounded', async (t) => {
  const { app, config } = await buildProtected(t, { app: { tokens: { verifiedCacheSize: 3 } } })
  const user = await createUser(app)
  for (let i = 0; i < 10; i++) {
    const token = ourToken(app, config.keysDir, user.id)
    t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
    t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  }
  t.equal(app.tokens.stats().verifiedCacheSize, 3)
})

t.test('a token enters the cache on its second verification, not its first', async (t) => {
  const { app, config } = await buildProtected(t)
  const user = await createUser(app)
  const tokens = Array.from({ length: 50 }, () => ourToken(app, config.keysDir, user.id))
  for (const token of tokens) t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  t.equal(app.tokens.stats().verifiedCacheSize, 0, 'fifty tokens seen once each: none cached')
  for (const token of tokens) t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  t.equal(app.tokens.stats().verifiedCacheSize, 50, 'each seen a second time: all cached')
  for (const token of tokens) t.type(app.tokens.verifyCached(token), 'object', 'a cache hit')
})

t.test('a cache hit needs the whole token, not only the tail the cache is keyed by', async (t) => {
  const { app, config } = await buildProtected(t)
  const user = await createUser(app)
  const other = await createUser(app)
  const token = ourToken(app, config.keysDir, user.id)
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ url: '/protected', headers: bearer(token) })).statusCode, 200)
  t.ok(app.tokens.verifyCached(token) !== undefined, 'cached')
  // Another payload (another user) with the cached token's signature: same last characters.
  const [h, , sig] = token.split('.')
  const [, p] = ourToken(app, config.keysDir, other.id).split('.')
  const spliced = `${h}.${p}.${sig}`
  t.equal(app.tokens.verifyCached(spliced), undefined, 'not a cache hit')
  const res = await app.inject({ url: '/protected', headers: bearer(spliced) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'INVALID_SIGNATURE', 'verified in full, and refused')
})

t.test('Doorkeeper admits a key on its second sighting only, and forgets it once admitted', async (t) => {
  const door = new Doorkeeper(4)
  t.equal(door.admit('a'), false, 'first sighting: marked')
  t.equal(door.admit('a'), true, 'second sighting: admitted')
  t.equal(door.admit('a'), false, 'the mark was used up')
  door.admit('b')
  door.clear()
  t.equal(door.admit('b'), false, 'cleared')
})

t.test('ExpiringLru keeps a hot entry through a stream of new ones', async (t) => {
  const lru = new ExpiringLru<number>(100)
  lru.set('hot', 0, Infinity)
  let evictedAt = -1
  for (let i = 0; i < 10_000 && evictedAt < 0; i++) {
    lru.set(`cold-${i}`, i, Infinity)
    if (i % 10 === 0 && lru.get('hot', 0) !== 0) evictedAt = i
  }
  t.equal(evictedAt, -1, 'an entry used every 10 insertions (cache of 100) is never evicted')
  t.equal(lru.get('hot', 0), 0)
  t.equal(lru.size, 100)
})
