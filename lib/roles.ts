// Global roles are stored as JSON text (a portable column for SQLite and PostgreSQL) and carried
// in claims; both are read here, the one way.

/** The role names in a value: the string entries of an array, [] for anything else. */
export function roleList (value: unknown): string[] {
  if (!Array.isArray(value)) return []
  return value.filter((r): r is string => typeof r === 'string')
}

/** The role names in a stored `roles` column: only strings, and [] for anything unreadable. */
export function parseRoles (raw: string): string[] {
  try {
    return roleList(JSON.parse(raw))
  } catch {
    return []
  }
}
