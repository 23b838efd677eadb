// Passkeys in a real browser: headless Chromium (Debian's, through playwright-core) with a CDP
// virtual authenticator registers a passkey, signs in with it and no password, uses it as the
// second factor after a password, and a replayed assertion is refused. The page is served by the
// server itself on http://localhost:<port> (a secure context, so WebAuthn works over http).
import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PASSWORD, claims, mfaServer, newEmail } from './helpers.ts'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

// The page's helpers: WebAuthn options JSON -> the browser's binary form, and the answer back to
// JSON (what @simplewebauthn/browser does), plus fetch against the same origin.
const PAGE = `<!doctype html><meta charset="utf-8"><title>passkeys</title><script>
const b64u = {
  decode (s) { s = s.replace(/-/g, '+').replace(/_/g, '/'); while (s.length % 4) s += '='; return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer },
  encode (buf) { let s = ''; for (const b of new Uint8Array(buf)) s += String.fromCharCode(b); return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '') }
}
async function api (method, path, body, token) {
  const headers = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = 'Bearer ' + token
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? null : JSON.parse(text) }
}
async function create (options) {
  const publicKey = { ...options, challenge: b64u.decode(options.challenge), user: { ...options.user, id: b64u.decode(options.user.id) },
    excludeCredentials: (options.excludeCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })) }
  const cred = await navigator.credentials.create({ publicKey })
  return { id: cred.id, rawId: b64u.encode(cred.rawId), type: cred.type, clientExtensionResults: cred.getClientExtensionResults(),
    authenticatorAttachment: cred.authenticatorAttachment,
    response: { clientDataJSON: b64u.encode(cred.response.clientDataJSON), attestationObject: b64u.encode(cred.response.attestationObject), transports: cred.response.getTransports() } }
}
async function get (options) {
  const publicKey = { ...options, challenge: b64u.decode(options.challenge), allowCredentials: (options.allowCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })) }
  const cred = await navigator.credentials.get({ publicKey })
  return { id: cred.id, rawId: b64u.encode(cred.rawId), type: cred.type, clientExtensionResults: cred.getClientExtensionResults(),
    response: { clientDataJSON: b64u.encode(cred.response.clientDataJSON), authenticatorData: b64u.encode(cred.response.authenticatorData),
      signature: b64u.encode(cred.response.signature), userHandle: cred.response.userHandle ? b64u.encode(cred.response.userHandle) : undefined } }
}
</script><p>passkeys</p>`

