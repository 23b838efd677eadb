// Two instances sharing one database and Redis: a replay detected on one instance kills the
// session's access tokens on the other (revokeSids travels over the Redis bus), and a rotation on
// one instance is reuse on the other.
import t from 'tap'
import { providers, createTestDatabase } from '../helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON } from '../helpers/redis.ts'
import { accessVerdict, login, refresh, sessionApp } from './helpers.ts'

const redis = await redisUrl()

for (const { provider, skip } of await providers()) {
  t.test(`two instances on ${provider} with Redis`, { skip: skip || (redis === null ? REDIS_SKIP_REASON : false) }, async (t) => {
    const db = await createTestDatabase(provider)
    t.teardown(() => db.drop())
    const env = { REDIS_URL: redis! }
    const a = await sessionApp(t, { databaseUrl: db.url, env })
    const b = await sessionApp(t, { databaseUrl: db.url, env })

    const { tokens } = await login(a.app)
    const rotated = await refresh(a.app, tokens.refresh_token)
    t.equal(rotated.statusCode, 200)
    const successor = rotated.json()
    t.equal(await accessVerdict(a.app, successor.access_token), 'ok')

    // The old token is replayed against the other instance.
    const replay = await refresh(b.app, tokens.refresh_token)
    t.equal(replay.json().code, 'REFRESH_TOKEN_REUSED', 'reuse is detected wherever it arrives')

    // Instance A learns of the revocation through Redis, without asking the database.
    let verdict = 'ok'
    for (let i = 0; i < 50 && verdict === 'ok'; i++) {
      verdict = await accessVerdict(a.app, successor.access_token)
      if (verdict === 'ok') await new Promise((resolve) => setTimeout(resolve, 20))
    }
    t.equal(verdict, 'TOKEN_REVOKED', 'the session\'s access tokens die on every instance within a second')
    t.equal((await refresh(a.app, successor.refresh_token)).json().code, 'INVALID_REFRESH_TOKEN', 'the newest refresh token of the family is revoked with it')
  })
}
