// Cancel and retry, for the operation page and the API.
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Queue } from 'bullmq';
import type { Db } from '@/db/client';
import { operations, operationTargets } from '@/db/schema';
import { writeAudit } from '@/lib/audit/write-audit';
import { enqueueTargets, type TargetJob } from './queue';
import type { Actor } from './submit';

/**
 * Queued targets are cancelled now; running ones stop between steps (their cleanups still run). The
 * operation settles in the database when its last open target ends.
 */
export async function cancelOperation(db: Db, id: number, actor: Actor): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.update(operations).set({ cancelRequested: true }).where(eq(operations.id, id));
    await tx.update(operationTargets).set({ status: 'cancelled', error: `cancelled by ${actor.username}` })
      .where(and(eq(operationTargets.operationId, id), eq(operationTargets.status, 'queued')));
    await writeAudit(tx, { user: actor, remoteAddr: actor.remoteAddr, action: 'operation.cancel', objectType: 'operations', objectId: String(id) });
  });
}

/** Failed, interrupted and cancelled targets run again; each resumes its step numbering. */
export async function retryOperation(db: Db, queue: Queue<TargetJob> | null, id: number, actor: Actor): Promise<number[]> {
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
