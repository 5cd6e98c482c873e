// Pause, resume, abort (cancel) and retry, for the operation page and the API.
import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db } from '@/db/client';
import { herds, operations, operationTargets } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import { can, demand, type Access } from '@/lib/engine/access';
import { ownOperation } from '@/lib/engine/operation-view';
import { holdOperation, OperationStateError, resumePaused, whyNot } from '@/lib/engine/hold';
import type { TargetJob } from '@/lib/engine/queue';
import { getAction } from '@/lib/actions/registry';
import type { Actor } from '@/lib/engine/access';
import { withdrawWaiting } from '@/lib/features/operations/approvals';

/**
 * The operation's action and the environments of its targets (what access to it is judged on). An
 * operation whose herds have all been deleted belongs to no environment ([null]): global roles only, but
 * for reading by whoever asked for it (`herdless`: a target's herd is gone; `requestedBy`: who asked).
 */
export async function operationScope(
  db: Db,
  id: number,
): Promise<{ action: string; environmentIds: (number | null)[]; requestedBy: number | null; herdless: boolean } | null> {
  const [op] = await db
    .select({ action: operations.action, requestedBy: operations.requestedBy, environmentIds: operations.environmentIds })
    .from(operations)
    .where(eq(operations.id, id));
  if (!op) return null;
  // One that waited for approval has its environments from its plan: it may have no targets (yet, or ever).
  if (op.environmentIds?.length)
    return { action: op.action, environmentIds: op.environmentIds, requestedBy: op.requestedBy, herdless: false };
  const envs = await db
    .selectDistinct({ env: herds.environmentId })
    .from(operationTargets)
    .innerJoin(herds, eq(operationTargets.herdId, herds.id))
    .where(eq(operationTargets.operationId, id));
  const herdless = await db.$count(operationTargets, and(eq(operationTargets.operationId, id), isNull(operationTargets.herdId)));
  return {
    action: op.action,
    environmentIds: envs.length ? envs.map((e) => e.env) : [null],
    requestedBy: op.requestedBy,
    herdless: herdless > 0,
  };
}

/**
 * Seeing an operation needs a role in one of its targets' environments (or to have asked for it, once a
 * herd it targeted is gone: it then shows the targets without a herd, and those where a role is held);
 * cancelling or retrying it
 * needs the action's own role in all of them. Throws AccessDenied.
 */
export async function demandOnOperation(db: Db, access: Access, id: number, need: 'view' | 'control'): Promise<void> {
  const scope = await operationScope(db, id);
  if (!scope) return;
  const envs = scope.environmentIds;
  if (need === 'view') {
    if (envs.some((e) => can(access, 'viewer', e))) return;
    // Their own operation, after its herd was deleted (a Tear down's last step): its record stays theirs.
    if (scope.herdless && ownOperation(access, scope.requestedBy)) return;
    return demand(db, access, 'viewer', `Operation #${id}`, envs.slice(0, 1));
  }
  const action = getAction(scope.action);
  await demand(db, access, action?.permission ?? 'admin', `Pausing, resuming, aborting or retrying ${action?.label ?? scope.action}`, envs);
}

/**
 * Pauses a running operation: nothing new starts (its queued targets are held), the running targets
 * finish their steps, a wave's health gate stops being watched. Needs the action's role wherever the
 * operation runs.
 */
export async function pauseOperation(db: Db, id: number, actor: Actor): Promise<void> {
  await demandOnOperation(db, actor.access, id, 'control');
  await db.transaction(async (tx) => {
    if (!(await holdOperation(tx, id, `paused by ${actor.username}`))) throw new OperationStateError(await whyNot(tx, id, 'paused'));
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'operation.pause',
      objectType: 'operations',
      objectId: String(id),
    });
  });
}

/**
 * Resumes a paused operation: the held targets of its current wave are queued again (later waves
 * wait for their turn), and a wave whose gate did not pass is watched again, with a new deadline.
 * Pausing again is how to stop once more; the failure budget counts on from where it was.
 */
export async function resumeOperation(db: Db, queue: Queue<TargetJob> | null, id: number, actor: Actor): Promise<void> {
  await demandOnOperation(db, actor.access, id, 'control');
  await resumePaused(db, queue, id, actor);
}

/**
 * Abort: queued (and held) targets are cancelled now; running ones stop between steps (their cleanups
 * still run). The operation settles in the database when its last open target ends. A finished
 * operation, or one already being aborted, is an OperationStateError (409).
 */
export async function cancelOperation(db: Db, id: number, actor: Actor): Promise<void> {
  await demandOnOperation(db, actor.access, id, 'control');
  // Still waiting for approval: it has nothing to stop, it ends cancelled now.
  if (await withdrawWaiting(db, id, actor)) return;
  await db.transaction(async (tx) => {
    const marked = await tx
      .update(operations)
      .set({ cancelRequested: true })
      .where(and(eq(operations.id, id), isNull(operations.finishedAt), eq(operations.cancelRequested, false)))
      .returning({ id: operations.id });
    if (!marked.length) throw new OperationStateError(await whyNot(tx, id, 'aborted'));
    await tx
      .update(operationTargets)
      .set({ status: 'cancelled', error: `cancelled by ${actor.username}` })
      .where(and(eq(operationTargets.operationId, id), eq(operationTargets.status, 'queued')));
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'operation.cancel',
      objectType: 'operations',
      objectId: String(id),
    });
  });
}

/**
 * A retry is a new confirmation: what to plan again (the action, the targets that failed, were
 * interrupted or cancelled, and the parameters as confirmed). The confirmation page plans them
 * against the inventory and the user's roles as they are now, and its confirm creates a new
 * operation (its audit entry names this one). Targets refused at planning are not offered again.
 * Needs the action's role wherever the operation ran (AccessDenied otherwise).
 */
export async function retryInput(
  db: Db,
  access: Access,
  id: number,
): Promise<{ action: string; ids: number[]; params: Record<string, unknown> } | null> {
  await demandOnOperation(db, access, id, 'control');
  const [op] = await db
    .select({ action: operations.action, actionParams: operations.actionParams })
    .from(operations)
    .where(eq(operations.id, id));
  if (!op) return null;
  const action = getAction(op.action);
  const rows = await db
    .select({ instanceId: operationTargets.instanceId, herdId: operationTargets.herdId })
    .from(operationTargets)
    .where(
      and(
        eq(operationTargets.operationId, id),
        inArray(operationTargets.status, ['failed', 'interrupted', 'cancelled', 'preempted']),
        isNull(operationTargets.refusal),
      ),
    );
  const ids = [...new Set(rows.map((r) => (action?.on === 'herd' ? r.herdId : r.instanceId)).filter((x): x is number => x !== null))];
  return { action: op.action, ids, params: op.actionParams };
}
