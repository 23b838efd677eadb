// Global roles are stored as JSON text (a portable column for SQLite and PostgreSQL).

/** The role names in a stored `roles` column: only strings, and [] for anything unreadable. */
export function parseRoles (raw: string): string[] {
  try {
    const roles: unknown = JSON.parse(raw)
    return Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : []
  } catch {
    return []
  }
}
