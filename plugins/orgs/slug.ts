// Organization slugs: lower-case ASCII words joined by '-', derived from the name.

export const MAX_SLUG_LENGTH = 48

/** `Acme Café, Inc.` -> `acme-cafe-inc`; a name with no usable character gives `org`. */
export function slugify (name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_SLUG_LENGTH)
    .replace(/-+$/g, '')
  return slug === '' ? 'org' : slug
}

/** The first of `base`, `base-2`, `base-3`, ... not in `taken`. */
export function nextFreeSlug (base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base
  for (let n = 2; ; n++) {
    const candidate = `${base}-${n}`
    if (!taken.has(candidate)) return candidate
  }
}