t.test('passkeys in headless Chromium with a virtual authenticator', { skip: CHROMIUM === undefined ? 'no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does this)' : false, timeout: 180_000 }, async (t) => {
  const { chromium } = await import('playwright-core')
  const port = await freePort()
  const origin = `http://localhost:${port}`
  const server = await mfaServer(t, {
    env: { AUTH_ISSUER: origin, PORT: String(port) },
    routes (app) {
      app.get('/passkeys-test', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html').send(PAGE))
    },
    listen: { port, host: '127.0.0.1' }
  })
  t.equal(server.config.webauthnRpId, 'localhost', 'WEBAUTHN_RP_ID defaults to the host of AUTH_ISSUER')
  t.same(server.config.webauthnOrigins, [origin])

  const userDataDir = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-'))
  t.teardown(() => rmSync(userDataDir, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => context.close())
  const page = context.pages()[0] ?? await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(`${origin}/passkeys-test`)
  t.equal(await page.evaluate(() => window.isSecureContext), true, 'http://localhost is a secure context')

  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true }
  })

  type Api = (method: string, path: string, body?: unknown, token?: string) => Promise<{ status: number, body: any }>
  const api: Api = (method, path, body, token) => page.evaluate(([m, p, b, tk]) => (window as any).api(m, p, b, tk), [method, path, body, token] as const)
  const get = (options: unknown): Promise<any> => page.evaluate((o) => (window as any).get(o), options)

  const email = newEmail()
  const registered = await api('POST', '/auth/register', { email, password: PASSWORD })
  t.equal(registered.status, 201)
  const token = registered.body.access_token as string

  // Registration.
  const creation = await api('POST', '/auth/webauthn/register/options', {}, token)
  t.equal(creation.status, 200)
  t.equal(creation.body.rp.id, 'localhost')
  t.equal(creation.body.authenticatorSelection.residentKey, 'required', 'a discoverable credential is asked for')
  const attestation = await page.evaluate((o) => (window as any).create(o), creation.body)
  const stored = await api('POST', '/auth/webauthn/register', { credential: attestation, name: 'Laptop' }, token)
  t.equal(stored.status, 201)
  t.type(stored.body.id, 'string')
  const again = await api('POST', '/auth/webauthn/register', { credential: attestation, name: 'Laptop' }, token)
  t.equal(again.status, 401, 'a registration answer works once (its challenge is spent)')
  t.equal(again.body.code, 'INVALID_MFA_CODE')
  const listed = await api('GET', '/auth/webauthn/credentials', undefined, token)
  t.equal(listed.body.length, 1)
  t.equal(listed.body[0].name, 'Laptop')
  t.equal(listed.body[0].id, stored.body.id)
  const credentials = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  t.equal(credentials.credentials.length, 1, 'the virtual authenticator holds the passkey')
  t.equal(credentials.credentials[0].isResidentCredential, true)
  t.same((await api('GET', '/auth/me', undefined, token)).body.mfa, { totp: false, passkeys: 1 })

  // Passwordless login with the discoverable credential.
  const start = await api('POST', '/auth/webauthn/login/options', {})
  t.equal(start.status, 200)
  t.notOk(start.body.options.allowCredentials?.length, 'no account is named: the authenticator picks the passkey')
  const assertion = await get(start.body.options)
  const signedIn = await api('POST', '/auth/webauthn/login', { challenge_id: start.body.challenge_id, credential: assertion })
  t.equal(signedIn.status, 200)
  t.equal(signedIn.body.user.email, email)
  t.same(claims(signedIn.body.access_token).amr, ['hwk', 'user', 'mfa'], 'user verification makes the passkey multi-factor')
  const replayed = await api('POST', '/auth/webauthn/login', { challenge_id: start.body.challenge_id, credential: assertion })
  t.equal(replayed.status, 401, 'the same assertion again is refused')
  t.equal(replayed.body.code, 'INVALID_MFA_CODE')
  const fresh = await api('POST', '/auth/webauthn/login/options', {})
  const cloned = await api('POST', '/auth/webauthn/login', { challenge_id: fresh.body.challenge_id, credential: assertion })
  t.equal(cloned.body.code, 'INVALID_MFA_CODE', 'an old assertion against a new challenge is refused')

  // The passkey as the second factor after a password.
  const password = await api('POST', '/auth/login', { email, password: PASSWORD })
  t.equal(password.status, 401)
  t.equal(password.body.code, 'MFA_REQUIRED')
  t.same(password.body.methods, ['webauthn'])
  const second = await api('POST', '/auth/mfa/webauthn/options', { mfa_token: password.body.mfa_token })
  t.equal(second.status, 200)
  t.equal(second.body.allowCredentials.length, 1, 'the account\'s passkeys are offered')
  const answer = await get(second.body)
  const done = await api('POST', '/auth/mfa/verify', { mfa_token: password.body.mfa_token, credential: answer })
  t.equal(done.status, 200)
  t.same(claims(done.body.access_token).amr, ['pwd', 'hwk', 'user', 'mfa'])
  const password2 = await api('POST', '/auth/login', { email, password: PASSWORD })
  await api('POST', '/auth/mfa/webauthn/options', { mfa_token: password2.body.mfa_token })
  const replay2 = await api('POST', '/auth/mfa/verify', { mfa_token: password2.body.mfa_token, credential: answer })
  t.equal(replay2.body.code, 'INVALID_MFA_CODE', 'a second-factor assertion is not accepted for another login')
  const wrongChallenge = await api('POST', '/auth/mfa/verify', { mfa_token: password2.body.mfa_token, credential: assertion })
  t.equal(wrongChallenge.body.code, 'INVALID_MFA_CODE', 'nor a passwordless assertion')

  const rename = await api('PATCH', `/auth/webauthn/credentials/${stored.body.id}`, { name: 'Work laptop' }, done.body.access_token)
  t.equal(rename.status, 204)
  t.equal((await api('GET', '/auth/webauthn/credentials', undefined, token)).body[0].name, 'Work laptop')
  const removeWeak = await api('DELETE', `/auth/webauthn/credentials/${stored.body.id}`, undefined, token)
  t.equal(removeWeak.status, 401, 'removing a factor needs a multi-factor session (this token is from before the passkey: ["pwd"])')
  t.equal(removeWeak.body.code, 'INSUFFICIENT_AUTHENTICATION')
  const removed = await api('DELETE', `/auth/webauthn/credentials/${stored.body.id}`, undefined, done.body.access_token)
  t.equal(removed.status, 204)
  const afterRemoval = await api('POST', '/auth/login', { email, password: PASSWORD })
  t.equal(afterRemoval.status, 200, 'with no factor left a password is enough again')
  const start3 = await api('POST', '/auth/webauthn/login/options', {})
  const orphan = await api('POST', '/auth/webauthn/login', { challenge_id: start3.body.challenge_id, credential: await get(start3.body.options) })
  t.equal(orphan.body.code, 'INVALID_MFA_CODE', 'a removed passkey signs no one in')

  t.same(pageErrors, [], 'no script errors on the page')
})
