export async function runCluster (_: { warmupSec: number, durationSec: number, rounds: number, cores: number, log: (l: string) => void }): Promise<{ skipped: string } | { rows: Array<{ op: string, one: number, two: number, oneP99: number, twoP99: number }> }> {
  return { skipped: 'not built yet' }
}
