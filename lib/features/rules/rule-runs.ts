// A rule's runs while they are decided: what a fire hands on (the queues, the log), the heartbeat that
// says a run is still being decided, and the retry of targets skipped for their conditions or failed.
import type { Queue } from 'bullmq';
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { ruleRuns } from '@/db/schema';
import { errorText } from '@/lib/engine/errors';
import type { TargetJob } from '@/lib/engine/queue';
import { retrySchema } from './rule-body';
import { runJobId, type RuleJob } from './rule-queue';
import type { RuleRow } from './rules';
import type { Values } from './conditions';
import { setting } from '@/lib/settings/settings';

export type RunRow = typeof ruleRuns.$inferSelect;

export interface FireDeps {
  db: Db;
  /** The operations' queue (null: the worker's reconcile enqueues the operation's targets). */
  queue: Queue<TargetJob> | null;
  /** The rules' queue, for a retry's job (absent: a worker's reconcile adds it once the retry is due). */
  rules?: Queue<RuleJob> | null;
  log: (event: string, fields: object) => void;
}

/** How often a worker deciding a run says so; a run silent for staleDecidingMs() is taken for abandoned. */
export const heartbeatMs = () => setting('PGHERD_RULE_HEARTBEAT_MS');

export const staleDecidingMs = () => 6 * heartbeatMs();

/** While `work` runs, the runs it decides are marked as being decided, every heartbeatMs(). */
export async function withHeartbeat<T>(db: Db, runIds: number[], work: () => Promise<T>): Promise<T> {
  const beat = () =>
    db
      .update(ruleRuns)
      .set({ heartbeatAt: sql`now()` })
      .where(and(sql`${ruleRuns.id} = ANY(${sql.param(runIds)}::bigint[])`, eq(ruleRuns.status, 'deciding')))
      .catch(() => {}); // a missed beat is only a later one; the reconcile allows several
  const timer = setInterval(() => void beat(), heartbeatMs());
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * A later run for targets skipped for their conditions: after the rule's retry delay (with jitter),
 * while it has retries left. Its reason, or null when the rule retries no more.
 */
export async function scheduleRetry(
  deps: FireDeps,
  rule: RuleRow,
  run: RunRow,
  targets: RunTarget[],
  now: Date,
  why: 'conditions' | 'failed' = 'conditions',
): Promise<string | null> {
  if (!rule.retry || !targets.length) return null;
  const retry = retrySchema.parse(rule.retry);
  const attempt = run.attempt + 1;
  if (attempt > retry.times) return `no retry left (${retry.times} done)`;
  const delayMs = (retry.afterSeconds + Math.random() * retry.jitterSeconds) * 1000;
  const at = new Date(now.getTime() + delayMs);
  const root = run.retryOf ?? run.id;
  const [made] = await deps.db
    .insert(ruleRuns)
    .values({
      ruleId: rule.id,
      kind: 'retry',
      // One retry a reason and attempt: targets skipped for conditions and targets that failed in the
      // operation are retried separately.
      fireKey: `retry:${String(root)}:${String(attempt)}:${why}`,
      dueAt: at,
      firedAt: at,
      attempt,
      retryOf: root,
      status: 'firing',
      // A retry is of the rule as it was: saved or disabled before it is due, it is refused, not run.
      ruleVersion: rule.version,
      targets: targets.map((t) => ({ id: t.id, label: t.label })),
    })
    .onConflictDoNothing()
    .returning({ id: ruleRuns.id });
  if (!made) return null;
  await deps.rules
    ?.add('run', { runId: made.id }, { jobId: runJobId(made.id), delay: Math.round(delayMs) })
    .catch((err: unknown) => deps.log('rule.retry.enqueue.deferred', { runId: made.id, error: errorText(err) }));
  return `retry ${String(attempt)} of ${String(retry.times)} at ${at.toISOString()} (run #${String(made.id)})`;
}

export type RunTarget = { id: number; label: string; skipped?: string; values?: Values; before?: Record<string, string> };
