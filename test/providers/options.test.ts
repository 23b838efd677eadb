// LOGIN_PROVIDERS and LOGIN_REDIRECT_URIS: every bad entry stops start-up with one line that
// names the variable and the entry; good entries resolve with their defaults.
import t from 'tap'
import { ConfigError } from '../../lib/options.ts'
import { resolveOptions, resolveProviders } from '../../plugins/providers/index.ts'
import { loadConfig } from '../../server/config.ts'
import { startupFailure } from '../../server.ts'
import { build } from '../helpers/build.ts'
import { testConfig } from '../helpers/build.ts'

t.setTimeout(10 * 60_000)

const oidc = { id: 'acme', issuer: 'https://idp.example.test', clientId: 'c', clientSecret: 's' }
const oauth2 = { id: 'github', type: 'oauth2', authorizationEndpoint: 'https://github.example.test/login/oauth/authorize', tokenEndpoint: 'https://github.example.test/login/oauth/access_token', userinfoEndpoint: 'https://api.github.example.test/user', clientId: 'c', clientSecret: 's' }

function failure (entries: unknown): ConfigError {
  try {
    resolveProviders(entries as unknown[])
  } catch (err) {
    return err as ConfigError
  }
  throw new Error('resolved')
}

t.test('good entries resolve with their defaults', async (t) => {
  const resolved = resolveProviders([oidc, { ...oauth2, emailsEndpoint: 'https://api.github.example.test/user/emails', name: 'GitHub', tokenEndpointAuthMethod: 'client_secret_post' }, { id: 'local', issuer: 'http://127.0.0.1:9999', clientId: 'c', clientSecret: 's' }])
  const a = resolved.get('acme')!
  t.match(a, { type: 'oidc', name: 'acme', scopes: ['openid', 'email', 'profile'], tokenEndpointAuthMethod: 'client_secret_basic', storeTokens: false, insecureLoopback: false })
  const g = resolved.get('github')!
  t.match(g, { type: 'oauth2', name: 'GitHub', scopes: [], issuer: 'https://github.example.test', tokenEndpointAuthMethod: 'client_secret_post', emailsEndpoint: 'https://api.github.example.test/user/emails' })
  t.equal(resolved.get('local')!.insecureLoopback, true, 'plain http only for a loopback host')
})

t.test('each bad entry names LOGIN_PROVIDERS, the entry and the fault', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ acme: oidc }, /^LOGIN_PROVIDERS: must be a JSON array/],
    [['acme'], /^LOGIN_PROVIDERS: entry 0 must be an object/],
    [[{ ...oidc, id: 'Has Spaces' }], /^LOGIN_PROVIDERS: entry 0: id must be a slug/],
    [[oidc, { ...oidc }], /^LOGIN_PROVIDERS: entry 1 \("acme"\): the id is used by an earlier entry/],
    [[{ ...oidc, type: 'saml' }], /^LOGIN_PROVIDERS: entry 0 \("acme"\): type must be "oidc" or "oauth2"/],
    [[{ ...oidc, emailsEndpoint: 'https://x.test' }], /entry 0 \("acme"\): unknown property "emailsEndpoint" \(only for "type": "oauth2"\)/],
    [[{ ...oidc, clientSecrett: 'typo' }], /entry 0 \("acme"\): unknown property "clientSecrett"/],
    [[{ ...oidc, clientId: '' }], /entry 0 \("acme"\): clientId is required/],
    [[{ ...oidc, clientSecret: undefined }], /entry 0 \("acme"\): clientSecret is required/],
    [[{ ...oidc, issuer: 'http://idp.example.test' }], /entry 0 \("acme"\): issuer must be an https:\/\/ URL \(http:\/\/ only for a loopback host\)/],
    [[{ ...oidc, issuer: 'not a url' }], /entry 0 \("acme"\): issuer must be an absolute URL/],
    [[{ ...oidc, scopes: ['email'] }], /entry 0 \("acme"\): scopes must include "openid"/],
    [[{ ...oidc, scopes: 'openid' }], /entry 0 \("acme"\): scopes must be an array/],
    [[{ ...oidc, tokenEndpointAuthMethod: 'private_key_jwt' }], /entry 0 \("acme"\): tokenEndpointAuthMethod must be one of client_secret_basic, client_secret_post/],
    [[{ ...oidc, storeTokens: 'yes' }], /entry 0 \("acme"\): storeTokens must be true or false/],
    [[{ ...oauth2, tokenEndpoint: undefined }], /entry 0 \("github"\): tokenEndpoint is required/],
    [[{ ...oauth2, userinfoEndpoint: 'http://api.example.test/user' }], /entry 0 \("github"\): userinfoEndpoint must be an https:\/\/ URL/],
    [[{ ...oauth2, emailsEndpoint: 'https://user:pw@api.example.test/emails' }], /entry 0 \("github"\): emailsEndpoint must not carry credentials/]
  ]
  for (const [entries, message] of cases) {
    const err = failure(entries)
    t.type(err, ConfigError, String(message))
    t.equal(err.variable, 'LOGIN_PROVIDERS')
    t.equal(err.plugin, 'gatehouse-providers')
    t.match(err.message, message)
    t.notOk(err.message.includes('\n'), 'one line')
    t.notMatch(err.message, /"s"/, 'the secret is not repeated')
  }
})

t.test('LOGIN_PROVIDERS and LOGIN_REDIRECT_URIS in the environment', async (t) => {
  const env = { AUTH_ISSUER: 'http://127.0.0.1:3000' }
  t.throws(() => loadConfig({ ...env, LOGIN_PROVIDERS: '[{' }), { name: 'ConfigError', variable: 'LOGIN_PROVIDERS', message: /^LOGIN_PROVIDERS: is not valid JSON/ })
  t.throws(() => loadConfig({ ...env, LOGIN_PROVIDERS: '{}' }), { variable: 'LOGIN_PROVIDERS', message: /must be a JSON array/ })
  for (const bad of ['ftp://app.example.test/cb', 'http://app.example.test/cb', 'https://app.example.test/cb#frag', '/relative']) {
    t.throws(() => loadConfig({ ...env, LOGIN_REDIRECT_URIS: bad }), { name: 'ConfigError', variable: 'LOGIN_REDIRECT_URIS' }, bad)
  }
  const config = loadConfig({ ...env, LOGIN_PROVIDERS: JSON.stringify([oidc]), LOGIN_REDIRECT_URIS: 'https://app.example.test/cb, http://localhost:5173/cb' })
  t.same(config.loginRedirectUris, ['https://app.example.test/cb', 'http://localhost:5173/cb'])
  t.same(config.loginProviders, [oidc])
  t.same(loadConfig(env).loginProviders, [], 'default []')
  t.throws(() => resolveOptions({ callbackBase: 'https://auth.example.test/auth/providers', providers: [{ ...oidc, storeTokens: true }] }), { name: 'OptionsError', message: /keysDir/ })
})

t.test('the server does not start on a bad entry, and says why in one line', async (t) => {
  const err = await build(t, { env: { LOGIN_PROVIDERS: JSON.stringify([oidc, { ...oidc, id: 'second', issuer: 'http://idp.example.test' }]) } }).then(() => null, (e: unknown) => e)
  t.type(err, ConfigError)
  const line = startupFailure(err, testConfig())
  t.equal(line, 'LOGIN_PROVIDERS: entry 1 ("second"): issuer must be an https:// URL (http:// only for a loopback host)')
})
