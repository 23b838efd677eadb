// fastify.loginThrottle: free attempts, exponential back-off with a ceiling, reset on success,
// reservations and their timeout, hashed keys. In memory and in Redis, with an injected clock.
import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import Fastify from 'fastify'
import { rateLimit, resolveOptions } from '../../plugins/rate-limit/index.ts'
import { backoffDelay, MemoryThrottle } from '../../plugins/rate-limit/login-throttle.ts'
import { tinyApp, variants, manualClock, PASSWORD, login, RATE_LIMITED_BODY } from './helpers.ts'

t.test('backoffDelay: free attempts, then 1 s doubling up to 15 min', async (t) => {
  const o = resolveOptions().loginThrottle
  t.same([0, 1, 2, 3, 4].map((n) => backoffDelay(n, o)), [0, 0, 0, 0, 0])
  t.same([5, 6, 7, 8, 9, 10, 14, 15, 16, 100, 10_000].map((n) => backoffDelay(n, o)),
    [1000, 2000, 4000, 8000, 16_000, 32_000, 512_000, 900_000, 900_000, 900_000, 900_000])
})

async function throttleApp (t: Test, store: object, clock: ReturnType<typeof manualClock>, loginThrottle = {}) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(rateLimit, { ...store, clock: clock.now, loginThrottle })
  await app.ready()
  return app
}

async function refusal (promise: Promise<unknown>): Promise<{ code?: string, statusCode?: number, headers?: Record<string, string> }> {
  try {
    await promise
  } catch (err) {
    return err as { code?: string, statusCode?: number, headers?: Record<string, string> }
  }
  throw new Error('begin() was expected to refuse')
}

