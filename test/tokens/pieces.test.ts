// The parts of gatehouse-tokens on their own, without Fastify: the key ring, the access-token
// verifier and its cache, the principal behind a token, and createTokens composing them.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import { openKeyRing, type KeyRingLog } from '../../plugins/tokens/key-ring.ts'
import { createAccessTokenVerifier, FOREIGN, type VerifiedToken } from '../../plugins/tokens/access-token-verifier.ts'
import { createPrincipals } from '../../plugins/tokens/principal.ts'
import { createTokens, resolveOptions, rotateKey } from '../../plugins/tokens/index.ts'
import { cacheKeyOf } from '../../lib/verified-cache.ts'
import { createLocalBus } from '../../plugins/redis/index.ts'
import { withErrorTranslation, type Store } from '../../plugins/store/index.ts'
import { createPrismaClient } from '../../plugins/store/client.ts'
import { createTestDatabase } from '../helpers/databases.ts'

const ISSUER = 'http://127.0.0.1:3000'
const settings = { issuer: ISSUER, audience: 'gatehouse', accessTokenTtl: 900, clockTolerance: 30 }

function quietLog (): KeyRingLog & { lines: string[] } {
  const lines: string[] = []
  return { lines, info: (_o, m) => lines.push(`info ${m}`), warn: (_o, m) => lines.push(`warn ${m}`), error: (_o, m) => lines.push(`error ${m}`) }
}

function keysDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pieces-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function ring (t: Test, dir: string, generateKeys = true) {
  const opened = openKeyRing({ keysDir: dir, signingAlgorithm: 'ES256', generateKeys, keysReloadInterval: 0, verifier: settings }, quietLog())
  t.teardown(() => opened.close())
  return opened
}

function claims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(Date.now() / 1000)
  return { iss: ISSUER, sub: randomUUID(), aud: 'gatehouse', exp: iat + 600, iat, jti: randomUUID(), roles: ['user'], sid: randomUUID(), ver: 0, ...overrides }
}

async function storeOf (t: Test): Promise<Store> {
  const db = await createTestDatabase('sqlite')
  const { prisma, provider } = await createPrismaClient(db.url)
  t.teardown(async () => {
    await prisma.$disconnect()
    await db.drop()
  })
  return { prisma: withErrorTranslation(prisma), provider, ping: async () => true }
}

t.test('key ring: an empty folder is KEYS_MISSING unless a key may be generated', async (t) => {
  const dir = keysDir(t)
  t.throws(() => ring(t, dir, false), { name: 'StartupError', code: 'KEYS_MISSING' })
  const generated = ring(t, dir)
  t.equal(generated.size(), 1)
  t.equal(generated.signing().key.alg, 'ES256')
  t.equal(generated.jwks().keys.length, 1)
  t.equal(generated.jwks().keys[0].kid, generated.signing().key.kid)
})

t.test('key ring: a rotation made elsewhere signs after a reload, and listeners hear of it', async (t) => {
  const dir = keysDir(t)
  const keys = ring(t, dir)
  const first = keys.signing().key.kid
  const changes: boolean[] = []
  keys.onChange((removed) => changes.push(removed))
  const rotated = rotateKey(dir, 'EdDSA')
  t.equal(keys.signing().key.kid, first, 'nothing changes before a reload')
  keys.reloadNow()
  t.equal(keys.signing().key.kid, rotated.kid)
  t.ok(keys.get(first), 'the previous key still verifies')
  t.same(changes, [false], 'one change, no key removed')
  t.equal(keys.reloads(), 1)
})

