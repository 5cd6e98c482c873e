// Execute: one operation target, under its herd's lease, re-checking the plan's facts first.
import { and, eq, max, sql } from 'drizzle-orm';
import { prepared, type Db } from '@/db/client';
import { operationSteps, operationTargets } from '@/db/schema';
import type { SshPool } from '@/lib/ssh/ssh-client';
import { dbRecorder } from './db-recorder';
import { isHerdAction, type ActionDeps, type AnyAction } from './define-action';
import { loadHerdRefs } from './herd-ref';
import type { Step } from './pipeline';
import { driverFor } from './drivers';
import { loadInstanceWithHerd } from './instance-ref';
import { claimTarget, heartbeat, leaseTtlMs, releaseLease, type ClaimedTarget } from './lease';
import { runPipeline } from './pipeline';
import { parseParams } from './plan';
import { getAction } from './registry';

export type ExecuteOutcome = 'done' | 'wait' | 'skipped';

const FINISH = {
  name: 'pgherd_finish_target',
  text: `WITH t AS (UPDATE operation_targets SET status = $2, error = $3, outcome = coalesce($4, outcome), updated_at = now() WHERE id = $1 RETURNING id)
         DELETE FROM herd_leases WHERE target_id = (SELECT id FROM t)`,
};

/**
 * Records how a target ended and gives back its herd's lease, in one statement. The database settles
 * the operation when this was its last open target (migration 0004's trigger).
 */
async function finishTarget(db: Db, targetId: number, status: 'succeeded' | 'failed' | 'cancelled' | 'interrupted', error: string | null, outcome: string | null = null) {
  await prepared(db, FINISH.name, FINISH.text, [targetId, status, error, outcome]);
}

const CANCELLED = { name: 'pgherd_cancel_requested', text: 'SELECT cancel_requested AS c FROM operations WHERE id = $1' };

/**
 * Runs one target. Bookkeeping is four round trips (claim, inventory, each step's record, finish)
 * around the action's own work, plus a write when a step runs long enough to be seen running.
 */
export async function executeTarget(db: Db, ssh: SshPool, targetId: number, holder: string, log: (e: string, f: object) => void = () => {}): Promise<ExecuteOutcome> {
  const target = await claimTarget(db, targetId, holder);
  if (!target || !['queued', 'running'].includes(target.status)) return 'skipped';
  const operationId = target.operation_id;
  let finished = false;
  let outcome: string | null = null;
  // Ends the target (and frees its lease, if it has one) in one statement.
  const end = async (status: 'succeeded' | 'failed' | 'cancelled', error: string | null) => {
    await finishTarget(db, targetId, status, error, outcome);
    finished = true;
    log('target.end', { operationId, targetId, status });
    return 'done' as const;
  };
  if (target.cancel_requested) return end('cancelled', 'cancelled before it started');
  if (target.herd_id === null) return end('failed', 'the herd was deleted from the inventory');
  if (target.attempts === null) return 'wait';
  const { herd_id: herdId, attempts } = target;
  const action = getAction(target.action);
  if (!action) return end('failed', `unknown action ${target.action}`);

  const beat = setInterval(() => {
    heartbeat(db, herdId, targetId).catch((err) => log('lease.heartbeat.error', { targetId, error: String(err) }));
  }, Math.max(200, leaseTtlMs() / 3));
  try {
    log('target.start', { operationId, targetId, action: target.action });
    // Fault injection for the crash tests: hold the target "running" long enough to kill the worker.
    const hold = Number(process.env.PGHERD_FAULT_HOLD_RUNNING_MS ?? 0);
    if (hold > 0) await new Promise((r) => setTimeout(r, hold));
    const deps: ActionDeps = {
      db, ssh,
      operation: { id: operationId, requestedBy: { id: target.requested_by, username: target.requested_by_name } },
      outcome: (text) => { outcome = text; },
    };
    const steps = await stepsNow(db, action, target, deps);
    if (typeof steps === 'string') return await end('failed', steps);
    // A retry appends its steps after those of earlier attempts.
    const firstSeq = attempts > 1
      ? ((await db.select({ last: max(operationSteps.seq) }).from(operationSteps).where(eq(operationSteps.targetId, targetId)))[0].last ?? 0) + 1
      : 1;
    const cancelled = async () => (await prepared<{ c: boolean }>(db, CANCELLED.name, CANCELLED.text, [operationId]))[0].c;
    const res = await runPipeline(steps, dbRecorder(db, targetId), { cancelled, firstSeq });
    return await end(res.ok ? 'succeeded' : res.error?.name === 'CancelledError' ? 'cancelled' : 'failed', res.ok ? null : res.error?.message ?? 'failed');
  } finally {
    clearInterval(beat);
    if (!finished) await releaseLease(db, herdId, targetId);
  }
}

/**
 * The target's steps, from a plan made again against the inventory as it is now (it may have moved
 * while the target queued); or why the target may not run.
 */
async function stepsNow(db: Db, action: AnyAction, target: ClaimedTarget, deps: ActionDeps): Promise<Step[] | string> {
  try {
    // Confirmed with the plan, and parsed again: a stored operation cannot carry what the form refuses.
    const params = parseParams(action, target.action_params ?? {});
    if (isHerdAction(action)) {
      const [herd] = await loadHerdRefs(db, [target.herd_id!]);
      if (!herd) return 'the herd was deleted from the inventory';
      const refused = action.plan(herd, { params }).refused;
      return refused ? `refused at execution: ${refused}` : action.steps(herd, deps, { params });
    }
    const loaded = target.instance_id === null ? null : await loadInstanceWithHerd(db, target.instance_id);
    if (!loaded) return 'the instance was deleted from the inventory';
    const ctx = { members: loaded.members, params };
    driverFor(loaded.ref.controlDriver);
    const refused = action.plan(loaded.ref, ctx).refused;
    return refused ? `refused at execution: ${refused}` : action.steps(loaded.ref, deps, ctx);
  } catch (err) {
    return `refused at execution: ${(err as Error).message}`;
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
    interrupted.push(row.id);
  }
  const queued = (await db.select({ id: operationTargets.id }).from(operationTargets).where(eq(operationTargets.status, 'queued'))).map((r) => r.id);
  return { interrupted, queued };
}
