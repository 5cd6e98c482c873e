// An operation held and let go: a pause (by a person, a failed health gate, a wave waiting for a
// maintenance window) holds its queued targets; a resume queues its current wave's held targets again.
// The conductor and the operation page's commands both go through these.
import { eq, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db, Queries } from '@/db/client';
import { operations } from '@/db/schema';
import { writeAudit } from './write-audit';
import { requeueTargets, type TargetJob } from './queue';
import { SubmitError } from './submit-errors';
import type { Actor } from '@/lib/engine/access';

/** Why an operation cannot be paused or resumed now (finished, already paused, not paused): a 409. */
export class OperationStateError extends SubmitError {
  constructor(message: string) {
    super('state', 409, message);
    this.name = 'OperationStateError';
  }
}

/**
 * Pauses an operation with the reason: nothing new starts (its queued targets are held), the running
 * ones finish. A wave being soaked is held (its gate no longer watched) until the operation resumes. False when it was
 * already paused, finished or being cancelled.
 */
export async function holdOperation(db: Queries, operationId: number, reason: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.execute(
      sql`UPDATE operations SET paused_at = now(), paused_reason = ${reason}, updated_at = now()
          WHERE id = ${operationId} AND finished_at IS NULL AND paused_at IS NULL AND NOT cancel_requested
            AND status <> 'awaiting_approval' RETURNING id`,
    );
    if (!rows.length) return false;
    await tx.execute(
      sql`UPDATE operation_targets SET held = true, updated_at = now() WHERE operation_id = ${operationId} AND status = 'queued' AND NOT held`,
    );
    await tx.execute(
      sql`UPDATE operation_waves SET status = 'held', updated_at = now() WHERE operation_id = ${operationId} AND status = 'soaking'`,
    );
    return true;
  });
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

export async function whyNot(db: Queries, id: number, verb: 'paused' | 'resumed' | 'aborted'): Promise<string> {
  const [op] = await db
    .select({
      finishedAt: operations.finishedAt,
      pausedAt: operations.pausedAt,
      cancel: operations.cancelRequested,
      status: operations.status,
    })
    .from(operations)
    .where(eq(operations.id, id));
  if (!op) return `operation #${id} does not exist`;
  if (op.status === 'awaiting_approval')
    return `operation #${id} is awaiting approval: nothing runs yet, it cannot be ${verb} (abort withdraws it)`;
  if (op.finishedAt) return `operation #${id} has finished: it cannot be ${verb}`;
  if (op.cancel)
    return verb === 'aborted' ? `operation #${id} is already being aborted` : `operation #${id} is being aborted: it cannot be ${verb}`;
  return verb === 'paused' ? `operation #${id} is already paused` : `operation #${id} is not paused`;
}
