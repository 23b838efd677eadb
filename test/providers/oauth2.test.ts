// Sign-in with a plain OAuth 2.0 provider of GitHub's shape (a real Fastify server on loopback:
// authorize, token, user and emails endpoints): the verified primary address, a user who
// denies, PKCE and single-use codes at the provider, client_secret_post, replayed state.
import t from 'tap'
import { buildGatehouse, loginAtGithub, startGithubProvider } from './helpers.ts'
import { keyServer } from '../trusted-issuers/helpers.ts'
import { callback, githubSignIn, loginBody, me, register, returned, start } from './flow.ts'

t.setTimeout(15 * 60_000)

t.test('a GitHub-shaped sign-in: user endpoint, verified primary address from the emails endpoint', async (t) => {
  const gh = await startGithubProvider(t)
  const app = await buildGatehouse(t, { github: gh })
  gh.users.set('octo', { id: 583231, login: 'octo', name: 'The Octocat', email: null, emails: [{ email: 'old@example.test', primary: false, verified: true }, { email: 'Octo@Example.test', primary: true, verified: true }] })

  t.same((await app.app.inject({ url: '/auth/providers' })).json(), [{ id: 'github', name: 'GitHub' }])
  const flow = await start(app, 'github')
  const authorize = new URL(flow.location)
  t.equal(authorize.origin + authorize.pathname, gh.authorizationEndpoint)
  t.equal(authorize.searchParams.get('code_challenge_method'), 'S256')
  t.equal(authorize.searchParams.get('nonce'), null, 'no nonce without OpenID Connect')
  t.equal(authorize.searchParams.get('scope'), 'read:user user:email')
  t.equal(authorize.searchParams.get('redirect_uri'), app.callbackUrl('github'))

  const landed = returned(await callback(app, await loginAtGithub(flow.location, 'octo'), flow.cookie))
  t.equal(gh.lastClientAuth(), 'client_secret_basic')
  const body = await loginBody(app, landed)
  t.equal(body.user.email, 'octo@example.test', 'the primary address')
  t.equal(body.user.email_verified, true)
  const profile = await me(app, body.access_token)
  t.equal(profile.name, 'The Octocat')
  t.match(profile.providers, [{ id: 'github', name: 'GitHub' }])
  const identity = await app.app.store.prisma.providerIdentity.findFirstOrThrow()
  t.equal(identity.subject, '583231', 'the numeric id is the subject')
  t.equal(identity.issuer, gh.url, 'the issuer namespace defaults to the authorization endpoint origin')

  const again = await loginBody(app, await githubSignIn(app, 'octo'))
  t.equal(again.user.id, body.user.id)
})

t.test('an unverified primary address: a new user unverified, and no automatic link', async (t) => {
  const gh = await startGithubProvider(t)
  const app = await buildGatehouse(t, { github: gh })
  gh.users.set('newcomer', { id: 1, login: 'newcomer', emails: [{ email: 'newcomer@example.test', primary: true, verified: false }] })
  const body = await loginBody(app, await githubSignIn(app, 'newcomer'))
  t.equal(body.user.email_verified, false)

  await register(app, 'taken@example.test')
  gh.users.set('claimer', { id: 2, login: 'claimer', emails: [{ email: 'taken@example.test', primary: true, verified: true }] })
  t.equal((await githubSignIn(app, 'claimer')).searchParams.get('error'), 'ACCOUNT_EXISTS', 'the local address is not verified')
  gh.users.set('noprimary', { id: 3, login: 'noprimary', emails: [] })
  t.equal((await githubSignIn(app, 'noprimary')).searchParams.get('error'), 'email_required')
})

