// Pause, resume, abort (cancel) and retry, for the operation page and the API.
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db, Queries } from '@/db/client';
import { herds, operations, operationTargets } from '@/db/schema';
import { writeAudit } from '@/lib/audit/write-audit';
import { can, demand, type Access } from '@/lib/auth/access';
import { holdOperation } from './conductor';
import { requeueTargets, type TargetJob } from './queue';
import { getAction } from './registry';
import { SubmitError } from './submit-errors';
import type { Actor } from './submit';

/** The operation's action and the environments of its targets (what access to it is judged on). */
/** An operation whose herds have all been deleted belongs to no environment ([null]): global roles only. */
export async function operationScope(db: Db, id: number): Promise<{ action: string; environmentIds: (number | null)[] } | null> {
  const [op] = await db.select({ action: operations.action }).from(operations).where(eq(operations.id, id));
  if (!op) return null;
  const envs = await db
    .selectDistinct({ env: herds.environmentId })
    .from(operationTargets)
    .innerJoin(herds, eq(operationTargets.herdId, herds.id))
    .where(eq(operationTargets.operationId, id));
  return { action: op.action, environmentIds: envs.length ? envs.map((e) => e.env) : [null] };
}

/**
 * Seeing an operation needs a role in one of its targets' environments; cancelling or retrying it
 * needs the action's own role in all of them. Throws AccessDenied.
 */
export async function demandOnOperation(db: Db, access: Access, id: number, need: 'view' | 'control'): Promise<void> {
  const scope = await operationScope(db, id);
  if (!scope) return;
  const envs = scope.environmentIds;
  if (need === 'view') {
    if (envs.some((e) => can(access, 'viewer', e))) return;
    return demand(db, access, 'viewer', `Operation #${id}`, envs.slice(0, 1));
  }
  const action = getAction(scope.action);
  await demand(db, access, action?.permission ?? 'admin', `Pausing, resuming, aborting or retrying ${action?.label ?? scope.action}`, envs);
}

/** Why an operation cannot be paused or resumed now (finished, already paused, not paused): a 409. */
export class OperationStateError extends SubmitError {
  constructor(message: string) {
    super('state', 409, message);
    this.name = 'OperationStateError';
  }
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
 * Resumes a paused operation as `actor` (the system, for one waiting for a maintenance window), only
 * when its pause reason starts with `reasonPrefix` if one is given. False when it was not paused so
 * (and for a person, a 409 saying why).
 */
export async function resumePaused(
  db: Db,
  queue: Queue<TargetJob> | null,
  id: number,
  actor: Pick<Actor, 'id' | 'username' | 'remoteAddr'>,
  reasonPrefix?: string,
): Promise<boolean> {
  const released = await db.transaction(async (tx) => {
    const { rows } = await tx.execute<{ reason: string | null; wave: number }>(
      sql`UPDATE operations SET paused_at = NULL, paused_reason = NULL, updated_at = now()
          WHERE id = ${id} AND paused_at IS NOT NULL AND finished_at IS NULL AND NOT cancel_requested
            ${reasonPrefix === undefined ? sql`` : sql`AND starts_with(paused_reason, ${reasonPrefix})`}
          RETURNING (SELECT paused_reason FROM operations WHERE id = ${id}) AS reason, current_wave AS wave`,
    );
    const [op] = rows;
    if (!op) {
      if (reasonPrefix !== undefined) return null;
      throw new OperationStateError(await whyNot(tx, id, 'resumed'));
    }
    await tx.execute(
      sql`UPDATE operation_waves SET status = 'soaking', ended_at = now(), soak_from = now(), last_reading_at = NULL, gate_note = NULL, updated_at = now()
          WHERE operation_id = ${id} AND status = 'held'`,
    );
    const { rows: ids } = await tx.execute<{ id: number }>(
      sql`UPDATE operation_targets SET held = false, updated_at = now()
          WHERE operation_id = ${id} AND wave = ${op.wave} AND status = 'queued' AND held RETURNING id`,
    );
    await writeAudit(tx, {
      user: actor,
      remoteAddr: actor.remoteAddr,
      action: 'operation.resume',
      objectType: 'operations',
      objectId: String(id),
      changes: { paused: [op.reason, null] },
    });
    return ids.map((r) => r.id);
  });
  if (released === null) return false;
  // Postgres has them queued; if Redis is away, a worker's reconcile enqueues them.
  if (queue && released.length) await requeueTargets(queue, released).catch(() => {});
  return true;
}

async function whyNot(db: Queries, id: number, verb: 'paused' | 'resumed' | 'aborted'): Promise<string> {
  const [op] = await db
    .select({ finishedAt: operations.finishedAt, pausedAt: operations.pausedAt, cancel: operations.cancelRequested })
    .from(operations)
    .where(eq(operations.id, id));
  if (!op) return `operation #${id} does not exist`;
  if (op.finishedAt) return `operation #${id} has finished: it cannot be ${verb}`;
  if (op.cancel)
    return verb === 'aborted' ? `operation #${id} is already being aborted` : `operation #${id} is being aborted: it cannot be ${verb}`;
  return verb === 'paused' ? `operation #${id} is already paused` : `operation #${id} is not paused`;
}

/**
 * Abort: queued (and held) targets are cancelled now; running ones stop between steps (their cleanups
 * still run). The operation settles in the database when its last open target ends. A finished
 * operation, or one already being aborted, is an OperationStateError (409).
 */
export async function cancelOperation(db: Db, id: number, actor: Actor): Promise<void> {
  await demandOnOperation(db, actor.access, id, 'control');
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
        inArray(operationTargets.status, ['failed', 'interrupted', 'cancelled']),
        isNull(operationTargets.refusal),
      ),
    );
  const ids = [...new Set(rows.map((r) => (action?.on === 'herd' ? r.herdId : r.instanceId)).filter((x): x is number => x !== null))];
  return { action: op.action, ids, params: op.actionParams };
}
