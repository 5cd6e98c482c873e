// The worker processes as the console sees them: each says it is alive every few seconds; none alive
// means queued and running targets are not progressing, and the console says so.
import { and, gt, isNull, sql } from 'drizzle-orm';
import os from 'node:os';
import type { Db } from '@/db/client';
import { workers } from '@/db/schema';

export const WORKER_ALIVE_EVERY_MS = 5000;
/** A worker silent for this long is taken for dead (three missed beats). */
export const WORKER_SILENT_MS = 3 * WORKER_ALIVE_EVERY_MS + 1000;

export async function registerWorker(db: Db, holder: string, concurrency: number): Promise<void> {
  await db
    .insert(workers)
    .values({ holder, hostname: os.hostname(), pid: process.pid, concurrency })
    .onConflictDoUpdate({ target: workers.holder, set: { lastSeenAt: sql`now()`, stoppedAt: null } });
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
export async function liveWorkers(db: Db): Promise<{ holder: string; hostname: string; concurrency: number; lastSeenAt: Date }[]> {
  return db
    .select({ holder: workers.holder, hostname: workers.hostname, concurrency: workers.concurrency, lastSeenAt: workers.lastSeenAt })
    .from(workers)
    .where(and(isNull(workers.stoppedAt), gt(workers.lastSeenAt, sql`now() - ${WORKER_SILENT_MS} * interval '1 millisecond'`)));
}
