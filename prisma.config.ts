// Prisma CLI configuration. Prisma 6.19 runs offline only with its JavaScript engine and a
// driver adapter (the native schema engine would be downloaded). The schema path is given
// on the command line by scripts/prisma-generate.js, once per provider.
import { defineConfig } from 'prisma/config'
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3'

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  adapter: async () => new PrismaBetterSQLite3({ url: 'file::memory:' })
})
