import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package root (the folder holding package.json), from source (tsx) or from dist/. */
export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))

function findRoot (start: string): string {
  let dir = start
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'prisma'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`gatehouse: cannot find the package root above ${start}`)
    dir = parent
  }
  return dir
}
