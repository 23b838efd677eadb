import t from 'tap'
import { build } from './helpers/build.ts'

t.test('request logs carry no query string and no Authorization', async (t) => {
  const { app, logs } = await build(t)
  await app.inject({ url: '/health?access_token=secret-in-the-query-string', headers: { authorization: 'Bearer secret-in-the-header' } })
  await app.inject({ method: 'POST', url: '/nope?refresh_token=another-secret', payload: { password: 'a password in a body' } })
  const all = logs.join('\n')
  t.ok(all.includes('"url":"/nope?[redacted]"'), 'the path is logged, the query string replaced')
  for (const secret of ['secret-in-the-query-string', 'secret-in-the-header', 'another-secret', 'a password in a body']) {
    t.notOk(all.includes(secret), `${secret} is not logged`)
  }
})
