// The mfa_token is bound to the password check that made it: a password change, a logout-all or
// a disabled account in between ends it, and it lives 5 minutes.
import t from 'tap'
import { PASSWORD, enrolTotp, mfaServer, registerUser } from './helpers.ts'

const NEW_PASSWORD = 'another correct horse battery staple'

t.test('the mfa_token dies with the password check behind it', async (t) => {
  const server = await mfaServer(t, { env: { ADMIN_EMAIL: 'admin@example.com', ADMIN_PASSWORD: PASSWORD } })
  const { clock } = server
  const user = await registerUser(server)
  const { secret } = await enrolTotp(server, user.token)
  const step = async (password = PASSWORD): Promise<string> => {
    const res = await server.call('POST', '/auth/login', { body: { email: user.email, password } })
    t.equal(res.body.code, 'MFA_REQUIRED')
    return res.body.mfa_token
  }
  const verify = (mfaToken: string) => server.call('POST', '/auth/mfa/verify', { body: { mfa_token: mfaToken, code: clock.code(secret) } })

  const beforeChange = await step()
  // The account has a second factor: a password-only token changes the password with a current code.
  const changed = await server.call('POST', '/auth/password', { token: user.token, body: { current_password: PASSWORD, new_password: NEW_PASSWORD, code: clock.code(secret) } })
  t.equal(changed.status, 204)
  // A fresh step, so the code below is refused for the password change and not as a replay.
  clock.advance(30)
  t.equal((await verify(beforeChange)).body.code, 'INVALID_MFA_CODE', 'a password change ends a pending second step')
  const afterChange = await step(NEW_PASSWORD)
  t.equal((await verify(afterChange)).status, 200, 'a step made with the new password works')
  clock.advance(30)

  const beforeLogoutAll = await step(NEW_PASSWORD)
  const session = await verify(await step(NEW_PASSWORD))
  t.equal(session.status, 200)
  clock.advance(30)
  t.equal((await server.call('POST', '/auth/logout-all', { token: session.body.access_token })).status, 204)
  t.equal((await verify(beforeLogoutAll)).body.code, 'INVALID_MFA_CODE', 'logout-all ends it too')

  const late = await step(NEW_PASSWORD)
  clock.advance(301)
  t.equal((await verify(late)).body.code, 'INVALID_MFA_CODE', 'an mfa_token lives 5 minutes')

  const beforeDisable = await step(NEW_PASSWORD)
  const admin = await server.call('POST', '/auth/login', { body: { email: 'admin@example.com', password: PASSWORD } })
  t.equal((await server.call('PATCH', `/admin/users/${user.id}`, { token: admin.body.access_token, body: { disabled: true } })).status, 200)
  clock.advance(30)
  const disabled = await verify(beforeDisable)
  t.equal(disabled.status, 401)
  t.equal(disabled.body.code, 'ACCOUNT_DISABLED', 'a disabled account gets no tokens from a pending step')
})
