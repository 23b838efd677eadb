import { resolve } from 'node:path'
import { OptionsError } from '../../lib/options.ts'

export type Provider = 'sqlite' | 'postgresql'

export interface DatabaseTarget {
  provider: Provider
  /** The URL as given (for PostgreSQL, passed to the driver as is). */
  url: string
  /** SQLite only: the absolute path of the database file, or ':memory:'. */
  file?: string
}

/** A DATABASE_URL (the store's `databaseUrl`) that names no supported database. */
export class DatabaseUrlError extends OptionsError {
  override name = 'DatabaseUrlError'
  constructor (message: string) {
    super('gatehouse-store', 'databaseUrl', message)
  }
}

/**
 * `file:<path>` selects embedded SQLite (relative paths are relative to the working
 * directory); `postgresql://` or `postgres://` selects PostgreSQL. Anything else is refused.
 */
export function parseDatabaseUrl (url: string): DatabaseTarget {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new DatabaseUrlError('DATABASE_URL is empty: use file:./data/gatehouse.db or postgresql://user@host:5432/db')
  }
  if (url.startsWith('file:')) {
    const rest = url.slice('file:'.length).replace(/\?.*$/, '')
    if (rest === '') throw new DatabaseUrlError('DATABASE_URL "file:" names no file: use file:./data/gatehouse.db')
    const file = rest === ':memory:' ? ':memory:' : resolve(rest.replace(/^\/\/(?=\/)/, ''))
    return { provider: 'sqlite', url, file }
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new DatabaseUrlError('DATABASE_URL is not a valid postgresql:// URL')
    }
    if (parsed.hostname === '' || parsed.pathname.length <= 1) {
      throw new DatabaseUrlError('DATABASE_URL must name a host and a database: postgresql://user@host:5432/db')
    }
    return { provider: 'postgresql', url }
  }
  throw new DatabaseUrlError('DATABASE_URL must start with file: (SQLite) or postgresql:// (PostgreSQL)')
}

/** The URL with any password removed, for logs. */
export function redactDatabaseUrl (url: string): string {
  if (url.startsWith('file:')) return url
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparseable>'
  }
}
