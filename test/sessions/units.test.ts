// The plain functions behind sessions and the OAuth routes, without Fastify.
import t from 'tap'
import fc from 'fast-check'
import { hash as argon2Hash } from '@node-rs/argon2'
import {
  derivedRefreshToken, hashRefreshToken, newFamilyId, newRefreshToken, parseRefreshToken, REFRESH_TOKEN_LENGTH
} from '../../plugins/sessions/refresh-token.ts'
import { createOAuthClient, hashClientSecret, verifyClientSecret } from '../../plugins/sessions/clients.ts'
import { parseBasicClient } from '../../routes/oauth/client-auth.ts'
import { OAuthError, toOAuthError } from '../../routes/oauth/errors.ts'
import { gatehouseError, serviceUnavailable } from '../../lib/errors.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import { createPrismaClient } from '../../plugins/store/client.ts'
import { withErrorTranslation } from '../../plugins/store/index.ts'

t.test('refresh token format', async (t) => {
  const family = newFamilyId()
  const token = newRefreshToken(family)
  t.equal(token.length, REFRESH_TOKEN_LENGTH)
  t.same(parseRefreshToken(token), { familyId: family })
  t.equal(Buffer.from(token.split('.')[1], 'base64url').length, 32, '32 random bytes')
  t.not(newRefreshToken(family), token, 'fresh randomness each time')
  t.match(hashRefreshToken(token), /^[A-Za-z0-9_-]{43}$/, 'SHA-256 in base64url')
  for (const bad of ['', token + 'x', token.slice(1), token.toUpperCase(), `${family}.${'+'.repeat(43)}`, ` ${token}`.slice(0, token.length)]) {
    t.equal(parseRefreshToken(bad), null)
  }
  fc.assert(fc.property(fc.anything(), (value) => {
    const parsed = parseRefreshToken(value)
    return parsed === null || (typeof value === 'string' && value.length === REFRESH_TOKEN_LENGTH)
  }), { numRuns: 2000 })
  fc.assert(fc.property(fc.string({ minLength: 80, maxLength: 80 }), (value) => {
    const parsed = parseRefreshToken(value)
    return parsed === null || /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/.test(value)
  }))
})

t.test('a derived successor needs both the previous token and the successor id', async (t) => {
  const family = newFamilyId()
  const previous = newRefreshToken(family)
  const a = derivedRefreshToken(family, previous, 'id-1')
  t.same(parseRefreshToken(a), { familyId: family }, 'same format as a random token')
  t.equal(derivedRefreshToken(family, previous, 'id-1'), a, 'deterministic')
  t.not(derivedRefreshToken(family, previous, 'id-2'), a)
  t.not(derivedRefreshToken(family, newRefreshToken(family), 'id-1'), a)
})

t.test('client secrets', async (t) => {
  const stored = hashClientSecret('s3cret')
  t.match(stored, /^\$sha256\$[A-Za-z0-9_-]{43}$/)
  t.equal(await verifyClientSecret(stored, 's3cret'), true)
  t.equal(await verifyClientSecret(stored, 's3cre'), false)
  t.equal(await verifyClientSecret(stored, ''), false)
  const argon = await argon2Hash('another', { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 })
  t.equal(await verifyClientSecret(argon, 'another'), true, 'argon2id hashes verify too')
  t.equal(await verifyClientSecret(argon, 'other'), false)
  t.equal(await verifyClientSecret('plain-text-secret', 'plain-text-secret'), false, 'an unknown hash format never matches')
})

t.test('createOAuthClient validates and returns the secret once', async (t) => {
  const db = await createTestDatabase('sqlite')
  const { prisma: raw } = await createPrismaClient(db.url)
  const prisma = withErrorTranslation(raw)
  t.teardown(async () => { await raw.$disconnect(); await db.drop() })
  const created = await createOAuthClient(prisma, { name: 'Svc', grants: ['client_credentials'], roles: ['svc'] })
  t.match(created.clientSecret, /^[A-Za-z0-9_-]{43}$/)
  const row = await prisma.oAuthClient.findUniqueOrThrow({ where: { id: created.clientId } })
  t.notOk(JSON.stringify(row).includes(created.clientSecret), 'the secret is not stored')
  t.equal(await verifyClientSecret(row.secretHash!, created.clientSecret), true)
  await t.rejects(createOAuthClient(prisma, { id: 'gatehouse', name: 'x', grants: ['password'], roles: [] }), /built-in public client/)
  await t.rejects(createOAuthClient(prisma, { name: 'x', grants: ['implicit'], roles: [] }), /grants/)
  await t.rejects(createOAuthClient(prisma, { name: ' ', grants: ['password'], roles: [] }), /name/)
  await t.rejects(createOAuthClient(prisma, { id: 'bad id!', name: 'x', grants: ['password'], roles: [] }), /client id/)
  await t.rejects(createOAuthClient(prisma, { id: created.clientId, name: 'x', grants: ['password'], roles: [] }), { code: 'CONFLICT' })
})

t.test('Basic client credentials (RFC 6749 §2.3.1)', async (t) => {
  const encode = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`
  t.equal(parseBasicClient(undefined), null)
  t.same(parseBasicClient(encode('my%20client:p%3Ass+word')), { id: 'my client', secret: 'p:ss word' }, 'form-urlencoded parts')
  t.same(parseBasicClient(encode('id:')), { id: 'id', secret: '' })
  for (const bad of ['Bearer abc', 'Basic', 'Basic !!!', encode('no-colon'), encode(':secret'), encode('%E0%A4%A:x')]) {
    const err = (() => { try { parseBasicClient(bad); return null } catch (e) { return e as OAuthError } })()
    t.equal(err?.error, 'invalid_client', bad)
    t.equal(err?.statusCode, 401)
  }
})

t.test('coded errors map to RFC 6749 §5.2', async (t) => {
  const cases: Array<[unknown, string, number]> = [
    [gatehouseError('INVALID_REFRESH_TOKEN'), 'invalid_grant', 400],
    [gatehouseError('REFRESH_TOKEN_REUSED'), 'invalid_grant', 400],
    [gatehouseError('INVALID_CREDENTIALS'), 'invalid_grant', 400],
    [gatehouseError('ACCOUNT_DISABLED'), 'invalid_grant', 400],
    [gatehouseError('RATE_LIMITED', undefined, { headers: { 'retry-after': '7' } }), 'temporarily_unavailable', 429],
    [serviceUnavailable(new Error('db')), 'temporarily_unavailable', 503],
    [Object.assign(new Error('body/grant_type must be string'), { statusCode: 400, validation: [{ instancePath: '/grant_type', message: 'must be string' }], validationContext: 'body' }), 'invalid_request', 400],
    [Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }), 'invalid_request', 400],
    [new TypeError('a bug'), 'server_error', 500],
    [new OAuthError('invalid_scope', 'x'), 'invalid_scope', 400]
  ]
  for (const [input, error, status] of cases) {
    const mapped = toOAuthError(input)
    t.equal(mapped.error, error, `${(input as Error).message} -> ${error}`)
    t.equal(mapped.statusCode, status)
  }
  t.equal(toOAuthError(gatehouseError('RATE_LIMITED', undefined, { headers: { 'retry-after': '7' } })).headers['retry-after'], '7')
  t.equal(toOAuthError(new TypeError('secret detail')).message, 'Internal server error', 'no internal detail in the description')
})
