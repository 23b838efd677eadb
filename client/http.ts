// Sending a request and reading the server's answer into values or typed errors. A thrown
// error never carries the request (its headers hold the credentials): only status, the server's
// code and message, and Retry-After.
import { GatehouseHttpError, GatehouseNetworkError } from './errors.ts'
import type { FetchFunction } from './options.ts'

export interface Sent {
  response: Response
  sentAt: number
  receivedAt: number
}

function isAbort (err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name
  return name === 'AbortError' || name === 'TimeoutError'
}

/** fetch, with failures to get any answer turned into GatehouseNetworkError (aborts stay aborts). */
export async function send (fetchFn: FetchFunction, url: string, init: RequestInit, now: () => number): Promise<Sent> {
  const sentAt = now()
  let response: Response
  try {
    response = await fetchFn(url, init)
  } catch (err) {
    if (isAbort(err)) throw err
    throw new GatehouseNetworkError({ kind: 'network', code: 'NETWORK_ERROR', cause: err })
  }
  return { response, sentAt, receivedAt: now() }
}

function retryAfterSeconds (response: Response): number | undefined {
  const raw = response.headers.get('retry-after')
  if (raw === null) return undefined
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim())
  const date = Date.parse(raw)
  return Number.isFinite(date) ? Math.max(0, Math.ceil((date - Date.now()) / 1000)) : undefined
}

/** The server's `{statusCode, code, error, message}` (CONTRACT §4) as a GatehouseHttpError. */
export async function errorFromResponse (response: Response): Promise<GatehouseHttpError> {
  let body: unknown
  try {
    body = await response.json()
  } catch {
    body = undefined
  }
  const fields = body !== null && typeof body === 'object' ? body as Record<string, unknown> : {}
  const code = typeof fields.code === 'string' && fields.code !== '' ? fields.code : `HTTP_${response.status}`
  const message = typeof fields.message === 'string' ? fields.message : (response.statusText || `HTTP ${response.status}`)
  return new GatehouseHttpError({ kind: 'http', status: response.status, code, message, retryAfter: retryAfterSeconds(response) })
}

/** The server's error code of a response without consuming it (reads a clone). */
export async function peekCode (response: Response): Promise<string | undefined> {
  try {
    const body: unknown = await response.clone().json()
    const code = body !== null && typeof body === 'object' ? (body as { code?: unknown }).code : undefined
    return typeof code === 'string' ? code : undefined
  } catch {
    return undefined
  }
}

/** The JSON body of a successful response; an error response throws its GatehouseHttpError. */
export async function readJson<T> (response: Response): Promise<T> {
  if (!response.ok) throw await errorFromResponse(response)
  if (response.status === 204) return undefined as T
  try {
    return await response.json() as T
  } catch (err) {
    throw new GatehouseNetworkError({ kind: 'network', code: 'INVALID_RESPONSE', status: response.status, cause: err })
  }
}

/** Drops a body that will not be read, so the connection can be reused. */
export function discard (response: Response): void {
  response.body?.cancel().catch(() => {})
}
