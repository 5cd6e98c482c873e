// The worker processes as the console sees them: each says it is alive every few seconds; none alive
// means queued and running targets are not progressing, and the console says so.
import { and, gt, isNull, sql } from 'drizzle-orm';
import os from 'node:os';
import type { Db } from '@/db/client';
import { workers } from '@/db/schema';

export const WORKER_ALIVE_EVERY_MS = 5000;
/** A worker silent for this long is taken for dead (three missed beats). */
export const WORKER_SILENT_MS = 3 * WORKER_ALIVE_EVERY_MS + 1000;

export async function registerWorker(db: Db, holder: string, concurrency: number, refreshIntervalMs = 0): Promise<void> {
  await db
    .insert(workers)
    .values({ holder, hostname: os.hostname(), pid: process.pid, concurrency, refreshIntervalMs })
    .onConflictDoUpdate({ target: workers.holder, set: { lastSeenAt: sql`now()`, stoppedAt: null, refreshIntervalMs } });
  // Rows of workers gone for a day tell nobody anything.
  await db.delete(workers).where(sql`${workers.lastSeenAt} < now() - interval '1 day'`);
}

export async function workerAlive(db: Db, holder: string): Promise<void> {
  await db
    .update(workers)
    .set({ lastSeenAt: sql`now()` })
    .where(sql`${workers.holder} = ${holder}`);
}

export async function workerStopped(db: Db, holder: string): Promise<void> {
  await db
    .update(workers)
    .set({ stoppedAt: sql`now()` })
    .where(sql`${workers.holder} = ${holder}`);
}

/** The workers alive now: stopped ones and silent ones do not count. */
export async function liveWorkers(
  db: Db,
): Promise<{ holder: string; hostname: string; concurrency: number; refreshIntervalMs: number; lastSeenAt: Date }[]> {
  return db
    .select({
      holder: workers.holder,
      hostname: workers.hostname,
      concurrency: workers.concurrency,
      refreshIntervalMs: workers.refreshIntervalMs,
      lastSeenAt: workers.lastSeenAt,
    })
    .from(workers)
    .where(and(isNull(workers.stoppedAt), gt(workers.lastSeenAt, sql`now() - ${WORKER_SILENT_MS} * interval '1 millisecond'`)));
}

/**
 * What is wrong with the live workers' refresh intervals, in words, or null: workers that refresh at
 * different intervals (the herds go at the slowest one's pace), or at another than `consoleMs`, the
 * interval the console flags unobserved instances by (instances flagged that are not late, or late ones
 * not flagged).
 */
export function refreshIntervalsDisagree(
  live: { hostname: string; holder: string; refreshIntervalMs: number }[],
  consoleMs: number,
): string | null {
  const refreshing = live.filter((w) => w.refreshIntervalMs > 0);
  const intervals = [...new Set(refreshing.map((w) => w.refreshIntervalMs))];
  const s = (ms: number) => `${ms / 1000} s`;
  if (intervals.length > 1)
    return `the workers refresh at different intervals (${refreshing.map((w) => `${w.hostname} ${s(w.refreshIntervalMs)}`).join(', ')}): a herd goes at the slowest one's pace. Give every worker and the console the same PGHERD_REFRESH_INTERVAL_MS`;
  const [only] = intervals;
  if (only !== undefined && consoleMs > 0 && only !== consoleMs)
    return `the workers refresh every ${s(only)}, the console judges unobserved instances by ${s(consoleMs)}: give the console the workers' PGHERD_REFRESH_INTERVAL_MS`;
  return null;
}
