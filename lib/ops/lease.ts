// The herd lease: one mutating target per herd at a time, granted in target order; a holder that
// stops heartbeating loses it after the TTL.
import { and, eq, lt, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { herdLeases, operationTargets } from '@/db/schema';

/** How long a lease outlives its last heartbeat (read each time, so tests can shorten it). */
export const leaseTtlMs = () => Number(process.env.PGHERD_LEASE_TTL_MS ?? 15_000);

/** Takes the herd's lease for the target, unless another target holds it or an earlier one waits. */
export async function acquireLease(db: Db, herdId: number, targetId: number, holder: string): Promise<boolean> {
  const earlier = await db.select({ id: operationTargets.id }).from(operationTargets).where(and(
    eq(operationTargets.herdId, herdId),
    lt(operationTargets.id, targetId),
    sql`${operationTargets.status} IN ('queued', 'running')`,
  )).limit(1);
  if (earlier.length) return false;
  const rows = await db.execute(sql`
    INSERT INTO herd_leases (herd_id, target_id, holder, expires_at)
    VALUES (${herdId}, ${targetId}, ${holder}, now() + ${leaseTtlMs()} * interval '1 millisecond')
    ON CONFLICT (herd_id) DO UPDATE SET target_id = excluded.target_id, holder = excluded.holder, expires_at = excluded.expires_at
    WHERE herd_leases.expires_at < now() OR herd_leases.target_id = excluded.target_id
    RETURNING herd_id`);
  return rows.rows.length === 1;
}

export async function heartbeat(db: Db, herdId: number, targetId: number): Promise<boolean> {
  const rows = await db.update(herdLeases)
    .set({ expiresAt: sql`now() + ${leaseTtlMs()} * interval '1 millisecond'` })
    .where(and(eq(herdLeases.herdId, herdId), eq(herdLeases.targetId, targetId)))
    .returning({ herdId: herdLeases.herdId });
  return rows.length === 1;
}

export async function releaseLease(db: Db, herdId: number, targetId: number): Promise<void> {
  await db.delete(herdLeases).where(and(eq(herdLeases.herdId, herdId), eq(herdLeases.targetId, targetId)));
}
