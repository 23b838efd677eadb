// Child processes of the runner: benchmark servers (compiled by tsc, as `node dist/...` runs in
// production, or under tsx; each announces its port as a JSON line) and load-generator jobs
// (autocannon in a process of its own).
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { processSample, systemSample, type ProcessSample, type SystemSample } from './proc.ts'
import type { Announcement } from './server-kit.ts'
import type { LoadJob, LoadResult } from '../loadgen.ts'

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')
export const ROOT = join(BENCH_DIR, '..')
/** Where `buildServers` compiles the project and the bench (tsconfig.bench.json). */
export const BUILD_DIR = join(BENCH_DIR, '.build')

/** How servers run: 'tsx' (the TypeScript sources, the default until `buildServers`) or 'compiled'. */
export type ServerRuntime = 'tsx' | 'compiled'
let runtime: ServerRuntime = 'tsx'
export function serverRuntime (): ServerRuntime {
  return runtime
}

/**
 * Compiles the project with the bench into bench/.build (tsc, incremental: a few seconds once
 * built) and copies the data files the plugins read (scripts/copy-assets.js, as the build does); servers started afterwards run that output
 * with plain node, without tsx's loader and its transformed sources in memory.
 */
export async function buildServers (): Promise<void> {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  await promisify(execFile)(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.bench.json')], { cwd: ROOT, maxBuffer: 16 * 2 ** 20 })
    .catch((err: Error & { stdout?: string }) => { throw new Error(`tsc -p tsconfig.bench.json failed:\n${tail(err.stdout ?? err.message, 20)}`) })
  await promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'copy-assets.js'), 'bench/.build'], { cwd: ROOT })
  runtime = 'compiled'
}

export interface ServerHandle {
  pid: number
  port: number
  url: string
  announcement: Announcement
  stop: () => Promise<void>
}

export type StartOutcome = { ok: true, server: ServerHandle } | { ok: false, reason: string }

function tail (text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join('\n')
}

/** Starts `bench/servers/<file>` (compiled once `buildServers` has run, else under tsx) and waits for its announcement line. */
export function startServer (file: string, args: string[], options: { env?: Record<string, string>, cpuProfDir?: string, timeoutMs?: number } = {}): Promise<StartOutcome> {
  const compiled = runtime === 'compiled'
  const nodeArgs = compiled ? [] : ['--import', 'tsx']
  if (options.cpuProfDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`)
  const entry = compiled ? join(BUILD_DIR, 'bench', 'servers', file.replace(/\.ts$/, '.js')) : join(BENCH_DIR, 'servers', file)
  const child = spawn(process.execPath, [...nodeArgs, entry, ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8000) })
  return new Promise((resolve) => {
    let settled = false
    const settle = (outcome: StartOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(outcome)
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      settle({ ok: false, reason: `no announcement within ${options.timeoutMs ?? 180_000} ms\n${tail(stderr)}` })
    }, options.timeoutMs ?? 180_000)
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: { ready?: boolean, skip?: string, port?: number } & Announcement
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      if (msg.skip !== undefined) settle({ ok: false, reason: msg.skip })
      else if (msg.ready === true) {
        settle({
          ok: true,
          server: {
            pid: child.pid!,
            port: msg.port!,
            url: `http://127.0.0.1:${msg.port}`,
            announcement: msg,
            stop: () => stopChild(child)
          }
        })
      }
    })
    child.on('exit', (code, signal) => settle({ ok: false, reason: `exited (${signal ?? code}) before announcing\n${tail(stderr)}` }))
  })
}

/** SIGTERM, then SIGKILL if the process is still there after 5 s. */
export function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => { clearTimeout(timer); resolve() })
    child.kill('SIGTERM')
  })
}

export interface Window {
  server: ProcessSample | null
  loadgen: ProcessSample | null
  system: SystemSample
  at: number
  /** CLOCK_MONOTONIC microseconds: the clock of V8 profile timestamps, in every process. */
  monoUs: number
}

function window (serverPids: number[], loadgenPid: number): Window & { servers: Array<ProcessSample | null> } {
  const servers = serverPids.map(processSample)
  return { servers, server: servers[0] ?? null, loadgen: processSample(loadgenPid), system: systemSample(), at: performance.now(), monoUs: Number(process.hrtime.bigint() / 1000n) }
}

export interface Measured extends LoadResult {
  /** Per server pid: CPU microseconds used during the measured window, RSS at its start and end. */
  servers: Array<{ pid: number, cpuUs: number, rssStart: number, rssEnd: number }>
  loadgenCpuUs: number
  /** CPU microseconds of the whole machine (all cores) during the window. */
  systemBusyUs: number
  wallUs: number
  cores: number
  /** The measured window on the monotonic clock (to cut a CPU profile to it). */
  monoStartUs: number
  monoEndUs: number
}

/** Runs one load job in a child process, sampling CPU of the servers, itself and the machine. */
export function runLoad (job: LoadJob, serverPids: number[], cores: number, script = 'loadgen.ts'): Promise<Measured> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, script), JSON.stringify(job)], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8000) })
  return new Promise((resolve, reject) => {
    let start: ReturnType<typeof window> | undefined
    let done = false
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: { event?: string } & LoadResult
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      if (msg.event === 'measure-start') start = window(serverPids, child.pid!)
      else if (msg.event === 'result' && start !== undefined) {
        const end = window(serverPids, child.pid!)
        done = true
        const { event: _event, ...result } = msg
        resolve({
          ...result,
          servers: serverPids.map((pid, i) => ({
            pid,
            cpuUs: (end.servers[i]?.cpuUs ?? 0) - (start!.servers[i]?.cpuUs ?? 0),
            rssStart: start!.servers[i]?.rssBytes ?? 0,
            rssEnd: end.servers[i]?.rssBytes ?? 0
          })),
          loadgenCpuUs: (end.loadgen?.cpuUs ?? 0) - (start.loadgen?.cpuUs ?? 0),
          systemBusyUs: end.system.busyUs - start.system.busyUs,
          wallUs: (end.at - start.at) * 1000,
          cores,
          monoStartUs: start.monoUs,
          monoEndUs: end.monoUs
        })
      }
    })
    child.on('exit', (code) => {
      if (!done) reject(new Error(`load generator exited (${code}) without a result\n${tail(stderr)}`))
    })
  })
}
