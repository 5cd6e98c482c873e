// How many full backups pgherd's expire keeps: the policy's count, and never fewer than the time floor
// needs. pgBackRest expires after each backup by count alone, so two full backups in a row would push
// every earlier backup, and the WAL only they need, out of the repository: a recovery window an operator
// could close in a minute. Expire is pgherd's step instead (backups run with expire-auto off), with a
// count that keeps every full backup of the last `keepDays` days and the newest one before them, which is
// what a restore to any moment of those days starts from (pgBackRest's own time retention, with the count
// as a further floor).
import type { ListedBackup } from './tool';

export function fullsToKeep(
  backups: Pick<ListedBackup, 'type' | 'stoppedAt' | 'error'>[],
  count: number,
  keepDays: number,
  now: Date,
): number {
  const fulls = backups.filter((b) => b.type === 'full' && !b.error).sort((a, b) => b.stoppedAt.getTime() - a.stoppedAt.getTime());
  const since = now.getTime() - keepDays * 86_400_000;
  const recent = fulls.filter((b) => b.stoppedAt.getTime() >= since).length;
  // The newest full backup before the window too: the window's first moments are restored from it.
  const byTime = recent < fulls.length ? recent + 1 : recent;
  return Math.max(count, byTime, 1);
}
