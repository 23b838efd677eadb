// A redis-server child process of the test's own, on a free port, so a test can stop, pause
// and restart "the" Redis without touching the shared one.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

export const REDIS_SERVER_SKIP_REASON = (() => {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  return probe.error === undefined && probe.status === 0 ? false : 'redis-server is not installed (apt-get install redis-server); the Redis fault tests need their own server'
})()

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface RedisServer {
  url: string
  port: number
  start: () => Promise<void>
  /** SIGKILL: the connection drops at once, as in a crash. */
  kill: () => Promise<void>
  /** SIGSTOP / SIGCONT: Redis hangs (accepts bytes, answers nothing). */
  pause: () => void
  resume: () => void
}

export async function redisServer (t: { teardown: (fn: () => unknown) => void }): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | null = null

  async function start (): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`redis-server on ${port} did not start: ${out}`)), 10_000)
      proc.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
      proc.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server on ${port} exited with ${String(code)}: ${out}`))
      })
    })
  }

  async function kill (): Promise<void> {
    const proc = child
    child = null
    if (proc === null || proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGCONT')
    proc.kill('SIGKILL')
    await exited
  }

  t.teardown(kill)
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    kill,
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') }
  }
}

/** Polls `probe` until it returns true (every 100 ms, at most `limitMs`); returns whether it did. */
export async function eventually (probe: () => Promise<boolean>, limitMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + limitMs
  while (Date.now() < deadline) {
    if (await probe()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}
