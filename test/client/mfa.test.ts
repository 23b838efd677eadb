// The client helper against a listening server, for an account with TOTP: the `mfa` callback is
// asked for a code when the login answers MFA_REQUIRED, asked again after a wrong code, may answer
// with a recovery code, and may give up; without a callback the login throws MFA_REQUIRED. The
// code and the mfa_token never reach the client's log.
import t from 'tap'
import { createClient, GatehouseHttpError, type MfaPrompt } from '../../client/index.ts'
import { PASSWORD, enrolTotp, mfaServer, registerUser } from '../mfa/helpers.ts'

t.test('client helper: logins with a second factor', async (t) => {
  const server = await mfaServer(t)
  const user = await registerUser(server)
  const { secret, recoveryCodes } = await enrolTotp(server, user.token)
  const logged: string[] = []
  const logger = { debug: (...a: unknown[]) => logged.push(JSON.stringify(a)), info: (...a: unknown[]) => logged.push(JSON.stringify(a)), warn: (...a: unknown[]) => logged.push(JSON.stringify(a)), error: (...a: unknown[]) => logged.push(JSON.stringify(a)) }

  const prompts: MfaPrompt[] = []
  const answered: string[] = []
  const client = createClient({
    baseUrl: server.base,
    logger,
    mfa (prompt) {
      prompts.push(prompt)
      const code = prompt.attempt === 1 ? (server.clock.code(secret) === '000000' ? '111111' : '000000') : server.clock.code(secret)
      answered.push(code)
      return { code }
    }
  })
  t.teardown(() => client.close())
  const me = await client.login(user.email, PASSWORD)
  t.equal(me?.email, user.email)
  t.equal(prompts.length, 2, 'asked twice: the first code was wrong')
  t.same(prompts[0].methods, ['totp', 'recovery_code'])
  t.equal(prompts[1].attempt, 2)
  t.equal(prompts[1].previousError?.code, 'INVALID_MFA_CODE')
  t.equal((await client.me()).email, user.email, 'the session works')
  t.equal(await client.isAuthenticated(), true)

  server.clock.advance(30)
  const viaRecovery = createClient({ baseUrl: server.base, mfa: () => ({ recoveryCode: recoveryCodes[0] }) })
  t.teardown(() => viaRecovery.close())
  await viaRecovery.login(user.email, PASSWORD)
  t.equal((await viaRecovery.fetch('/auth/me')).status, 200, 'a recovery code completes the login too')

  const noCallback = createClient({ baseUrl: server.base })
  t.teardown(() => noCallback.close())
  const refused = await noCallback.login(user.email, PASSWORD).catch((err: unknown) => err)
  t.ok(refused instanceof GatehouseHttpError)
  t.equal((refused as GatehouseHttpError).code, 'MFA_REQUIRED')
  t.equal(await noCallback.isAuthenticated(), false)

  const givesUp = createClient({ baseUrl: server.base, mfa: () => null })
  t.teardown(() => givesUp.close())
  const gaveUp = await givesUp.login(user.email, PASSWORD).catch((err: unknown) => err)
  t.equal((gaveUp as GatehouseHttpError).code, 'MFA_REQUIRED', 'a callback that answers null gives the login up')

  let tries = 0
  const alwaysWrong = createClient({ baseUrl: server.base, mfa: () => { tries++; return { code: '12345x' } } })
  t.teardown(() => alwaysWrong.close())
  const wrong = await alwaysWrong.login(user.email, PASSWORD).catch((err: unknown) => err)
  t.equal((wrong as GatehouseHttpError).code, 'INVALID_MFA_CODE')
  t.equal(tries, 5, 'asked at most 5 times: the mfa_token takes 5 answers')

  const all = logged.join('\n')
  for (const code of answered) t.notOk(all.includes(`"${code}"`), 'no code in the client log')
  t.notMatch(all, /mfa_[A-Za-z0-9_-]{43}/, 'no mfa_token in the client log')
})
