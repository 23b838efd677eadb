// examples/existing-app/side-by-side.ts, the code of docs/migrating-from-sessions.md: legacy
// cookie sessions and Gatehouse tokens accepted on the same route during a migration.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../examples/existing-app/index.ts'
import { buildSideBySide, memorySessions } from '../../examples/existing-app/side-by-side.ts'

t.test('a route accepts a legacy session cookie or a Gatehouse token, and nothing else', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'side-by-side-'))
  const { prisma, provider } = await openDatabase(`file:${join(dir, 'app.db')}`)
  const legacy = memorySessions()
  const app = await buildSideBySide({ prisma, provider, keysDir: join(dir, 'keys'), legacy, credentials: { argon2: { memoryCost: 8192, timeCost: 1 } } })
  t.teardown(async () => {
    await app.close()
    await prisma.$disconnect()
    rmSync(dir, { recursive: true, force: true })
  })

  const payload = { email: 'lin@example.com', password: 'correct horse battery staple' }
  const { id } = (await app.inject({ method: 'POST', url: '/signup', payload })).json() as { id: string }
  const sid = legacy.create({ userId: id, roles: ['user'] })

  const cookie = await app.inject({ url: '/dashboard', headers: { cookie: `theme=dark; sid=${sid}` } })
  t.equal(cookie.statusCode, 200)
  t.same(cookie.json(), { user: id, via: 'cookie' })

  const { access_token: access } = (await app.inject({ method: 'POST', url: '/login', payload })).json() as { access_token: string }
  const token = await app.inject({ url: '/dashboard', headers: { authorization: `Bearer ${access}` } })
  t.equal(token.statusCode, 200)
  t.same(token.json(), { user: id, via: 'token' })

  const badToken = await app.inject({ url: '/dashboard', headers: { authorization: 'Bearer not-a-token', cookie: `sid=${sid}` } })
  t.equal(badToken.statusCode, 401, 'a bad token is not rescued by a valid cookie')
  t.equal(badToken.json().code, 'INVALID_TOKEN')

  for (const headers of [{}, { cookie: 'sid=unknown' }]) {
    const res = await app.inject({ url: '/dashboard', headers })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'MISSING_AUTHORIZATION')
    t.match(res.headers['www-authenticate'], /^Bearer/)
  }
})
