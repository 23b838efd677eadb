// Before `tsc`: removes dist/ so that no file of an earlier build (a module since moved or
// deleted) ends up in the package.
import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

rmSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'dist'), { recursive: true, force: true })
