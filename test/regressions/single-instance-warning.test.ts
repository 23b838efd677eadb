// Found by an outside test: two instances on one PostgreSQL and no Redis kept accepting a
// logged-out token on the other instance for 15 minutes, with no warning. Revocations are not
// shared without Redis, so start-up says so, loudly, on PostgreSQL (docs/deployment.md).
import t from 'tap'
import { build } from '../helpers/build.ts'
import { providers } from '../helpers/databases.ts'
import { REDIS_SKIP_REASON, redisUrl } from '../helpers/redis.ts'

const WARNING = 'PostgreSQL without REDIS_URL'
const warnings = (logs: string[]): string[] => logs.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((l) => l.level === 40).map((l) => l.msg)

for (const { provider, skip } of await providers()) {
  t.test(`the start-up warning about instances without Redis, on ${provider}`, { skip }, async (t) => {
    const { logs } = await build(t, { provider })
    const warned = warnings(logs).some((msg) => msg.startsWith(WARNING))
    t.equal(warned, provider === 'postgresql', provider === 'postgresql' ? 'PostgreSQL without Redis warns' : 'the embedded single-instance default does not')
  })
}

const redis = await redisUrl()
t.test('no warning when REDIS_URL is set', { skip: redis === null ? REDIS_SKIP_REASON : (await providers())[1].skip }, async (t) => {
  const { logs } = await build(t, { provider: 'postgresql', env: { REDIS_URL: redis as string } })
  t.notOk(warnings(logs).some((msg) => msg.startsWith(WARNING)))
})
