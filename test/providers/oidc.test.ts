// Sign-in with a real OpenID Connect provider (oidc-provider on loopback) over HTTP: the flow,
// the browser binding of the state, nonce and ID token validation, code reuse, the redirect
// allowlist, login codes, discovery outages. On SQLite, and on PostgreSQL for the main flow.
import t from 'tap'
import { SignJWT, importJWK } from 'jose'
import { buildGatehouse, denyAtOidc, loginAtOidc, startOidcProvider } from './helpers.ts'
import { callback, claims, exchange, loginBody, me, oidcSignIn, returned, start } from './flow.ts'
import { providers as databases } from '../helpers/databases.ts'
import { providerKeys } from '../trusted-issuers/helpers.ts'

t.setTimeout(15 * 60_000)

for (const { provider, skip } of await databases()) {
  t.test(`a first sign-in creates the user; the next one signs in the same user (${provider})`, { skip }, async (t) => {
    const op = await startOidcProvider(t)
    const gh = await buildGatehouse(t, { oidc: op, database: provider })
    op.users.set('alice', { email: 'Alice@Example.test', email_verified: true, name: 'Alice A' })

    const listed = await gh.app.inject({ url: '/auth/providers' })
    t.equal(listed.statusCode, 200)
    t.same(listed.json(), [{ id: 'acme', name: 'Acme ID' }])

    const flow = await start(gh, 'acme')
    const authorize = new URL(flow.location)
    t.equal(authorize.origin + authorize.pathname, `${op.issuer}/auth`, 'to the discovered authorization endpoint')
    t.equal(authorize.searchParams.get('code_challenge_method'), 'S256')
    t.match(authorize.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
    t.match(authorize.searchParams.get('state'), /^[A-Za-z0-9_-]{43}$/)
    t.match(authorize.searchParams.get('nonce'), /^[A-Za-z0-9_-]{43}$/)
    t.equal(authorize.searchParams.get('redirect_uri'), gh.callbackUrl('acme'))
    t.equal(authorize.searchParams.get('scope'), 'openid email profile')
    t.match(flow.setCookie, /HttpOnly/i)
    t.match(flow.setCookie, /SameSite=Lax/i)
    t.match(flow.setCookie, /Path=\/auth\/providers/)
    t.match(flow.setCookie, /Max-Age=600/)
    t.notOk(flow.setCookie.includes(authorize.searchParams.get('state')!), 'the cookie is not the state')

    const back = await callback(gh, await loginAtOidc(op, flow.location, 'alice'), flow.cookie)
    const landed = returned(back)
    t.equal(landed.origin + landed.pathname, gh.redirectUri)
    t.same([...landed.searchParams.keys()], ['code'], 'only a login code travels in the URL')
    t.equal(back.headers['referrer-policy'], 'no-referrer')
    t.match([back.headers['set-cookie']].flat().join('\n'), /gatehouse_provider_flow=;/, 'the flow cookie is cleared')

    t.equal(op.lastClientAuth(), 'client_secret_basic', 'the default client authentication')
    const body = await loginBody(gh, landed)
    t.equal(body.user.email, 'alice@example.test', 'the address is normalised')
    t.equal(body.user.email_verified, true, 'the provider asserted it')
    t.ok(typeof body.refresh_token === 'string')
    t.same(claims(body.access_token).amr, ['fed'])
    const profile = await me(gh, body.access_token)
    t.equal(profile.name, 'Alice A')
    t.match(profile.providers, [{ id: 'acme', name: 'Acme ID', email: 'Alice@Example.test' }])

    const again = await loginBody(gh, await oidcSignIn(gh, op, 'alice'))
    t.equal(again.user.id, body.user.id, 'the identity signs in the same user')
    t.equal(await gh.app.store.prisma.user.count(), 1)
    t.equal(await gh.app.store.prisma.providerIdentity.count(), 1)
    const row = await gh.app.store.prisma.providerIdentity.findFirstOrThrow()
    t.equal(row.issuer, op.issuer)
    t.equal(row.subject, 'alice')
    t.equal(row.accessToken, null, 'provider tokens are not kept without storeTokens')
    const flows = await gh.app.store.prisma.providerFlow.findMany()
    for (const f of flows) {
      t.notOk(JSON.stringify(f).includes(authorize.searchParams.get('state')!), 'the state is stored only hashed')
      t.notOk(JSON.stringify(f).includes(flow.cookie.split('=')[1]), 'the browser binding is stored only hashed')
    }
  })

  t.test(`two callbacks of the same new identity at once make one user and one identity (${provider})`, { skip }, async (t) => {
    const op = await startOidcProvider(t)
    const gh = await buildGatehouse(t, { oidc: op, database: provider })
    const flows = await Promise.all([start(gh, 'acme'), start(gh, 'acme'), start(gh, 'acme')])
    const urls = await Promise.all(flows.map(async (f) => await loginAtOidc(op, f.location, 'racer')))
    const landed = await Promise.all(urls.map(async (url, i) => returned(await callback(gh, url, flows[i].cookie))))
    const ids = new Set<string>()
    for (const l of landed) ids.add((await loginBody(gh, l)).user.id)
    t.equal(ids.size, 1, 'every callback signed in the same user')
    t.equal(await gh.app.store.prisma.user.count(), 1)
    t.equal(await gh.app.store.prisma.providerIdentity.count(), 1)
  })
}

t.test('the user denies at the provider: access_denied, no one signed in', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op })
  const flow = await start(gh, 'acme')
  const landed = returned(await callback(gh, await denyAtOidc(op, flow.location), flow.cookie))
  t.equal(landed.searchParams.get('error'), 'access_denied')
  t.equal(landed.searchParams.get('code'), null)
  t.equal(await gh.app.store.prisma.user.count(), 0)
  t.equal(op.tokenRequests(), 0, 'no code was exchanged')
})

