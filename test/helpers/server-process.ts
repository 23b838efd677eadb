// Starts the real server (server.ts) as a child process, the way `npm start` runs it, and
// waits for its "listening" log line to learn the address. Used by the multi-instance and
// end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { PACKAGE_ROOT } from '../../lib/paths.ts'

export interface ServerProcess {
  url: string
  pid: number
  child: ChildProcess
  /** Every line the process wrote to stdout and stderr. */
  output: string[]
  /** SIGTERM and wait for the exit code. */
  stop: () => Promise<number | null>
  /** SIGKILL at once. */
  kill: () => Promise<void>
}

export async function startServer (env: Record<string, string>, timeoutMs = 30_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'server.ts')], {
    cwd: PACKAGE_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', MAIL_OUTBOX_DIR: join(tmpdir(), `gatehouse-outbox-${process.pid}`), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within ${timeoutMs} ms:\n${output.join('\n')}`)), timeoutMs)
    const onLine = (line: string): void => {
      output.push(line)
      const match = /"msg":"Gatehouse listening on (http:\/\/[^"]+)"/.exec(line)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    let buffered = ''
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', (chunk: Buffer) => {
        buffered += chunk.toString()
        let index
        while ((index = buffered.indexOf('\n')) !== -1) {
          onLine(buffered.slice(0, index))
          buffered = buffered.slice(index + 1)
        }
      })
    }
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening:\n${output.join('\n')}`))
    })
  })
  return {
    url,
    pid: child.pid!,
    child,
    output,
    async stop () {
      if (child.exitCode !== null) return child.exitCode
      child.kill('SIGTERM')
      return await exited
    },
    async kill () {
      if (child.exitCode !== null) return
      child.kill('SIGKILL')
      await exited
    }
  }
}

/** A JSON request with fetch; returns status, headers and parsed body. */
export async function call (base: string, method: string, path: string, options: { body?: unknown, token?: string, authorization?: string, headers?: Record<string, string>, form?: Record<string, string> } = {}): Promise<{ status: number, body: any, headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers }
  let body: string | undefined
  if (options.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(options.form).toString()
  } else if (options.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.body)
  }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.authorization !== undefined) headers.authorization = options.authorization
  const res = await fetch(base + path, { method, headers, body })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = text === '' ? null : JSON.parse(text) } catch {}
  return { status: res.status, body: parsed, headers: res.headers }
}
