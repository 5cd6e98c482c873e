// Execute: one operation target, under its herd's lease, re-checking the plan's facts first.
import { and, eq, max, sql } from 'drizzle-orm';
import { prepared, type Db } from '@/db/client';
import { operationSteps, operationTargets } from '@/db/schema';
import type { SshPool } from '@/lib/ssh/ssh-client';
import { dbRecorder } from './db-recorder';
import { herdServers, isHerdAction, unpinnedRefusal, type ActionDeps, type AnyAction } from './define-action';
import { loadHerdRefs } from './herd-ref';
import type { Step } from './pipeline';
import { driverFor } from './drivers';
import { loadInstanceWithHerd } from './instance-ref';
import { claimTarget, gate, heartbeat, LeaseLostError, leaseTtlMs, releaseLease, type ClaimedTarget } from './lease';
import { lastSeen } from './last-seen';
import { runPipeline } from './pipeline';
import { parseParams } from './plan';
import { getAction } from './registry';
import { AccessDenied, auditDenial, demand, loadAccess, noAccess } from '@/lib/auth/access';

export type ExecuteOutcome = 'done' | 'wait' | 'skipped';

// Only a running target is ended here: one that reconcile has already marked interrupted (its lease
// expired while this worker was cut off) keeps what reconcile recorded.
const FINISH = {
  name: 'pgherd_finish_target_v2',
  text: `WITH t AS (UPDATE operation_targets SET status = $2, error = $3, outcome = coalesce($4, outcome), updated_at = now() WHERE id = $1 AND status = 'running' RETURNING id)
         DELETE FROM herd_leases WHERE target_id = $1`,
};

/**
 * Records how a target ended and gives back its herd's lease, in one statement. The database settles
 * the operation when this was its last open target (migration 0004's trigger).
 */
async function finishTarget(db: Db, targetId: number, status: 'succeeded' | 'failed' | 'cancelled' | 'interrupted', error: string | null, outcome: string | null = null) {
  await prepared(db, FINISH.name, FINISH.text, [targetId, status, error, outcome]);
}

/**
 * Runs one target. Bookkeeping is four round trips (claim, inventory, each step's record, finish)
 * around the action's own work, plus a write when a step runs long enough to be seen running.
 */
export async function executeTarget(db: Db, ssh: SshPool, targetId: number, holder: string, log: (e: string, f: object) => void = () => {}): Promise<ExecuteOutcome> {
  const claimedAt = Date.now();
  const target = await claimTarget(db, targetId, holder);
  // Only a queued target is run: a running one is someone's (or was, and reconcile will say so).
  if (!target || target.status !== 'queued') return 'skipped';
  const operationId = target.operation_id;
  let finished = false;
  let outcome: string | null = null;
  // Ends the target (and frees its lease, if it has one) in one statement.
  const end = async (status: 'succeeded' | 'failed' | 'cancelled' | 'interrupted', error: string | null) => {
    await finishTarget(db, targetId, status, error, outcome);
    finished = true;
    log('target.end', { operationId, targetId, status });
    return 'done' as const;
  };
  if (target.cancel_requested) return end('cancelled', 'cancelled before it started');
  if (target.herd_id === null) return end('failed', 'the herd was deleted from the inventory');
  if (target.attempts === null || target.generation === null) return 'wait';
  const { herd_id: herdId, attempts, generation } = target;
  const action = getAction(target.action);
  if (!action) return end('failed', `unknown action ${target.action}`);

  const beat = setInterval(() => {
    heartbeat(db, herdId, targetId, generation)
      .then((held) => { if (!held) log('lease.lost', { targetId, herdId, generation }); })
      .catch((err) => log('lease.heartbeat.error', { targetId, error: String(err) }));
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
    // Before the first step the claim (made just now) vouches for the lease, unless getting here took
    // half its TTL (the database stalled, say): then it is confirmed like before any other step.
    const lease = { herdId, targetId, generation, operationId };
    const stepGate = (i: number) => (i === 0 && Date.now() - claimedAt < leaseTtlMs() / 2 ? Promise.resolve(null) : gate(db, lease));
    const res = await runPipeline(steps, dbRecorder(db, targetId), { gate: stepGate, firstSeq });
    if (res.error instanceof LeaseLostError) {
      log('target.lease_lost', { operationId, targetId, herdId });
      outcome = (await lastSeen(db, { instanceId: target.instance_id, herdId: target.herd_id }, new Date(claimedAt)).catch(() => null)) ?? outcome;
      return await end('interrupted', res.error.message);
    }
    return await end(res.ok ? 'succeeded' : res.error?.name === 'CancelledError' ? 'cancelled' : 'failed', res.ok ? null : res.error?.message ?? 'failed');
  } finally {
    clearInterval(beat);
    if (!finished) await releaseLease(db, herdId, targetId);
  }
}

/**
 * Whoever asked for the operation must still hold the action's role, now, in the environment of
 * everything the steps will touch as the inventory is now (the target may have moved while it
 * queued, the requester may have lost a binding): the herd's, each member's server's, each
 * PgBouncer's server's. pgherd's own operations have no user to check; a user who is gone has no roles.
 */
async function authorizeNow(db: Db, action: AnyAction, target: ClaimedTarget, environmentIds: number[]): Promise<string | null> {
  if (target.requested_by_system) return null;
  const access = target.requested_by === null ? noAccess(target.requested_by_name) : await loadAccess(db, target.requested_by);
  try {
    await demand(db, access, action.permission, `${action.label} (requested by ${target.requested_by_name})`, [...new Set(environmentIds)]);
    return null;
  } catch (err) {
    if (!(err instanceof AccessDenied)) throw err;
    await auditDenial(db, err, { id: target.requested_by, username: target.requested_by_name });
    return `refused at execution: ${err.message}`;
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
      const denied = await authorizeNow(db, action, target, [herd.environmentId, ...herd.members.map((m) => m.serverEnvironmentId), ...herd.poolers.map((p) => p.serverEnvironmentId)]);
      if (denied) return denied;
      const refused = unpinnedRefusal(action, herdServers(herd)) ?? action.plan(herd, { params }).refused;
      return refused ? `refused at execution: ${refused}` : action.steps(herd, deps, { params });
    }
    const loaded = target.instance_id === null ? null : await loadInstanceWithHerd(db, target.instance_id);
    if (!loaded) return 'the instance was deleted from the inventory';
    const denied = await authorizeNow(db, action, target, [loaded.ref.environmentId, loaded.ref.serverEnvironmentId]);
    if (denied) return denied;
    const ctx = { members: loaded.members, params };
    driverFor(loaded.ref.controlDriver);
    const refused = unpinnedRefusal(action, [{ name: loaded.ref.hostname, ssh: loaded.ref.ssh }]) ?? action.plan(loaded.ref, ctx).refused;
    return refused ? `refused at execution: ${refused}` : action.steps(loaded.ref, deps, ctx);
  } catch (err) {
    return `refused at execution: ${(err as Error).message}`;
  }
}

