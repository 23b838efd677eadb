// Two instances on one database and one Redis: a TOTP code is accepted once in total, however
// the answers are spread over the instances (even at the same moment), and wrong answers on
// either instance add up in the shared per-account throttle.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestDatabase, providers } from '../helpers/databases.ts'
import { redisUrl, REDIS_SKIP_REASON, uniquePrefix } from '../helpers/redis.ts'
import { PASSWORD, TestClock, enrolTotp, mfaServer, registerUser, type MfaServer } from './helpers.ts'

const redis = await redisUrl()

for (const { provider, skip } of await providers()) {
  t.test(`two instances on ${provider} with Redis`, { skip: skip || (redis === null ? REDIS_SKIP_REASON : false) }, async (t) => {
    const db = await createTestDatabase(provider)
    const keysDir = mkdtempSync(join(tmpdir(), 'gatehouse-mfa-shared-keys-'))
    t.teardown(async () => {
      await db.drop()
      rmSync(keysDir, { recursive: true, force: true })
    })
    const clock = new TestClock()
    const prefix = uniquePrefix()
    const shared = { databaseUrl: db.url, keysDir, clock, env: { REDIS_URL: redis! }, app: { rateLimit: { prefix } } }
    const a = await mfaServer(t, shared)
    const b = await mfaServer(t, shared)

    const user = await registerUser(a)
    const { secret, recoveryCodes } = await enrolTotp(a, user.token)
    const step = async (server: MfaServer): Promise<string> => {
      const res = await server.call('POST', '/auth/login', { body: { email: user.email, password: PASSWORD } })
      t.equal(res.body.code, 'MFA_REQUIRED')
      return res.body.mfa_token
    }
    const verify = (server: MfaServer, mfaToken: string, code: string) => server.call('POST', '/auth/mfa/verify', { body: { mfa_token: mfaToken, code } })

    for (let round = 1; round <= 5; round++) {
      clock.advance(30)
      const code = clock.code(secret)
      const [tokenA, tokenB] = await Promise.all([step(a), step(b)])
      const answers = await Promise.all([verify(a, tokenA, code), verify(b, tokenB, code)])
      const statuses = answers.map((r) => r.status).sort()
      t.same(statuses, [200, 401], `round ${round}: the same code at the same moment on both instances is accepted once`)
      t.equal(answers.find((r) => r.status === 401)!.body.code, 'INVALID_MFA_CODE')
    }

    for (const recoveryCode of recoveryCodes.slice(0, 3)) {
      const [tokenA, tokenB] = await Promise.all([step(a), step(b)])
      const answers = await Promise.all([
        a.call('POST', '/auth/mfa/verify', { body: { mfa_token: tokenA, recovery_code: recoveryCode } }),
        b.call('POST', '/auth/mfa/verify', { body: { mfa_token: tokenB, recovery_code: recoveryCode } })
      ])
      t.same(answers.map((r) => r.status).sort(), [200, 401], 'a recovery code presented on both instances at once works once')
    }

    clock.advance(30)
    const code = clock.code(secret)
    t.equal((await verify(b, await step(b), code)).status, 200, 'accepted on B')
    t.equal((await verify(a, await step(a), code)).body.code, 'INVALID_MFA_CODE', 'then refused on A')

    // Failures add up across instances in the shared throttle (5 free, then a back-off). A
    // success first, so the refusals above are forgotten.
    clock.advance(30)
    t.equal((await verify(a, await step(a), clock.code(secret))).status, 200)
    const wrong = clock.code(secret, 30) === '000000' ? '111111' : '000000'
    const onA = await step(a)
    const onB = await step(b)
    for (let i = 0; i < 3; i++) t.equal((await verify(a, onA, wrong)).body.code, 'INVALID_MFA_CODE')
    for (let i = 0; i < 2; i++) t.equal((await verify(b, onB, wrong)).body.code, 'INVALID_MFA_CODE')
    const limited = await verify(a, onA, clock.code(secret, 30))
    t.equal(limited.status, 429, 'five failures spread over two instances start the back-off')
  })
}