t.test('a callback from another browser signs no one in, and leaves the flow to its own browser', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op })
  const victim = await start(gh, 'acme')
  const attacker = await start(gh, 'acme')
  const url = await loginAtOidc(op, victim.location, 'victim')

  for (const cookie of [undefined, attacker.cookie, 'gatehouse_provider_flow=forged']) {
    const res = await callback(gh, url, cookie)
    t.equal(res.statusCode, 400, `cookie ${cookie ?? 'none'}`)
    t.equal(res.json().code, 'INVALID_PROVIDER_STATE')
    t.equal(res.headers.location, undefined)
  }
  t.equal(op.tokenRequests(), 0, 'the code was never exchanged for another browser')
  t.equal(await gh.app.store.prisma.providerLoginCode.count(), 0)

  const landed = returned(await callback(gh, url, victim.cookie))
  t.ok(landed.searchParams.get('code'), 'the browser that started the flow completes it')
})

t.test('a replayed callback and an unknown or missing state are refused', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op })
  const flow = await start(gh, 'acme')
  const url = await loginAtOidc(op, flow.location, 'bob')
  t.ok(returned(await callback(gh, url, flow.cookie)).searchParams.get('code'))
  const replay = await callback(gh, url, flow.cookie)
  t.equal(replay.statusCode, 400)
  t.equal(replay.json().code, 'INVALID_PROVIDER_STATE', 'the flow is single use')
  t.equal(op.tokenRequests(), 1, 'the replayed code never reached the provider')

  const unknown = new URL(url)
  unknown.searchParams.set('state', 'x'.repeat(43))
  t.equal((await callback(gh, unknown.href, flow.cookie)).json().code, 'INVALID_PROVIDER_STATE')
  const missing = new URL(url)
  missing.searchParams.delete('state')
  t.equal((await callback(gh, missing.href, flow.cookie)).json().code, 'INVALID_PROVIDER_STATE')
  t.equal((await gh.app.inject({ url: '/auth/providers/nope/callback?state=a&code=b' })).statusCode, 404)
})

t.test('the provider rejects a code used before: invalid_response', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op })
  const first = await start(gh, 'acme')
  const firstUrl = new URL(await loginAtOidc(op, first.location, 'carol'))
  t.ok(returned(await callback(gh, firstUrl.href, first.cookie)).searchParams.get('code'))

  const second = await start(gh, 'acme')
  const reused = new URL(firstUrl)
  reused.searchParams.set('state', new URL(second.location).searchParams.get('state')!)
  const landed = returned(await callback(gh, reused.href, second.cookie))
  t.equal(landed.searchParams.get('error'), 'invalid_response')
  t.equal(landed.searchParams.get('code'), null)
  t.equal(op.tokenRequests(), 2, 'the provider saw the reused code and refused it')
})

t.test('an ID token with another nonce signs no one in', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op })
  const flow = await start(gh, 'acme')
  const tampered = new URL(flow.location)
  tampered.searchParams.set('nonce', 'an-attacker-chosen-nonce-value-0123456789ab')
  const landed = returned(await callback(gh, await loginAtOidc(op, tampered.href, 'dave'), flow.cookie))
  t.equal(landed.searchParams.get('error'), 'invalid_response')
  t.equal(await gh.app.store.prisma.user.count(), 0)
  t.equal(await gh.app.store.prisma.providerLoginCode.count(), 0)
})

