// Runs the tap suite and ends with one plain summary line ("tests: N passed, N failed,
// N skipped") that any CI can read; the exit code is tap's.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const tapBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'tap', 'dist', 'esm', 'run.mjs')
const args = process.argv.slice(2)
const child = spawn(process.execPath, [tapBin, ...args], { stdio: ['inherit', 'pipe', 'inherit'], env: process.env })
let tail = ''
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  tail = (tail + chunk.toString()).slice(-4000)
})
child.on('close', (code, signal) => {
  const match = /# \{ ([^}]*) \}/.exec(tail)
  if (match !== null) {
    const counts = Object.fromEntries(match[1].split(',').map((kv) => kv.trim().split(/:\s*/)).map(([k, v]) => [k, Number(v)]))
    const failed = counts.fail ?? 0
    process.stdout.write(`\ntests: ${counts.pass ?? 0} passed, ${failed} failed, ${counts.skip ?? 0} skipped\n`)
  } else {
    process.stdout.write('\ntests: summary not found in tap output\n')
  }
  process.exit(signal !== null ? 1 : code ?? 1)
})
