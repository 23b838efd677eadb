// The session routes with the rest of the app: register and login start sessions, a password
// change ends the other ones (row 45), logout accepts only a session's bearer token.
import t from 'tap'
import { createOAuthClient } from '../../plugins/sessions/clients.ts'
import { accessVerdict, PASSWORD, refresh, sessionApp } from './helpers.ts'

const json = { 'content-type': 'application/json' }

t.test('register, login, refresh, password change, logout through HTTP', async (t) => {
  const { app, logs } = await sessionApp(t)
  const email = 'grace@example.com'
  const registered = await app.inject({ method: 'POST', url: '/auth/register', headers: json, payload: { email, password: PASSWORD } })
  t.equal(registered.statusCode, 201)
  const laptop = registered.json()
  t.match(laptop.refresh_token, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/)

  const loggedIn = await app.inject({ method: 'POST', url: '/auth/login', headers: json, payload: { email, password: PASSWORD } })
  t.equal(loggedIn.statusCode, 200)
  const phone = loggedIn.json()
  t.not(phone.refresh_token.split('.')[0], laptop.refresh_token.split('.')[0], 'each login is its own session')

  const rotated = await refresh(app, phone.refresh_token)
  t.equal(rotated.statusCode, 200)
  const phoneNow = rotated.json()

  // The laptop changes the password: the phone's session ends, the laptop's goes on.
  const changed = await app.inject({
    method: 'POST',
    url: '/auth/password',
    headers: { ...json, authorization: `Bearer ${laptop.access_token}` },
    payload: { current_password: PASSWORD, new_password: 'a different long passphrase 42' }
  })
  t.equal(changed.statusCode, 204)
  const phoneRefresh = await refresh(app, phoneNow.refresh_token)
  t.equal(phoneRefresh.statusCode, 401)
  t.equal(phoneRefresh.json().code, 'TOKEN_REVOKED')
  t.equal(await accessVerdict(app, phoneNow.access_token), 'TOKEN_REVOKED', 'its access token stops at once')
  const laptopRefresh = await refresh(app, laptop.refresh_token)
  t.equal(laptopRefresh.statusCode, 200, 'the session that changed the password lives')

  // Logout takes a session's bearer token only.
  const basic = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Basic ${Buffer.from(`${email}:a different long passphrase 42`).toString('base64')}` } })
  t.equal(basic.statusCode, 400, 'Basic is not accepted here')
  t.equal(basic.json().code, 'MALFORMED_AUTHORIZATION')

  const client = await createOAuthClient(app.store.prisma, { name: 'Batch', grants: ['client_credentials'], roles: ['batch'] })
  const clientToken = await app.inject({
    method: 'POST',
    url: '/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}` },
    payload: 'grant_type=client_credentials'
  })
  const asClient = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${clientToken.json().access_token}` } })
  t.equal(asClient.statusCode, 403, 'a client token has no session to end')
  t.equal(asClient.json().code, 'FORBIDDEN')

  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${laptopRefresh.json().access_token}` } })
  t.equal(out.statusCode, 204)
  t.equal((await refresh(app, laptopRefresh.json().refresh_token)).json().code, 'TOKEN_REVOKED')

  for (const token of [laptop, phone, phoneNow, laptopRefresh.json()]) {
    t.notOk(logs.some((line) => line.includes(token.refresh_token.split('.')[1])), 'no refresh token in the logs')
  }
})
