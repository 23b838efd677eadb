// Property-based fuzzing of the whole app (fast-check): random Authorization headers, mutated
// real tokens and random JSON bodies for every route. Never a 5xx, never an accepted forged
// token, never a hang (each request is bounded by the test's timeout).
import t from 'tap'
import fc from 'fast-check'
import type { RouteOptions } from 'fastify'
import { build } from '../helpers/build.ts'

const PASSWORD = 'correct horse battery staple 42'
const RUNS = Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 10_000)

t.test('fuzzing the server', { timeout: 600_000 }, async (t) => {
  const routes: RouteOptions[] = []
  const { app } = await build(t, { app: { onRoute: (r) => { routes.push(r) } } })
  const registered = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'fuzz@example.com', password: PASSWORD } })
  t.equal(registered.statusCode, 201, 'a real account and token to mutate')
  const token: string = registered.json().access_token
  const ok = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.statusCode, 200)

  const endpoints = routes
    .filter((r) => r.schema?.hide !== true && !r.url.startsWith('/docs'))
    .flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD' && m !== 'OPTIONS').map((method) => ({ method, url: r.url })))
  t.ok(endpoints.length >= 10, `${endpoints.length} endpoints to fuzz`)

  let cases = 0
  const fiveHundreds: string[] = []
  const accepted: string[] = []

  const decoded = (s: string): string => s.split('.').map((part) => Buffer.from(part, 'base64url').toString('hex')).join('.')
  const original = decoded(token)

  // 1. Mutated copies of a real token: flip, insert, delete, swap segments, re-encode.
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip'), at: fc.nat(), char: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~ '.split('')) }),
    fc.record({ kind: fc.constant('truncate'), at: fc.nat(), char: fc.constant('') }),
    fc.record({ kind: fc.constant('insert'), at: fc.nat(), char: fc.string({ minLength: 1, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('segments'), at: fc.nat({ max: 5 }), char: fc.constant('') })
  )
  function mutate (m: { kind: string, at: number, char: string }): string {
    const i = m.at % token.length
    switch (m.kind) {
      case 'flip': return token.slice(0, i) + m.char + token.slice(i + 1)
      case 'truncate': return token.slice(0, i)
      case 'insert': return token.slice(0, i) + m.char + token.slice(i)
      default: {
        const parts = token.split('.')
        const shapes = [[parts[0], parts[1]], [parts[1], parts[0], parts[2]], [...parts, parts[2]], [parts[0], parts[1], ''], [parts[0], parts[1], parts[2], '', ''], [parts[0], '', parts[2]]]
        return shapes[m.at % shapes.length].join('.')
      }
    }
  }
  await fc.assert(fc.asyncProperty(mutation, async (m) => {
    const forged = mutate(m)
    cases++
    const res = await app.inject({ url: '/auth/me', headers: { authorization: `Bearer ${forged}` } })
    if (res.statusCode >= 500) fiveHundreds.push(`mutated token: ${res.statusCode} ${res.body}`)
    // A mutation that decodes to the very same bytes (a non-canonical base64url tail) is the same token.
    if (res.statusCode === 200 && decoded(forged) !== original) accepted.push(`${m.kind}@${m.at}`)
    return res.statusCode < 500
  }), { numRuns: Math.ceil(RUNS * 0.4) })

  // 2. Random Authorization headers: any scheme, any bytes.
  const header = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.tuple(fc.constantFrom('Bearer', 'bearer', 'Basic', 'ApiKey', 'Digest', 'BEARER', ''), fc.constantFrom(' ', '  ', '\t', ''), fc.string({ maxLength: 300 })).map(([s, sp, c]) => `${s}${sp}${c}`),
    fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })).map(([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`),
    fc.uint8Array({ maxLength: 120 }).map((bytes) => `Basic ${Buffer.from(bytes).toString('base64')}`),
    fc.string({ maxLength: 80 }).map((k) => `ApiKey gh_${k}`)
  ).filter((h) => !/[\r\n\0]/.test(h) && /^[\t\x20-\x7e\x80-\xff]*$/.test(h))
  await fc.assert(fc.asyncProperty(header, async (authorization) => {
    cases++
    const res = await app.inject({ url: '/auth/me', headers: { authorization } })
    if (res.statusCode >= 500) fiveHundreds.push(`header ${JSON.stringify(authorization)}: ${res.statusCode} ${res.body}`)
    if (res.statusCode === 200) accepted.push(`header ${JSON.stringify(authorization)}`)
    return res.statusCode === 400 || res.statusCode === 401 || res.statusCode === 429
  }), { numRuns: Math.ceil(RUNS * 0.3) })

  // 3. Random JSON bodies (and random params) to every route, with and without a valid token.
  // A form field carries text: strings as they are, any other JSON value as its JSON text (an
  // object such as { toString: 0 } cannot be converted with String()).
  const formValue = (v: unknown): string => typeof v === 'string' ? v : JSON.stringify(v)
  const uuidish = fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }).map(encodeURIComponent))
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(...endpoints), fc.jsonValue({ maxDepth: 3 }), fc.boolean(), uuidish,
    async (endpoint, body, authenticated, param) => {
      cases++
      const url = endpoint.url.replace(/:[A-Za-z0-9_]+/g, param === '' ? 'x' : param)
      const isForm = endpoint.url.startsWith('/oauth/')
      const res = await app.inject({
        method: endpoint.method as 'GET',
        url,
        headers: { ...(authenticated ? { authorization: `Bearer ${token}` } : {}), ...(isForm ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        ...(endpoint.method === 'GET' || endpoint.method === 'DELETE' ? {} : { payload: isForm ? new URLSearchParams(typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.fromEntries(Object.entries(body).map(([k, v]) => [k, formValue(v)])) : {}).toString() : JSON.stringify(body) })
      })
      if (res.statusCode >= 500) fiveHundreds.push(`${endpoint.method} ${url} ${JSON.stringify(body).slice(0, 200)}: ${res.statusCode} ${res.body.slice(0, 300)}`)
      return res.statusCode < 500
    }), { numRuns: Math.ceil(RUNS * 0.3) })

  t.ok(cases >= RUNS, `${cases} cases run`)
  t.same(fiveHundreds.slice(0, 5), [], 'no 5xx')
  t.same(accepted, [], 'no forged or random credential accepted')
})
