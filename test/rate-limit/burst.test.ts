// 100 parallel wrong logins for one account, from 100 addresses (so no per-IP limit helps):
// the number of argon2 verifications that actually ran must not exceed the free attempts.
import t from 'tap'
import { tinyApp, variants, login, connectRedis, manualClock, RATE_LIMITED_BODY } from './helpers.ts'
import { redisUrl } from '../helpers/redis.ts'

const BURST = 100
const FREE = 5

function addresses (n: number, base: number): string[] {
  return Array.from({ length: n }, (_, i) => `172.16.${base}.${i + 1}`)
}

for (const variant of await variants()) {
  t.test(`${variant.name} store: ${BURST} parallel wrong logins reach argon2 at most ${FREE} times`, { skip: variant.skip }, async (t) => {
    // A stopped clock: however slow the machine, the 1 s back-off cannot end during the test.
    const clock = manualClock()
    const { app, verifications } = await tinyApp(t, { rateLimit: { ...await variant.store(t), clock: clock.now } })
    const responses = await Promise.all(addresses(BURST, 1).map((ip) => login(app, 'target@example.com', 'wrong password guess', ip)))
    const statuses = responses.map((r) => r.statusCode)
    t.equal(verifications(), FREE, `argon2 ran ${verifications()} times`)
    t.equal(statuses.filter((s) => s === 401).length, FREE, 'the free attempts were answered 401')
    t.equal(statuses.filter((s) => s === 429).length, BURST - FREE, 'every other attempt 429')
    for (const r of responses.filter((r) => r.statusCode === 429)) {
      if (JSON.stringify(r.json()) !== JSON.stringify(RATE_LIMITED_BODY) || r.headers['retry-after'] === undefined) t.fail(`unexpected 429: ${r.body}`)
    }

    const second = await Promise.all(addresses(BURST, 2).map((ip) => login(app, 'target@example.com', 'wrong password guess', ip)))
    t.equal(verifications(), FREE, 'during the back-off a second burst reaches argon2 no more')
    t.ok(second.every((r) => r.statusCode === 429))
  })
}

const redis = (await variants())[1]
t.test(`two app instances on one Redis: ${BURST} parallel wrong logins split between them reach argon2 at most ${FREE} times`, { skip: redis.skip }, async (t) => {
  const store = await redis.store(t)
  const clock = manualClock()
  const a = await tinyApp(t, { rateLimit: { ...store, clock: clock.now } })
  // A second client, as a second process would have.
  const b = await tinyApp(t, { rateLimit: { redis: await connectRedis(t, await redisUrl() as string), prefix: store.prefix, clock: clock.now } })
  const responses = await Promise.all(addresses(BURST, 3).map((ip, i) => login(i % 2 === 0 ? a.app : b.app, 'shared@example.com', 'wrong password guess', ip)))
  t.equal(a.verifications() + b.verifications(), FREE, `argon2 ran ${a.verifications()} + ${b.verifications()} times`)
  t.equal(responses.filter((r) => r.statusCode === 429).length, BURST - FREE)
})
