// Scenario 3: the peer a user would otherwise pick: plain @fastify/jwt verifying every request
// in an onRequest hook (no verified-token cache), with the algorithm given as argv[2].
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { announce, tamperJwt, writePool } from '../lib/server-kit.ts'

const alg = (process.argv[2] ?? 'RS256') as 'RS256' | 'ES256' | 'EdDSA'
const poolSize = Number(process.argv[3] ?? 0)

const pair = alg === 'RS256'
  ? generateKeyPairSync('rsa', { modulusLength: 2048 })
  : alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('ed25519')
const privatePem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()

const app = Fastify({ logger: false })
await app.register(fastifyJwt, {
  secret: { private: privatePem, public: publicPem },
  sign: { algorithm: alg, iss: 'https://bench.example', aud: 'bench', expiresIn: '24h' },
  verify: { algorithms: [alg], allowedIss: 'https://bench.example', allowedAud: 'bench' }
})
app.get('/protected', {
  onRequest: async (request) => { await request.jwtVerify() }
}, async (request) => ({ ok: true, sub: (request.user as { sub: string }).sub }))
await app.ready()

const sign = (): string => app.jwt.sign({ sub: randomUUID(), roles: ['user'], jti: randomUUID() })
const token = sign()
const pool = poolSize > 0 ? writePool(Array.from({ length: poolSize }, () => `Bearer ${sign()}`)) : undefined

await announce(app, {
  good: { path: '/protected', headers: { authorization: `Bearer ${token}` } },
  bad: { path: '/protected', headers: { authorization: `Bearer ${tamperJwt(token)}` } },
  load: pool === undefined
    ? { path: '/protected', headers: { authorization: `Bearer ${token}` } }
    : { path: '/protected', poolFile: pool, poolHeader: 'authorization' },
  meta: { alg, poolSize }
})
