// Scenario 1: a bare Fastify route, the ceiling of this machine for a JSON answer.
import Fastify from 'fastify'
import { announce } from '../lib/server-kit.ts'

const app = Fastify({ logger: false })
app.get('/protected', async () => ({ ok: true }))

await announce(app, {
  good: { path: '/protected' },
  load: { path: '/protected' },
  meta: { route: 'GET /protected -> {ok:true}' }
})
