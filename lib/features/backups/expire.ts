// Restored herds past their expiry (Restore to a new herd's expiresInHours) are torn down by the worker, as
// the system: one Tear down operation a herd, once (its idempotency key), audited like any operation. A
// herd with an operation still open waits for it; one whose teardown failed is left, shown on its
// operation's page, for a person.
import type { Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { Turn } from '@/lib/engine/turns';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { planOperation } from '@/lib/engine/plan';
import type { TargetJob } from '@/lib/engine/queue';
import { writeOperations } from '@/lib/engine/submit';
import { tearDownRestoredAction } from '@/lib/actions/backups/tear-down.action';

/** Starts the teardown of every expired restored herd; returns the operations started. */
export async function expireRestoredHerds(db: Db, queue: Queue<TargetJob> | null, turn?: Turn): Promise<number[]> {
  const due = await db.execute<{ id: number; restored_to: string }>(sql`
    SELECT h.id, h.restored_to FROM herds h
    WHERE h.restored_from_herd_id IS NOT NULL AND h.expires_at < now()
      AND NOT EXISTS (SELECT 1 FROM operation_targets t WHERE t.herd_id = h.id AND t.status IN ('queued', 'running'))
    ORDER BY h.expires_at LIMIT 20`);
  const started: number[] = [];
  for (const h of due.rows) {
    const plan = await planOperation(db, SYSTEM_ACCESS, tearDownRestoredAction, [h.id]);
    if (!plan.targets.some((t) => !t.refused)) continue;
    const [id] = await writeOperations(
      db,
      queue,
      [
        {
          action: tearDownRestoredAction,
          plan,
          actor: { id: null, username: 'system', access: SYSTEM_ACCESS },
          reason: `restored herd expired (restored to ${h.restored_to})`,
          confirmation: plan.typeToConfirm ?? '',
          idempotencyKey: `restore-expire:${String(h.id)}`,
          waves: null,
        },
      ],
      undefined,
      turn?.fence,
    );
    if (id) started.push(id);
  }
  return started;
}