t.test('verifier: a token of the ring verifies, is cached on its second sighting, and a forged one fails', async (t) => {
  const keys = ring(t, keysDir(t))
  const verifier = createAccessTokenVerifier({ issuer: ISSUER, accessTokenTtl: 900, verifiedCacheSize: 100, offload: false }, keys)
  const token = keys.signerOf(keys.signing())(claims())
  const key = cacheKeyOf(token)
  const first = await verifier.verify(token, key) as VerifiedToken
  t.equal(first.token, token)
  t.equal(verifier.lookup(token, key, Date.now()), undefined, 'a first sighting only marks the token')
  await verifier.verify(token, key)
  t.equal(verifier.lookup(token, key, Date.now())?.sub, first.sub, 'the second verification is remembered')
  t.equal(verifier.size(), 1)

  const [h, p, s] = token.split('.')
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), roles: ['admin'] })).toString('base64url')}.${s}`
  t.throws(() => verifier.verify(forged, cacheKeyOf(forged)), { code: 'INVALID_SIGNATURE' })
  const expired = keys.signerOf(keys.signing())(claims({ iat: 1_000, exp: 2_000 }))
  t.throws(() => verifier.verify(expired, cacheKeyOf(expired)), { code: 'TOKEN_EXPIRED' })
})

t.test('verifier: a token of another issuer is FOREIGN, without an error; one without iss is refused', async (t) => {
  const keys = ring(t, keysDir(t))
  const verifier = createAccessTokenVerifier({ issuer: ISSUER, accessTokenTtl: 900, verifiedCacheSize: 100, offload: false }, keys)
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const other = createSigner({ key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), algorithm: 'RS256', kid: 'someone-else' })
  const foreign = other({ iss: 'https://idp.example.com', sub: 'x', aud: 'api', exp: Math.floor(Date.now() / 1000) + 60 })
  t.equal(verifier.verify(foreign, cacheKeyOf(foreign)), FOREIGN)
  const arrayIss = other({ iss: [ISSUER], sub: 'x', exp: Math.floor(Date.now() / 1000) + 60 })
  t.equal(verifier.verify(arrayIss, cacheKeyOf(arrayIss)), FOREIGN, 'an array containing our issuer is not our issuer')
  const noIss = other({ sub: 'x', exp: Math.floor(Date.now() / 1000) + 60 })
  t.throws(() => verifier.verify(noIss, cacheKeyOf(noIss)), { code: 'MISSING_CLAIM' })
  // Our issuer with a kid we do not hold is ours to refuse (after a reload), never FOREIGN.
  const ours = other({ iss: ISSUER, sub: 'x', exp: Math.floor(Date.now() / 1000) + 60 })
  await t.rejects(async () => await verifier.verify(ours, cacheKeyOf(ours)), { code: 'INVALID_TOKEN' })
})

t.test('verifier: retiring a key empties the cache of its tokens', async (t) => {
  const dir = keysDir(t)
  const keys = ring(t, dir)
  const verifier = createAccessTokenVerifier({ issuer: ISSUER, accessTokenTtl: 900, verifiedCacheSize: 100, offload: false }, keys)
  const token = keys.signerOf(keys.signing())(claims())
  await verifier.verify(token, cacheKeyOf(token))
  await verifier.verify(token, cacheKeyOf(token))
  t.equal(verifier.size(), 1)
  const old = keys.signing().key.kid
  rotateKey(dir, 'ES256')
  rmSync(join(dir, `${old}.json`))
  keys.reloadNow()
  t.equal(keys.get(old), undefined)
  t.equal(verifier.size(), 0, 'no token of a removed key stays cached')
})

t.test('principals: the state of the user behind a token, revocations and notices on the bus', async (t) => {
  const store = await storeOf(t)
  const bus = createLocalBus()
  const principals = await createPrincipals({ issuer: ISSUER, revocationSpanSec: 930, userStateTtl: 30, userStateCacheSize: 100 }, { store, bus, log: quietLog() })
  t.teardown(() => principals.close())
  const user = await store.prisma.user.create({ data: { email: `${randomUUID()}@example.com`, roles: JSON.stringify(['user']) } })
  const sid = randomUUID()
  const entry = { token: 'x', claims: claims({ sub: user.id, sid }) as never, sub: user.id, sid, ver: 0, clientId: undefined }

  const principal = await principals.principal(entry, Date.now())
  t.match(principal, { id: user.id, roles: ['user'], sid, external: false, scheme: 'bearer' })

  await store.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } })
  t.match(await principals.principal(entry, Date.now()), { id: user.id }, 'a cached state is trusted until a notice')
  await bus.publish('user', { userId: user.id })
  await t.rejects(async () => await principals.principal(entry, Date.now()), { code: 'ACCOUNT_DISABLED' })

  await store.prisma.user.update({ where: { id: user.id }, data: { status: 'active' } })
  await principals.userChanged(user.id)
  await principals.revokeSids([sid])
  t.equal(principals.revokedSessions(), 1)
  await t.rejects(async () => await principals.principal(entry, Date.now()), { code: 'TOKEN_REVOKED' })
})

t.test('createTokens composes the pieces: sign, verify, revoke; bad options are coded', async (t) => {
  const store = await storeOf(t)
  const tokens = await createTokens(resolveOptions({ issuer: ISSUER, keysDir: keysDir(t), signingAlgorithm: 'EdDSA', signatureCheck: 'inline' }), { store, bus: createLocalBus(), log: quietLog() })
  t.teardown(() => tokens.close())
  const user = await store.prisma.user.create({ data: { email: `${randomUUID()}@example.com`, roles: JSON.stringify(['admin']) } })
  const sid = randomUUID()
  const { access_token: token } = await tokens.sign({ id: user.id, roles: ['admin'], tokenVersion: 0 }, { sid })
  t.match(await tokens.verify(token), { id: user.id, roles: ['admin'], sid })
  await tokens.revokeSids([sid])
  await t.rejects(tokens.verify(token), { code: 'TOKEN_REVOKED' })
  t.same(tokens.stats().keys, 1)

  t.throws(() => resolveOptions({ issuer: ISSUER, keysDir: 'x', accessTokenTtl: 0 }), { name: 'OptionsError', code: 'GATEHOUSE_INVALID_OPTION', plugin: 'gatehouse-tokens', option: 'accessTokenTtl' })
})