for (const variant of await variants()) {
  t.test(`${variant.name} store`, { skip: variant.skip }, async (t) => {
    t.test('after 5 failures (from many addresses) the account backs off; the right password is refused with the same 429', async (t) => {
      const clock = manualClock()
      const { app, verifications } = await tinyApp(t, { rateLimit: { ...await variant.store(t), clock: clock.now } })
      let ip = 1
      const attempt = (password: string) => login(app, 'victim@example.com', password, `10.0.0.${ip++}`)
      for (let i = 0; i < 5; i++) t.equal((await attempt('wrong password guess')).json().code, 'INVALID_CREDENTIALS')
      t.equal(verifications(), 5)

      const sixth = await attempt('wrong password guess')
      t.equal(sixth.statusCode, 429, 'the 6th consecutive failure is limited')
      t.same(sixth.json(), RATE_LIMITED_BODY)
      t.equal(sixth.headers['retry-after'], '1')
      const right = await attempt(PASSWORD)
      t.equal(right.statusCode, 429, 'a correct password during the back-off is refused too')
      t.equal(right.body, sixth.body, 'with byte for byte the same body')
      t.equal(verifications(), 5, 'no password was checked during the back-off')

      // Same body as a per-IP limit: nothing tells the attacker which limit hit.
      for (let i = 0; i < 10; i++) await login(app, `other${i}@example.com`, PASSWORD, '10.9.9.9')
      const perIp = await login(app, 'other@example.com', PASSWORD, '10.9.9.9')
      t.equal(perIp.statusCode, 429)
      t.equal(perIp.body, sixth.body, 'the per-IP 429 has the same body')

      clock.advance(1000)
      t.equal((await attempt('wrong password guess')).statusCode, 401, 'after 1 s one more try')
      t.equal((await attempt('wrong password guess')).headers['retry-after'], '2', 'the back-off doubled')
      clock.advance(2000)
      t.equal((await attempt(PASSWORD)).statusCode, 200, 'the right password after the back-off')
      for (let i = 0; i < 5; i++) t.equal((await attempt('wrong password guess')).statusCode, 401, 'a success reset the count')
      t.equal((await attempt('wrong password guess')).statusCode, 429)
      t.equal((await login(app, 'bystander@example.com', 'wrong password guess', '10.1.0.1')).statusCode, 401, 'other accounts are unaffected')
    })

    t.test('the back-off doubles up to 15 minutes and never becomes a lock', async (t) => {
      const clock = manualClock()
      const app = await throttleApp(t, await variant.store(t), clock)
      for (let i = 0; i < 5; i++) await (await app.loginThrottle.begin('a@example.com')).fail()
      const waits: number[] = []
      for (let i = 0; i < 14; i++) {
        const err = await refusal(app.loginThrottle.begin('a@example.com'))
        t.equal(err.code, 'RATE_LIMITED')
        t.equal(err.statusCode, 429)
        const wait = Number(err.headers?.['retry-after'])
        waits.push(wait)
        clock.advance(wait * 1000 - 1)
        t.equal((await refusal(app.loginThrottle.begin('a@example.com'))).code, 'RATE_LIMITED', 'still refused 1 ms before the end')
        clock.advance(1)
        await (await app.loginThrottle.begin('a@example.com')).fail()
      }
      t.same(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900])
      clock.advance(900_000)
      const attempt = await app.loginThrottle.begin('a@example.com')
      await attempt.succeed()
      for (let i = 0; i < 5; i++) await (await app.loginThrottle.begin('a@example.com')).fail()
      t.equal((await refusal(app.loginThrottle.begin('a@example.com'))).headers?.['retry-after'], '1', 'after a success the back-off starts from 1 s again')
    })

    t.test('reservations count with failures; unsettled ones expire; release() counts nothing', async (t) => {
      const clock = manualClock()
      const app = await throttleApp(t, await variant.store(t), clock)
      for (let i = 0; i < 3; i++) await (await app.loginThrottle.begin('b@example.com')).fail()
      const held = [await app.loginThrottle.begin('b@example.com'), await app.loginThrottle.begin('b@example.com')]
      const busy = await refusal(app.loginThrottle.begin('b@example.com'))
      t.equal(busy.code, 'RATE_LIMITED', '3 failures + 2 in flight = the 5 free attempts')
      t.equal(busy.headers?.['retry-after'], '1')
      await held[0].release?.()
      const third = await app.loginThrottle.begin('b@example.com')
      t.ok(third, 'a released slot can be taken again')
      await held[1].release?.()
      await third.release?.()

      // Requests that crashed before fail()/succeed(): the slots come back after the timeout.
      for (let i = 0; i < 5; i++) await app.loginThrottle.begin('c@example.com')
      t.equal((await refusal(app.loginThrottle.begin('c@example.com'))).code, 'RATE_LIMITED')
      clock.advance(29_999)
      t.equal((await refusal(app.loginThrottle.begin('c@example.com'))).code, 'RATE_LIMITED')
      clock.advance(1)
      const after = await app.loginThrottle.begin('c@example.com')
      await after.fail()
      await after.fail()
      await after.succeed()
      for (let i = 0; i < 4; i++) await (await app.loginThrottle.begin('c@example.com')).fail()
      t.equal((await refusal(app.loginThrottle.begin('c@example.com'))).code, 'RATE_LIMITED', 'fail() twice counted once; the later succeed() was ignored')
    })

    t.test('failures are forgotten 12 h after the last one', async (t) => {
      const clock = manualClock()
      const app = await throttleApp(t, await variant.store(t), clock)
      for (let i = 0; i < 4; i++) await (await app.loginThrottle.begin('d@example.com')).fail()
      clock.advance(12 * 3_600_000)
      for (let i = 0; i < 4; i++) await (await app.loginThrottle.begin('d@example.com')).fail()
      t.ok(await app.loginThrottle.begin('d@example.com'), 'the 4 old failures no longer count')
    })

    t.test('options change the free attempts and the delays', async (t) => {
      const clock = manualClock()
      const app = await throttleApp(t, await variant.store(t), clock, { freeAttempts: 2, baseDelayMs: 10_000, maxDelayMs: 30_000 })
      for (let i = 0; i < 2; i++) await (await app.loginThrottle.begin('e@example.com')).fail()
      const waits: string[] = []
      for (let i = 0; i < 4; i++) {
        const err = await refusal(app.loginThrottle.begin('e@example.com'))
        waits.push(String(err.headers?.['retry-after']))
        clock.advance(Number(err.headers?.['retry-after']) * 1000)
        await (await app.loginThrottle.begin('e@example.com')).fail()
      }
      t.same(waits, ['10', '20', '30', '30'])
    })
  })
}

t.test('Redis keys hold a SHA-256 of the account, never the email', { skip: (await variants())[1].skip }, async (t) => {
  const variant = (await variants())[1]
  const store = await variant.store(t)
  const clock = manualClock()
  const app = await throttleApp(t, store, clock)
  await (await app.loginThrottle.begin('secret.person@example.com')).fail()
  const keys = await store.redis!.keys(`${store.prefix}*`)
  t.ok(keys.length > 0)
  const digest = createHash('sha256').update('secret.person@example.com').digest('hex')
  t.ok(keys.some((k) => k.includes(digest)), 'keyed by the digest')
  t.notOk(keys.some((k) => /secret|example/.test(k)), `no raw email in ${keys.join(', ')}`)
  t.ok((await store.redis!.pttl(keys.find((k) => !k.endsWith(':inflight'))!)) > 0, 'the record expires')
})

t.test('the in-memory records stay bounded', async (t) => {
  const clock = manualClock()
  const memory = new MemoryThrottle(resolveOptions().loginThrottle, 50)
  for (let i = 0; i < 500; i++) await memory.fail(`k${i}`, 'x', clock.now())
  for (let i = 0; i < 500; i++) memory.decide(`n${i}`, 'y', clock.now())
  t.equal(memory.size, 50, 'a spray of accounts cannot grow the map past maxEntries')
})
