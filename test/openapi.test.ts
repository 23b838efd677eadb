// /docs/json must be a valid OpenAPI 3 document that lists every route the server registers,
// each with tags, a summary, response schemas and (for protected routes) security requirements.
import t from 'tap'
import type { RouteOptions } from 'fastify'
import { Validator } from '@seriousme/openapi-schema-validator'
import { build } from './helpers/build.ts'

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete'])

t.test('the OpenAPI document is valid and complete', async (t) => {
  const routes: RouteOptions[] = []
  const { app } = await build(t, { app: { onRoute: (route) => { routes.push(route) } } })
  const res = await app.inject('/docs/json')
  t.equal(res.statusCode, 200)
  const doc = res.json()

  const validator = new Validator()
  const result = await validator.validate(doc)
  t.ok(result.valid, `valid OpenAPI ${doc.openapi}${result.valid ? '' : ': ' + JSON.stringify(result.errors).slice(0, 2000)}`)

  const documented = new Set<string>()
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(item)) if (METHODS.has(method)) documented.add(`${method.toUpperCase()} ${path}`)
  }
  const registered = routes
    .filter((r) => r.schema?.hide !== true && !r.url.startsWith('/docs'))
    .flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => METHODS.has(m.toLowerCase())).map((m) => `${m} ${r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`))
  t.ok(registered.length >= 3, `${registered.length} routes registered`)
  for (const route of registered) t.ok(documented.has(route), `${route} is in the OpenAPI document`)

  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.has(method)) continue
      t.ok(Array.isArray(op.tags) && op.tags.length > 0, `${method.toUpperCase()} ${path} has tags`)
      t.ok(typeof op.summary === 'string' && op.summary.length > 0, `${method.toUpperCase()} ${path} has a summary`)
      t.ok(op.responses !== undefined && Object.keys(op.responses).some((code) => /^[23]/.test(code)), `${method.toUpperCase()} ${path} documents its success response`)
    }
  }

  const schemes = doc.components?.securitySchemes ?? {}
  t.same(Object.keys(schemes).sort(), ['apiKey', 'basicAuth', 'bearerAuth'])
})
