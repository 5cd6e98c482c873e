// Cancel and retry, for the operation page and the API.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db } from '@/db/client';
import { herds, operations, operationTargets } from '@/db/schema';
import { writeAudit } from '@/lib/audit/write-audit';
import { can, demand, type Access } from '@/lib/auth/access';
import { getAction } from './registry';
import { enqueueTargets, type TargetJob } from './queue';
import type { Actor } from './submit';

/** The operation's action and the environments of its targets (what access to it is judged on). */
/** An operation whose herds have all been deleted belongs to no environment ([null]): global roles only. */
export async function operationScope(db: Db, id: number): Promise<{ action: string; environmentIds: (number | null)[] } | null> {
  const [op] = await db.select({ action: operations.action }).from(operations).where(eq(operations.id, id));
  if (!op) return null;
  const envs = await db.selectDistinct({ env: herds.environmentId }).from(operationTargets)
    .innerJoin(herds, eq(operationTargets.herdId, herds.id)).where(eq(operationTargets.operationId, id));
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
  await demand(db, access, action?.permission ?? 'admin', `Cancelling or retrying ${action?.label ?? scope.action}`, envs);
}

/**
 * Queued targets are cancelled now; running ones stop between steps (their cleanups still run). The
 * operation settles in the database when its last open target ends.
 */
export async function cancelOperation(db: Db, id: number, actor: Actor): Promise<void> {
  await demandOnOperation(db, actor.access, id, 'control');
  await db.transaction(async (tx) => {
    await tx.update(operations).set({ cancelRequested: true }).where(eq(operations.id, id));
    await tx.update(operationTargets).set({ status: 'cancelled', error: `cancelled by ${actor.username}` })
      .where(and(eq(operationTargets.operationId, id), eq(operationTargets.status, 'queued')));
    await writeAudit(tx, { user: actor, remoteAddr: actor.remoteAddr, action: 'operation.cancel', objectType: 'operations', objectId: String(id) });
  });
}

/** Failed, interrupted and cancelled targets run again; each resumes its step numbering. */
export async function retryOperation(db: Db, queue: Queue<TargetJob> | null, id: number, actor: Actor): Promise<number[]> {
  await demandOnOperation(db, actor.access, id, 'control');
  const ids = await db.transaction(async (tx) => {
    const rows = await tx.update(operationTargets).set({ status: 'queued', error: null })
      .where(and(eq(operationTargets.operationId, id), inArray(operationTargets.status, ['failed', 'interrupted', 'cancelled']), sql`coalesce(${operationTargets.error}, '') NOT LIKE 'refused:%'`))
      .returning({ id: operationTargets.id });
    if (rows.length) {
      await tx.update(operations).set({ status: 'queued', finishedAt: null, cancelRequested: false }).where(eq(operations.id, id));
      await writeAudit(tx, { user: actor, remoteAddr: actor.remoteAddr, action: 'operation.retry', objectType: 'operations', objectId: String(id), changes: { targets: [null, rows.map((r) => r.id).join(',')] } });
    }
    return rows.map((r) => r.id);
  });
  if (queue && ids.length) {
    // A finished job keeps its id in BullMQ for a while: a retry needs a job of its own.
    await Promise.all(ids.map(async (tid) => (await queue.getJob(`target-${tid}`))?.remove().catch(() => undefined)));
    await enqueueTargets(queue, ids);
  }
  return ids;
}