t.test('a tampered or foreign-signed ID token signs no one in', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op })
  const foreignKey = await providerKeys('RS256', 'op-foreign')
  const cases: Array<[string, (idToken: string) => Promise<string>]> = [
    ['payload changed (sub of another user)', async (idToken) => {
      const [h, p, s] = idToken.split('.')
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'))
      payload.sub = 'someone-else'
      return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`
    }],
    ['signature stripped (alg none)', async (idToken) => {
      const [, p] = idToken.split('.')
      return `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${p}.`
    }],
    ['signed by a key not in the provider JWKS', async (idToken) => {
      const payload = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString('utf8'))
      const header = JSON.parse(Buffer.from(idToken.split('.')[0], 'base64url').toString('utf8'))
      return await new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: header.kid }).sign(await importJWK(foreignKey, 'RS256'))
    }],
    ['another audience, re-signed by a foreign key', async (idToken) => {
      const payload = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString('utf8'))
      return await new SignJWT({ ...payload, aud: 'another-client' }).setProtectedHeader({ alg: 'RS256', kid: foreignKey.kid! }).sign(await importJWK(foreignKey, 'RS256'))
    }]
  ]
  for (const [name, rewrite] of cases) {
    op.rewriteTokenResponse = async (body) => ({ ...body, id_token: await rewrite(String(body.id_token)) })
    const flow = await start(gh, 'acme')
    const landed = returned(await callback(gh, await loginAtOidc(op, flow.location, 'erin'), flow.cookie))
    t.equal(landed.searchParams.get('error'), 'invalid_response', name)
    t.equal(landed.searchParams.get('code'), null, name)
  }
  op.rewriteTokenResponse = null
  t.equal(await gh.app.store.prisma.user.count(), 0, 'no user was created')
  t.ok((await oidcSignIn(gh, op, 'erin')).searchParams.get('code'), 'the untouched answer signs in')
})

t.test('redirect_uri must be one of LOGIN_REDIRECT_URIS exactly', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op, redirectUris: ['https://app.example.test/callback', 'http://127.0.0.1:5173/auth/callback'] })
  for (const uri of ['https://evil.example.test/callback', 'https://app.example.test/callback/', 'https://app.example.test/callback?x=1', 'https://app.example.test/Callback', 'https://app.example.test.evil.test/callback']) {
    const res = await gh.app.inject({ url: `/auth/providers/acme/authorize?redirect_uri=${encodeURIComponent(uri)}` })
    t.equal(res.statusCode, 400, uri)
    t.equal(res.json().code, 'INVALID_REDIRECT_URI', uri)
    t.equal(res.headers['set-cookie'], undefined)
  }
  const none = await gh.app.inject({ url: '/auth/providers/acme/authorize' })
  t.equal(none.json().code, 'INVALID_REDIRECT_URI')
  t.equal((await gh.app.inject({ url: `/auth/providers/nope/authorize?redirect_uri=${encodeURIComponent(gh.redirectUri)}` })).statusCode, 404)
  const listed = await start(gh, 'acme', { redirect_uri: 'https://app.example.test/callback' })
  const landed = returned(await callback(gh, await loginAtOidc(op, listed.location, 'frank'), listed.cookie))
  t.equal(landed.origin + landed.pathname, 'https://app.example.test/callback')
})

t.test('a login code is single use and lives 60 seconds', async (t) => {
  const op = await startOidcProvider(t)
  let now = Date.now()
  const gh = await buildGatehouse(t, { oidc: op, clock: () => now })
  const first = (await oidcSignIn(gh, op, 'gina')).searchParams.get('code')!
  const results = await Promise.all([exchange(gh, first), exchange(gh, first)])
  t.same(results.map((r) => r.statusCode).sort(), [200, 401], 'two exchanges at once: one wins')
  const again = await exchange(gh, first)
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'INVALID_LOGIN_CODE')

  const late = (await oidcSignIn(gh, op, 'gina')).searchParams.get('code')!
  now += 61_000
  const expired = await exchange(gh, late)
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'INVALID_LOGIN_CODE')
  t.equal((await exchange(gh, 'not-a-code')).json().code, 'INVALID_LOGIN_CODE')
  const stored = await gh.app.store.prisma.providerLoginCode.findMany()
  t.notOk(stored.some((r) => r.codeHash === first || r.codeHash === late), 'codes are stored hashed')

  const cookieMode = await exchange(gh, (await oidcSignIn(gh, op, 'gina')).searchParams.get('code')!, { session: 'cookie' })
  t.equal(cookieMode.statusCode, 200)
  t.equal(cookieMode.json().refresh_token, undefined, 'cookie session: no refresh token in the body')
  t.match(String(cookieMode.headers['set-cookie']), /gatehouse_refresh=.*HttpOnly.*SameSite=Strict/i)
  t.equal(cookieMode.headers['cache-control'], 'no-store')
})

t.test('discovery outage: 503, then recovery without a restart', async (t) => {
  const op = await startOidcProvider(t)
  op.outage(true)
  let now = Date.now()
  const gh = await buildGatehouse(t, { oidc: op, clock: () => now })
  const discovery = '/.well-known/openid-configuration'
  for (let i = 0; i < 3; i++) {
    const res = await gh.app.inject({ url: `/auth/providers/acme/authorize?redirect_uri=${encodeURIComponent(gh.redirectUri)}` })
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'SERVICE_UNAVAILABLE')
    t.ok(res.headers['retry-after'])
    t.equal(res.headers['set-cookie'], undefined)
  }
  t.equal(op.server.count(discovery), 1, 'within the back-off the provider is not asked again')
  now += 6_000
  t.equal((await gh.app.inject({ url: `/auth/providers/acme/authorize?redirect_uri=${encodeURIComponent(gh.redirectUri)}` })).statusCode, 503)
  t.equal(op.server.count(discovery), 2, 'after it, it is')
  t.ok((await gh.app.inject({ url: '/auth/providers' })).statusCode === 200, 'the list does not need the provider')
  op.outage(false)
  now += 6_000
  const landed = await oidcSignIn(gh, op, 'henry')
  t.ok(landed.searchParams.get('code'), 'the provider is usable again')

  const flow = await start(gh, 'acme')
  const url = await loginAtOidc(op, flow.location, 'henry')
  op.outage(true)
  const down = returned(await callback(gh, url, flow.cookie))
  t.equal(down.searchParams.get('error'), 'temporarily_unavailable', 'a provider down at the code exchange')
})

t.test('tokenEndpointAuthMethod client_secret_post sends the secret in the body', async (t) => {
  const op = await startOidcProvider(t, { tokenEndpointAuthMethod: 'client_secret_post' })
  const gh = await buildGatehouse(t, { oidc: op, oidcEntry: { tokenEndpointAuthMethod: 'client_secret_post' } })
  t.ok((await oidcSignIn(gh, op, 'ivy')).searchParams.get('code'))
  t.equal(op.lastClientAuth(), 'client_secret_post', 'the secret went in the body')
  const basic = await buildGatehouse(t, { oidc: await startOidcProvider(t) })
  const other = basic.app.providers.get('acme')!
  t.equal(other.tokenEndpointAuthMethod, 'client_secret_basic', 'the default')
})

t.test('nothing secret reaches the log', async (t) => {
  const op = await startOidcProvider(t)
  const gh = await buildGatehouse(t, { oidc: op })
  const flow = await start(gh, 'acme')
  const url = new URL(await loginAtOidc(op, flow.location, 'jack'))
  const landed = returned(await callback(gh, url.href, flow.cookie))
  const code = landed.searchParams.get('code')!
  const body = await loginBody(gh, landed)
  const logs = gh.logs.join('\n')
  for (const secret of [url.searchParams.get('code')!, url.searchParams.get('state')!, flow.cookie.split('=')[1], code, body.access_token, op.clientSecret]) {
    t.notOk(logs.includes(secret), 'a secret in the log')
  }
})

t.test('an ID token signed with the provider\'s own key but a wrong claim is refused', async (t) => {
  const key = await providerKeys('RS256', 'op-own')
  const op = await startOidcProvider(t, { keys: [key] })
  const gh = await buildGatehouse(t, { oidc: op })
  const privateKey = await importJWK(key, 'RS256')
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, (claims: Record<string, unknown>) => Record<string, unknown>]> = [
    ['control: re-signed unchanged', (c) => c],
    ['another issuer', (c) => ({ ...c, iss: 'https://idp.evil.test' })],
    ['another audience', (c) => ({ ...c, aud: 'another-client' })],
    ['expired', (c) => ({ ...c, iat: now - 7200, exp: now - 3600 })],
    ['issued in the future', (c) => ({ ...c, iat: now + 3600, exp: now + 7200 })],
    ['another nonce', (c) => ({ ...c, nonce: 'not-the-nonce-of-this-flow' })],
    ['no nonce', (c) => { const { nonce: _n, ...rest } = c; return rest }]
  ]
  for (const [name, change] of cases) {
    op.rewriteTokenResponse = async (body) => {
      const claims = JSON.parse(Buffer.from(String(body.id_token).split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>
      return { ...body, id_token: await new SignJWT(change(claims)).setProtectedHeader({ alg: 'RS256', kid: key.kid! }).sign(privateKey) }
    }
    const flow = await start(gh, 'acme')
    const landed = returned(await callback(gh, await loginAtOidc(op, flow.location, 'kim'), flow.cookie))
    if (name.startsWith('control')) {
      t.ok(landed.searchParams.get('code'), 'a correctly signed, unchanged token is accepted: the key is the provider\'s')
    } else {
      t.equal(landed.searchParams.get('error'), 'invalid_response', name)
    }
  }
  op.rewriteTokenResponse = null
})
