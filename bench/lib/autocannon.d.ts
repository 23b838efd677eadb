// The part of autocannon 9's programmatic API the load generator uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'
  namespace autocannon {
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string | Buffer
      setupRequest?: (req: Request, context: Record<string, unknown>) => Request | undefined
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void
    }
    interface Options {
      url: string
      connections?: number
      duration?: number
      amount?: number
      overallRate?: number
      timeout?: number
      pipelining?: number
      requests?: Request[]
    }
    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      total: number
      p50: number
      p90: number
      p99: number
      [key: string]: number
    }
    interface Result {
      duration: number
      requests: Histogram
      latency: Histogram
      throughput: Histogram
      errors: number
      timeouts: number
      non2xx: number
      '2xx': number
      statusCodeStats?: Record<string, { count: number }>
    }
  }
  function autocannon (options: autocannon.Options, callback?: (err: Error | null, result: autocannon.Result) => void): EventEmitter
  export default autocannon
}
