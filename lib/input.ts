// Input that no valid request has: a NUL character (PostgreSQL cannot store it in text) and an
// unpaired UTF-16 surrogate (it has no UTF-8 form). Refused with a 400 where the input enters,
// before any service or database sees it, so such input is never a 500.
import createError from '@fastify/error'

/** Fastify's own validation error (FST_ERR_VALIDATION, 400), for checks no JSON schema can express. */
export const ValidationError = createError('FST_ERR_VALIDATION', '%s', 400)

// With the `u` flag a surrogate range matches only a surrogate that is not half of a pair.
const UNSAFE = /[\u0000\uD800-\uDFFF]/u

/** True when `text` holds a NUL character or an unpaired surrogate. */
export function hasUnsafeCharacter (text: string): boolean {
  return UNSAFE.test(text)
}

/**
 * The path (`body/email`) of the first string, or object key, in `value` that holds an unsafe
 * character; null when there is none. Walks at most `maxDepth` levels (JSON bodies are small here).
 */
export function findUnsafeText (value: unknown, path = 'body', maxDepth = 32): string | null {
  if (typeof value === 'string') return hasUnsafeCharacter(value) ? path : null
  if (value === null || typeof value !== 'object' || maxDepth === 0) return null
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnsafeText(value[i], `${path}/${i}`, maxDepth - 1)
      if (found !== null) return found
    }
    return null
  }
  for (const [key, item] of Object.entries(value)) {
    if (hasUnsafeCharacter(key)) return path
    const found = findUnsafeText(item, `${path}/${key}`, maxDepth - 1)
    if (found !== null) return found
  }
  return null
}

/** Throws FST_ERR_VALIDATION when `value` holds unsafe text; returns `value` otherwise. */
export function assertSafeInput<T> (value: T, path = 'body'): T {
  const found = findUnsafeText(value, path)
  if (found !== null) throw new ValidationError(`${found} must not contain a NUL character or an unpaired surrogate`)
  return value
}