/**
 * At worker start and periodically: targets marked running whose lease is gone or expired were
 * running in a worker that died (or was cut off for longer than the lease): they become interrupted,
 * with what their instance (or herd) looks like now (rerunning a half-done step blindly is not safe;
 * the operation page offers a retry, which plans again). Returns the queued targets, for the caller
 * to enqueue.
 */
export async function reconcile(db: Db): Promise<{ interrupted: number[]; queued: number[]; stale: number[] }> {
  const dead = await db.execute(sql`
    SELECT t.id, t.operation_id, t.instance_id, t.herd_id, t.updated_at FROM operation_targets t
    LEFT JOIN herd_leases l ON l.target_id = t.id AND l.expires_at > now()
    WHERE t.status = 'running' AND l.herd_id IS NULL`);
  const interrupted: number[] = [];
  for (const row of dead.rows as { id: number; operation_id: number; instance_id: number | null; herd_id: number | null; updated_at: string | Date }[]) {
    const seen = await lastSeen(db, { instanceId: row.instance_id, herdId: row.herd_id }, new Date(row.updated_at)).catch(() => null);
    const done = await db.update(operationTargets).set({ status: 'interrupted', error: 'the worker running it stopped or lost the herd\'s lease; check what was last observed, then retry it from the operation page', outcome: seen })
      .where(and(eq(operationTargets.id, row.id), eq(operationTargets.status, 'running'))).returning({ id: operationTargets.id });
    if (!done.length) continue;
    await db.execute(sql`DELETE FROM herd_leases WHERE target_id = ${row.id}`);
    await db.execute(sql`UPDATE operation_steps SET status = 'failed', finished_at = now(), stderr_tail = stderr_tail || 'interrupted' WHERE target_id = ${row.id} AND status = 'running'`);
    interrupted.push(row.id);
  }
  const rows = await db.select({ id: operationTargets.id, stale: sql<boolean>`${operationTargets.updatedAt} < now() - interval '10 seconds'` })
    .from(operationTargets).where(eq(operationTargets.status, 'queued'));
  // Queued for a while: worth asking Redis whether its job can still run (see requeueTargets).
  return { interrupted, queued: rows.map((r) => r.id), stale: rows.filter((r) => r.stale).map((r) => r.id) };
}
