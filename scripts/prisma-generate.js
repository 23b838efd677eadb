// Renders prisma/schema.prisma once per provider and generates a Prisma client for each.
// Runs at `npm install` in a checkout (prepare) and before `npm pack` (prepack); offline: Prisma
// 6.19's client engine is wasm.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const prismaBin = join(root, 'node_modules', 'prisma', 'build', 'index.js')

export const PROVIDERS = {
  sqlite: 'file:./unused.db',
  postgresql: 'postgresql://localhost:5432/unused'
}

export function renderSchema (provider) {
  const source = readFileSync(join(root, 'prisma', 'schema.prisma'), 'utf8')
  return source
    .replace(/provider\s*=\s*"sqlite"/, `provider = "${provider}"`)
    .replace(/url\s*=\s*"file:\.\/unused\.db"/, `url      = "${PROVIDERS[provider]}"`)
    .replace(/output\s*=\s*"\.\/generated\/sqlite"/, `output                 = "./${provider}"`)
}

export function renderedSchemaPath (provider) {
  return join(root, 'prisma', 'generated', `${provider}.prisma`)
}

// The generated client imports the query compiler's wasm as a module whose one export is the
// binary in base64 (2.6 MB). An imported module stays loaded for the life of the process, and with
// it both its source text and that string: about 5 MiB of heap in every process, for bytes needed
// once, when the wasm module is compiled. Patched to read the same file's text instead: the text is
// garbage as soon as the module is compiled.
const WASM_IMPORT = /const \{ wasm \} = await import\("(@prisma\/client\/runtime\/query_compiler_bg\.\w+\.wasm-base64)\.mjs"\)\n(\s*)return await decodeBase64AsWasm\(wasm\)/

export function readWasmInsteadOfImport (source) {
  const match = WASM_IMPORT.exec(source)
  if (match === null) throw new Error('prisma-generate: the generated client no longer imports the query compiler wasm as expected (scripts/prisma-generate.js)')
  const [, specifier, indent] = match
  return source.replace(WASM_IMPORT, [
    "const { readFileSync } = await import('node:fs')",
    "const { createRequire } = await import('node:module')",
    `const text = readFileSync(createRequire(import.meta.url).resolve('${specifier}.js'), 'latin1')`,
    "const start = text.indexOf('\"') + 1",
    "return await decodeBase64AsWasm(text.slice(start, text.indexOf('\"', start)))"
  ].join('\n' + indent))
}

function main () {
  if (!existsSync(prismaBin)) {
    console.error('prisma-generate: the prisma package is not installed; run `npm install`')
    process.exit(1)
  }
  mkdirSync(join(root, 'prisma', 'generated'), { recursive: true })
  for (const provider of Object.keys(PROVIDERS)) {
    const path = renderedSchemaPath(provider)
    writeFileSync(path, '// Generated from prisma/schema.prisma by scripts/prisma-generate.js. Do not edit.\n' + renderSchema(provider))
    process.stdout.write(`prisma: generating the ${provider} client... `)
    execFileSync(process.execPath, [prismaBin, 'generate', '--config', join(root, 'prisma.config.ts'), '--schema', path, '--no-hints'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' }
    })
    const classFile = join(root, 'prisma', 'generated', provider, 'internal', 'class.ts')
    writeFileSync(classFile, readWasmInsteadOfImport(readFileSync(classFile, 'utf8')))
    process.stdout.write('done\n')
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main()
