// Readings from /proc: CPU time and resident memory of one process, and the machine's CPU
// counters, so a run can say how much of the box the server, the load generator and everyone
// else used while it was measured.
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (sysconf(_SC_CLK_TCK)). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
  } catch {
    return 100
  }
})()

export interface ProcessSample {
  /** user + system CPU time in microseconds. */
  cpuUs: number
  /** resident set size in bytes. */
  rssBytes: number
}

/** CPU time and RSS of `pid`, or null when the process is gone. */
export function processSample (pid: number): ProcessSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces: fields after it start past the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rss = /VmRSS:\s+(\d+) kB/.exec(status)
    return { cpuUs: ((utime + stime) * 1e6) / CLK_TCK, rssBytes: rss === null ? 0 : Number(rss[1]) * 1024 }
  } catch {
    return null
  }
}

export interface SystemSample {
  /** CPU time spent busy by all cores, microseconds. */
  busyUs: number
  /** CPU time elapsed on all cores, microseconds. */
  totalUs: number
}

export function systemSample (): SystemSample {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
  const [, ...values] = line.trim().split(/\s+/)
  const n = values.map(Number)
  // user nice system idle iowait irq softirq steal (guest time is already counted in user)
  const idle = n[3] + (n[4] ?? 0)
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busyUs: ((total - idle) * 1e6) / CLK_TCK, totalUs: (total * 1e6) / CLK_TCK }
}
