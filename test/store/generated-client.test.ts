// The generated clients as scripts/prisma-generate.js leaves them: the query compiler's wasm is
// read from the base64 file's text, not imported as a module (which would keep its 2.6 MB source
// and string loaded for the life of the process), and each client still compiles it and queries.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../lib/paths.ts'
import { createPrismaClient } from '../../plugins/store/client.ts'
import { createTestDatabase, providers } from '../helpers/databases.ts'

const generate = await import(join(PACKAGE_ROOT, 'scripts', 'prisma-generate.js')) as { readWasmInsteadOfImport: (source: string) => string }

for (const { provider, skip } of await providers()) {
  t.test(`the ${provider} client reads its wasm and queries`, { skip }, async (t) => {
    const source = readFileSync(join(PACKAGE_ROOT, 'prisma', 'generated', provider, 'internal', 'class.ts'), 'utf8')
    t.notMatch(source, /wasm-base64\.mjs/, 'the base64 module is not imported')
    t.match(source, `resolve('@prisma/client/runtime/query_compiler_bg.${provider}.wasm-base64.js')`, 'its text is read')

    const db = await createTestDatabase(provider)
    const { prisma } = await createPrismaClient(db.url)
    t.teardown(async () => {
      await prisma.$disconnect()
      await db.drop()
    })
    const user = await prisma.user.create({ data: { email: `wasm-${provider}@example.com` } })
    t.equal((await prisma.user.findUnique({ where: { id: user.id }, select: { email: true } }))?.email, `wasm-${provider}@example.com`, 'an ORM query compiles and runs')
  })
}

t.test('the patch refuses a client whose wasm import it does not recognise', async (t) => {
  t.throws(() => generate.readWasmInsteadOfImport('getQueryCompilerWasmModule: async () => await loadSomehow()'), /no longer imports the query compiler wasm/)
  const patched = generate.readWasmInsteadOfImport([
    '  getQueryCompilerWasmModule: async () => {',
    '    const { wasm } = await import("@prisma/client/runtime/query_compiler_bg.sqlite.wasm-base64.mjs")',
    '    return await decodeBase64AsWasm(wasm)',
    '  }'
  ].join('\n'))
  t.notMatch(patched, /import\("/, 'no module import is left')
  t.match(patched, "resolve('@prisma/client/runtime/query_compiler_bg.sqlite.wasm-base64.js')")
})
