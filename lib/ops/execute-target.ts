// Execute: one operation target, under its herd's lease, re-checking the plan's facts first.
import { and, eq, max, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations, operationSteps, operationTargets } from '@/db/schema';
import type { SshPool } from '@/lib/ssh/ssh-client';
import { dbRecorder } from './db-recorder';
import { driverFor } from './drivers';
import { loadHerdMembers, loadInstanceRefs } from './instance-ref';
import { acquireLease, heartbeat, leaseTtlMs, releaseLease } from './lease';
import { runPipeline } from './pipeline';
import { getAction } from './registry';

export type ExecuteOutcome = 'done' | 'wait' | 'skipped';

async function finishTarget(db: Db, targetId: number, status: 'succeeded' | 'failed' | 'cancelled' | 'interrupted', error: string | null) {
  await db.update(operationTargets).set({ status, error }).where(eq(operationTargets.id, targetId));
}

/** Closes the operation once no target is queued or running: succeeded, failed, partial or cancelled. */
export async function settleOperation(db: Db, operationId: number): Promise<void> {
  const rows = await db.select({ status: operationTargets.status, n: sql<number>`count(*)::int` })
    .from(operationTargets).where(eq(operationTargets.operationId, operationId)).groupBy(operationTargets.status);
  const n = (s: string) => rows.find((r) => r.status === s)?.n ?? 0;
  if (n('queued') + n('running') > 0) return;
  const total = rows.reduce((a, r) => a + r.n, 0);
  const status = n('succeeded') === total ? 'succeeded'
    : n('succeeded') > 0 ? 'partial'
    : n('cancelled') === total ? 'cancelled'
    : 'failed';
  await db.update(operations).set({ status, finishedAt: new Date() })
    .where(and(eq(operations.id, operationId), sql`${operations.finishedAt} IS NULL`));
}

export async function executeTarget(db: Db, ssh: SshPool, targetId: number, holder: string, log: (e: string, f: object) => void = () => {}): Promise<ExecuteOutcome> {
  const [target] = await db.select().from(operationTargets).where(eq(operationTargets.id, targetId));
  if (!target || !['queued', 'running'].includes(target.status)) return 'skipped';
  const [op] = await db.select().from(operations).where(eq(operations.id, target.operationId));
  const fail = async (status: 'failed' | 'cancelled', error: string) => {
    await finishTarget(db, targetId, status, error);
    await settleOperation(db, op.id);
    return 'done' as const;
  };
  if (op.cancelRequested) return fail('cancelled', 'cancelled before it started');
  const action = getAction(op.action);
  if (!action) return fail('failed', `unknown action ${op.action}`);
  if (target.instanceId === null || target.herdId === null) return fail('failed', 'the instance was deleted from the inventory');
  if (!(await acquireLease(db, target.herdId, targetId, holder))) return 'wait';

  const beat = setInterval(() => {
    heartbeat(db, target.herdId!, targetId).catch((err) => log('lease.heartbeat.error', { targetId, error: String(err) }));
  }, Math.max(200, leaseTtlMs() / 3));
  try {
    await db.update(operationTargets).set({ status: 'running', attempts: sql`${operationTargets.attempts} + 1` }).where(eq(operationTargets.id, targetId));
    await db.update(operations).set({ status: 'running', startedAt: sql`coalesce(${operations.startedAt}, now())` })
      .where(and(eq(operations.id, op.id), sql`${operations.status} = 'queued'`));
    log('target.start', { operationId: op.id, targetId, action: op.action });
    // Fault injection for the crash tests: hold the target "running" long enough to kill the worker.
    const hold = Number(process.env.PGHERD_FAULT_HOLD_RUNNING_MS ?? 0);
    if (hold > 0) await new Promise((r) => setTimeout(r, hold));
    // Re-check the facts the plan relied on: the inventory may have moved while the target queued.
    const [ref] = await loadInstanceRefs(db, [target.instanceId]);
    if (!ref) return await fail('failed', 'the instance was deleted from the inventory');
    const ctx = { members: (await loadHerdMembers(db, [ref])).get(ref.herdId)! };
    let refusal: string | undefined;
    try {
      driverFor(ref.controlDriver);
      refusal = action.plan(ref, ctx).refused;
    } catch (err) {
      refusal = (err as Error).message;
    }
    if (refusal) return await fail('failed', `refused at execution: ${refusal}`);
    // A retry appends its steps after those of earlier attempts.
    const [{ last }] = await db.select({ last: max(operationSteps.seq) }).from(operationSteps).where(eq(operationSteps.targetId, targetId));
    const cancelled = async () => (await db.select({ c: operations.cancelRequested }).from(operations).where(eq(operations.id, op.id)))[0].c;
    const res = await runPipeline(action.steps(ref, { db, ssh }, ctx), dbRecorder(db, targetId), { cancelled, firstSeq: (last ?? 0) + 1 });
    const status = res.ok ? 'succeeded' : res.error?.name === 'CancelledError' ? 'cancelled' : 'failed';
    await finishTarget(db, targetId, status, res.ok ? null : res.error?.message ?? 'failed');
    log('target.end', { operationId: op.id, targetId, status });
    await settleOperation(db, op.id);
    return 'done';
  } finally {
    clearInterval(beat);
    await releaseLease(db, target.herdId, targetId);
  }
}

/**
 * At worker start and periodically: targets marked running whose lease is gone or expired were
 * running in a worker that died: they become interrupted (rerunning a half-done step blindly is not
 * safe; the operation page offers a retry). Returns the queued targets, for the caller to enqueue.
 */
export async function reconcile(db: Db): Promise<{ interrupted: number[]; queued: number[] }> {
  const dead = await db.execute(sql`
    SELECT t.id, t.operation_id FROM operation_targets t
    LEFT JOIN herd_leases l ON l.target_id = t.id AND l.expires_at > now()
    WHERE t.status = 'running' AND l.herd_id IS NULL`);
  const interrupted: number[] = [];
  for (const row of dead.rows as { id: number; operation_id: number }[]) {
    await db.update(operationTargets).set({ status: 'interrupted', error: 'the worker running it stopped (lease expired); retry it from the operation page' })
      .where(and(eq(operationTargets.id, row.id), eq(operationTargets.status, 'running')));
    await db.execute(sql`DELETE FROM herd_leases WHERE target_id = ${row.id}`);
    await db.execute(sql`UPDATE operation_steps SET status = 'failed', finished_at = now(), stderr_tail = stderr_tail || 'interrupted' WHERE target_id = ${row.id} AND status = 'running'`);
    await settleOperation(db, row.operation_id);
    interrupted.push(row.id);
  }
  const queued = (await db.select({ id: operationTargets.id }).from(operationTargets).where(eq(operationTargets.status, 'queued'))).map((r) => r.id);
  return { interrupted, queued };
}
