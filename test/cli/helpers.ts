// Runs the operations CLI as a user runs it: a child process with only the given environment.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../lib/paths.ts'

export interface Result { code: number, stdout: string, stderr: string }

export function cli (args: string[], env: Record<string, string>, input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'cli.ts'), ...args], { cwd: PACKAGE_ROOT, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
    if (input !== undefined) child.stdin!.end(input)
    else child.stdin!.end()
  })
}
