// An existing Fastify app with its own Prisma client that adds Gatehouse's credential
// verification, tokens, refresh sessions and the authenticate hook, and keeps its own routes
// (its own /login included). The app owns the Prisma client: gatehouse-store adopts it and
// never disconnects it, so the app can keep using it after the plugins are closed.
//
//   DATABASE_URL=file:./data/existing-app.db AUTH_KEYS_DIR=./data/existing-app-keys \
//   PORT=4000 npx tsx examples/existing-app/index.ts
//   curl -X POST localhost:4000/signup -H 'content-type: application/json' \
//     -d '{"email":"ada@example.com","password":"correct horse battery staple"}'
//   curl -X POST localhost:4000/login -H 'content-type: application/json' \
//     -d '{"email":"ada@example.com","password":"correct horse battery staple"}'
//   curl localhost:4000/projects -H "authorization: Bearer <access_token>"
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { store, migrate, createPrismaClient, type PrismaClient, type Provider } from 'gatehouse/store'
import { redis } from 'gatehouse/redis'
import { audit } from 'gatehouse/audit'
import { credentials, parseRoles, type CredentialsOptions } from 'gatehouse/credentials'
import { tokens } from 'gatehouse/tokens'
import { sessions } from 'gatehouse/sessions'
import { authenticate, errorHandler } from 'gatehouse/authenticate'

export interface ExistingAppOptions {
  /** The app's own Prisma client (generated from Gatehouse's schema, see prisma/schema.prisma). */
  prisma: PrismaClient
  /** Which database that client talks to. */
  provider: Provider
  /** Folder of the signing keys; a key is generated there on first start. */
  keysDir: string
  /** `iss` of the tokens this app issues. @default 'http://127.0.0.1:4000' */
  issuer?: string
  /** argon2id parameters and password policy of gatehouse-credentials. */
  credentials?: CredentialsOptions
  logger?: FastifyServerOptions['logger']
}

/** Applies pending migrations (SQLite or PostgreSQL), then opens the app's own Prisma client. */
export async function openDatabase (databaseUrl: string): Promise<{ prisma: PrismaClient, provider: Provider }> {
  await migrate(databaseUrl)
  return await createPrismaClient(databaseUrl)
}


const credentialsBody = {
  type: 'object',
  required: ['email', 'password'],
  additionalProperties: false,
  properties: { email: { type: 'string', maxLength: 320 }, password: { type: 'string', maxLength: 1024 } }
} as const

export async function build (options: ExistingAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  // Gatehouse's errors carry a code and headers (WWW-Authenticate, Retry-After); this handler
  // sends them as {statusCode, code, error, message} and turns database faults into 503.
  app.setErrorHandler(errorHandler)

  // The store adopts the app's client: `provider` says which database it is, migrations were
  // applied by the app (openDatabase), and the client is not disconnected when the app closes.
  await app.register(store, { prisma: options.prisma, provider: options.provider })
  // gatehouse-credentials needs gatehouse-redis (the bus of cache invalidations; in process
  // without a URL). Audit is optional: with it, logins and failures are recorded.
  await app.register(redis)
  await app.register(audit)
  await app.register(credentials, options.credentials ?? {})
  await app.register(tokens, { issuer: options.issuer ?? 'http://127.0.0.1:4000', keysDir: options.keysDir })
  await app.register(sessions)
  await app.register(authenticate)

  // The app's own public routes.
  app.get('/', async () => ({ app: 'existing-app', users: await options.prisma.user.count() }))

  app.post('/signup', { schema: { body: credentialsBody } }, async (request, reply) => {
    const { email, password } = request.body as { email: string, password: string }
    const user = await app.credentials.register({ email, password }, request)
    reply.code(201)
    return { id: user.id, email: user.email }
  })

  // The app's own login: check the password, then start a refresh session.
  app.post('/login', { schema: { body: credentialsBody } }, async (request) => {
    const { email, password } = request.body as { email: string, password: string }
    const user = await app.credentials.login(email, password, request)
    return await app.sessions.start({ id: user.id, roles: parseRoles(user.roles), tokenVersion: user.tokenVersion }, { request })
  })

  app.post('/refresh', {
    schema: { body: { type: 'object', required: ['refresh_token'], additionalProperties: false, properties: { refresh_token: { type: 'string', maxLength: 512 } } } }
  }, async (request) => {
    const { userId: _userId, ...tokenResponse } = await app.sessions.refresh((request.body as { refresh_token: string }).refresh_token, { request })
    return tokenResponse
  })

  // A protected route: Bearer access tokens, Basic and ApiKey are all accepted by the hook.
  app.get('/projects', { onRequest: app.authenticate }, async (request) => {
    const user = request.user!
    return { owner: user.id, projects: [{ id: 'p1', name: `${user.email ?? user.id}'s first project` }] }
  })

  return app
}

if (process.argv[1]?.endsWith('examples/existing-app/index.ts')) {
  const databaseUrl = process.env.DATABASE_URL ?? `file:${join(mkdtempSync(join(tmpdir(), 'existing-app-')), 'app.db')}`
  const keysDir = process.env.AUTH_KEYS_DIR ?? mkdtempSync(join(tmpdir(), 'existing-app-keys-'))
  const port = Number(process.env.PORT ?? 4000)
  const host = process.env.HOST ?? '127.0.0.1'
  const { prisma, provider } = await openDatabase(databaseUrl)
  const app = await build({
    prisma,
    provider,
    keysDir,
    issuer: process.env.AUTH_ISSUER ?? `http://${host}:${port}`,
    logger: { level: process.env.LOG_LEVEL ?? 'info' }
  })
  const shutdown = async (): Promise<void> => {
    await app.close()
    await prisma.$disconnect()
    process.exit(0)
  }
  process.once('SIGTERM', () => { void shutdown() })
  process.once('SIGINT', () => { void shutdown() })
  try {
    await app.listen({ port, host })
  } catch (err) {
    process.stderr.write(`existing-app: ${(err as Error).message}\n`)
    process.exit(1)
  }
}
