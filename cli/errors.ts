/** A command called with the wrong words: exit code 2 and the command's usage. */
export class UsageError extends Error {
  override name = 'UsageError'
}