t.test('the user cancels at the provider: access_denied', async (t) => {
  const gh = await startGithubProvider(t)
  const app = await buildGatehouse(t, { github: gh })
  gh.users.set('shy', { id: 9, login: 'shy', emails: [{ email: 'shy@example.test', primary: true, verified: true }] })
  const flow = await start(app, 'github')
  const landed = returned(await callback(app, await loginAtGithub(flow.location, 'shy', 'deny'), flow.cookie))
  t.equal(landed.searchParams.get('error'), 'access_denied')
  t.equal(gh.tokenRequests(), 0)
  t.equal(await app.app.store.prisma.user.count(), 0)
})

t.test('a replayed callback is refused; a code used before is refused by the provider', async (t) => {
  const gh = await startGithubProvider(t)
  const app = await buildGatehouse(t, { github: gh })
  gh.users.set('rep', { id: 10, login: 'rep', emails: [{ email: 'rep@example.test', primary: true, verified: true }] })
  const flow = await start(app, 'github')
  const url = await loginAtGithub(flow.location, 'rep')
  t.ok(returned(await callback(app, url, flow.cookie)).searchParams.get('code'))
  t.equal((await callback(app, url, flow.cookie)).json().code, 'INVALID_PROVIDER_STATE')
  t.equal((await callback(app, url)).json().code, 'INVALID_PROVIDER_STATE')

  const second = await start(app, 'github')
  const reused = new URL(url)
  reused.searchParams.set('state', new URL(second.location).searchParams.get('state')!)
  t.equal(returned(await callback(app, reused.href, second.cookie)).searchParams.get('error'), 'invalid_response')
  t.equal(gh.tokenRequests(), 2)
})

t.test('tokenEndpointAuthMethod client_secret_post', async (t) => {
  const gh = await startGithubProvider(t, { tokenEndpointAuthMethod: 'client_secret_post' })
  const app = await buildGatehouse(t, { github: gh, githubEntry: { tokenEndpointAuthMethod: 'client_secret_post' } })
  gh.users.set('poster', { id: 11, login: 'poster', emails: [{ email: 'poster@example.test', primary: true, verified: true }] })
  t.ok((await githubSignIn(app, 'poster')).searchParams.get('code'))
  t.equal(gh.lastClientAuth(), 'client_secret_post')

  const basic = await buildGatehouse(t, { github: gh })
  t.equal((await githubSignIn(basic, 'poster')).searchParams.get('error'), 'invalid_response', 'the provider refuses a method it does not take')
})

t.test('storeTokens: the provider tokens are kept sealed, never in plain text', async (t) => {
  const gh = await startGithubProvider(t)
  const app = await buildGatehouse(t, { github: gh, githubEntry: { storeTokens: true } })
  gh.users.set('keeper', { id: 12, login: 'keeper', emails: [{ email: 'keeper@example.test', primary: true, verified: true }] })
  const body = await loginBody(app, await githubSignIn(app, 'keeper'))
  const row = await app.app.store.prisma.providerIdentity.findFirstOrThrow()
  t.ok(row.accessToken !== null)
  t.notOk(row.accessToken!.startsWith('gho_'), 'sealed')
  const opened = await app.app.providers.storedTokens(body.user.id, 'github')
  t.match(opened?.accessToken, /^gho_[0-9a-f]{36}$/)
  const user = await fetch(gh.userinfoEndpoint, { headers: { authorization: `Bearer ${opened!.accessToken}` } })
  t.equal(user.status, 200, 'the opened token is the one the provider issued')
})

t.test('the provider\'s user endpoint down: temporarily_unavailable', async (t) => {
  const gh = await startGithubProvider(t)
  const broken = await keyServer(t)
  broken.handle((_req, res) => { res.statusCode = 502; res.end('bad gateway') })
  const app = await buildGatehouse(t, { github: gh, githubEntry: { userinfoEndpoint: `${broken.url}/user` } })
  gh.users.set('unlucky', { id: 13, login: 'unlucky', emails: [{ email: 'unlucky@example.test', primary: true, verified: true }] })
  t.equal((await githubSignIn(app, 'unlucky')).searchParams.get('error'), 'temporarily_unavailable')
})
