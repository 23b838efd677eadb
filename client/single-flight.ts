// One operation in flight at a time: callers that arrive while it runs share its promise, and
// the next caller after it settles starts a new one (no result is cached).

export interface SingleFlight<T> {
  run: () => Promise<T>
  readonly pending: boolean
}

export function singleFlight<T> (operation: () => Promise<T>): SingleFlight<T> {
  let current: Promise<T> | null = null
  return {
    run () {
      if (current !== null) return current
      const started = (async () => operation())()
      current = started
      const done = (): void => { if (current === started) current = null }
      started.then(done, done)
      return started
    },
    get pending () {
      return current !== null
    }
  }
}
