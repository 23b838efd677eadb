// Turns the arguments of client.fetch(input, init) into a request that can be sent twice (once,
// then once more after a refresh). String, ArrayBuffer, typed array, Blob, FormData and
// URLSearchParams bodies are replayable as they are; a stream body (ReadableStream, a Node
// Readable, any async iterable) and the body of a Request object are read into memory first,
// which is what makes the single retry after a 401 possible.
import { configError } from './errors.ts'

export interface PreparedRequest {
  readonly url: string
  readonly method: string
  /** The caller's headers; Authorization is set per attempt. */
  readonly headers: Headers
  readonly body: BodyInit | undefined
  /** Everything else of RequestInit (signal, redirect, credentials, cache, ...). */
  readonly rest: RequestInit
}

const PASSED_THROUGH = ['signal', 'redirect', 'credentials', 'mode', 'cache', 'referrer', 'referrerPolicy', 'integrity', 'keepalive', 'priority'] as const

function isStream (body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false
  if (typeof (body as ReadableStream).getReader === 'function') return true
  return typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
}

async function bufferStream (body: unknown): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  const encoder = new TextEncoder()
  const iterable: AsyncIterable<unknown> = typeof (body as ReadableStream).getReader === 'function' && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function'
    ? readerIterable(body as ReadableStream)
    : body as AsyncIterable<unknown>
  for await (const chunk of iterable) {
    if (typeof chunk === 'string') chunks.push(encoder.encode(chunk))
    else if (chunk instanceof Uint8Array) chunks.push(chunk)
    else if (chunk instanceof ArrayBuffer) chunks.push(new Uint8Array(chunk))
    else if (ArrayBuffer.isView(chunk)) chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    else throw configError('INVALID_OPTION', 'a stream body must yield strings or bytes')
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

async function * readerIterable (stream: ReadableStream): AsyncIterable<unknown> {
  const reader = stream.getReader()
  try {
    while (true) {
      const { done, value } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    reader.releaseLock()
  }
}

/**
 * Resolves `input` against the base URL: `/path` is appended to the base (keeping its path
 * prefix), other relative references follow URL rules, absolute URLs are kept. The result must
 * be on an allowed origin: the Authorization header is never sent anywhere else.
 */
export function resolveUrl (input: string | URL, base: string, origins: ReadonlySet<string>): string {
  let url: URL
  try {
    url = typeof input === 'string' && input.startsWith('/') && !input.startsWith('//')
      ? new URL(base + input)
      : new URL(String(input), base + '/')
  } catch {
    throw configError('INVALID_OPTION', 'the request URL cannot be parsed')
  }
  if (!origins.has(url.origin)) {
    throw configError('UNTRUSTED_ORIGIN', `refusing to send credentials to ${url.protocol}//${url.host}: not the base URL's origin and not in allowedOrigins`)
  }
  return url.href
}

export async function prepareRequest (input: string | URL | Request, init: RequestInit | undefined, base: string, origins: ReadonlySet<string>): Promise<PreparedRequest> {
  const isRequest = typeof Request !== 'undefined' && input instanceof Request
  const url = resolveUrl(isRequest ? input.url : input as string | URL, base, origins)
  const rest: Record<string, unknown> = {}
  for (const key of PASSED_THROUGH) {
    const value = init?.[key as keyof RequestInit] ?? (isRequest ? (input as unknown as Record<string, unknown>)[key] : undefined)
    if (value !== undefined) rest[key] = value
  }
  const headers = new Headers(init?.headers ?? (isRequest ? input.headers : undefined))
  headers.delete('authorization')
  let body: unknown = init?.body ?? undefined
  if (body === undefined && isRequest && input.body !== null) body = new Uint8Array(await input.arrayBuffer())
  if (isStream(body)) body = await bufferStream(body)
  const method = (init?.method ?? (isRequest ? input.method : 'GET')).toUpperCase()
  return Object.freeze({ url, method, headers, body: (body ?? undefined) as BodyInit | undefined, rest: rest as RequestInit })
}

/** The RequestInit of one attempt, with the Authorization value of that attempt. */
export function attemptInit (request: PreparedRequest, authorization: string): RequestInit {
  const headers = new Headers(request.headers)
  headers.set('authorization', authorization)
  return { ...request.rest, method: request.method, headers, body: request.body }
}
