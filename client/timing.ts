// When to refresh. Two estimates of expiry: `expires_in` counted from the moment the request was
// sent (never later than the truth), and the token's `exp` converted to the local clock with the
// offset measured from the server's Date header (RFC 9110 §6.6.1). The earlier one wins. `exp`
// is used only when the offset is known: against an unknown local clock it could look already
// past (a refresh on every call) or far away.

/**
 * Server clock minus local clock, in ms, from a response's Date header; undefined without one.
 * The server stamped the header between sentAt and receivedAt, so the midpoint is the best
 * local estimate. Date has 1 s resolution: the result is good to about a second.
 */
export function clockOffsetMs (dateHeader: string | null | undefined, sentAt: number, receivedAt: number): number | undefined {
  if (dateHeader === null || dateHeader === undefined || dateHeader === '') return undefined
  const serverTime = Date.parse(dateHeader)
  if (!Number.isFinite(serverTime)) return undefined
  return serverTime - (sentAt + receivedAt) / 2
}

export interface ExpiryInput {
  /** `expires_in` of the token response, seconds. */
  expiresIn: number | undefined
  /** `exp` claim of the access token, epoch seconds (server clock). */
  exp: number | undefined
  /** Local time the token request was sent. */
  sentAt: number
  /** Server minus local clock, ms. */
  offsetMs: number | undefined
}

/** Local epoch ms at which the access token expires, or undefined when nothing says. */
export function expiryFrom ({ expiresIn, exp, sentAt, offsetMs }: ExpiryInput): number | undefined {
  const candidates: number[] = []
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0) candidates.push(sentAt + expiresIn * 1000)
  if (exp !== undefined && offsetMs !== undefined) candidates.push(exp * 1000 - offsetMs)
  return candidates.length === 0 ? undefined : Math.min(...candidates)
}

export interface RefreshPlanInput {
  /** Local time the token was obtained. */
  issuedAt: number
  expiresAt: number
  skewMs: number
  jitterMs: number
  /** A number in [0, 1). */
  random: number
}

/**
 * The local time to refresh at: `skew + random * jitter` before expiry, but never in the first
 * half of the token's life, so a short-lived token (or a skew larger than the lifetime) cannot
 * make the client refresh again right after every refresh.
 */
export function refreshAtFrom ({ issuedAt, expiresAt, skewMs, jitterMs, random }: RefreshPlanInput): number {
  const lifetime = Math.max(0, expiresAt - issuedAt)
  const lead = Math.min(skewMs + random * jitterMs, lifetime / 2)
  return Math.round(expiresAt - lead)
}

/** setTimeout's largest delay (2^31 - 1 ms); longer delays fire at once in every runtime. */
export const MAX_TIMER_MS = 2_147_483_647

/**
 * A timer that does not keep a Node process alive (unref when the runtime has it; browsers
 * return a number and have nothing to unref).
 */
export function backgroundTimer (fn: () => void, delayMs: number): () => void {
  const handle = setTimeout(fn, Math.min(Math.max(0, delayMs), MAX_TIMER_MS)) as unknown
  if (handle !== null && typeof handle === 'object' && typeof (handle as { unref?: unknown }).unref === 'function') {
    (handle as { unref: () => void }).unref()
  }
  return () => clearTimeout(handle as Parameters<typeof clearTimeout>[0])
}
