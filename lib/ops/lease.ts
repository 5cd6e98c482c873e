// The herd lease: one mutating target per herd at a time, granted in target order; a holder that
// stops heartbeating loses it after the TTL.
import { and, eq, sql } from 'drizzle-orm';
import { prepared, type Db } from '@/db/client';
import { herdLeases } from '@/db/schema';

/** How long a lease outlives its last heartbeat (read each time, so tests can shorten it). */
export const leaseTtlMs = () => Number(process.env.PGHERD_LEASE_TTL_MS ?? 15_000);

export interface ClaimedTarget {
  id: number;
  status: string;
  instance_id: number | null;
  herd_id: number | null;
  operation_id: number;
  action: string;
  /** The parameters confirmed for the operation. */
  action_params: Record<string, unknown> | null;
  cancel_requested: boolean;
  requested_by: number | null;
  requested_by_name: string;
  /** The attempt this run is, when the lease was granted; null when the target must wait (or not run). */
  attempts: number | null;
}

// A lease is granted when the herd's is free or expired (or is this very target's, held by this very
// holder), no earlier target of the herd is still open, and the target is runnable.
const CLAIM = {
  name: 'pgherd_claim_target',
  text: `
    WITH t AS (
      SELECT t.id, t.status, t.instance_id, t.herd_id, o.id AS operation_id, o.action, o.params -> 'actionParams' AS action_params, o.cancel_requested, o.requested_by, o.requested_by_name
      FROM operation_targets t JOIN operations o ON o.id = t.operation_id WHERE t.id = $1),
    lease AS (
      INSERT INTO herd_leases (herd_id, target_id, holder, expires_at)
      SELECT t.herd_id, t.id, $2, now() + $3 * interval '1 millisecond' FROM t
      WHERE t.status IN ('queued', 'running') AND NOT t.cancel_requested AND t.herd_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM operation_targets e WHERE e.herd_id = t.herd_id AND e.id < t.id AND e.status IN ('queued', 'running'))
      ON CONFLICT (herd_id) DO UPDATE SET target_id = excluded.target_id, holder = excluded.holder, expires_at = excluded.expires_at
      WHERE herd_leases.expires_at < now() OR (herd_leases.target_id = excluded.target_id AND herd_leases.holder = excluded.holder)
      RETURNING target_id),
    run AS (
      UPDATE operation_targets SET status = 'running', attempts = attempts + 1, updated_at = now()
      WHERE id IN (SELECT target_id FROM lease) RETURNING attempts),
    op AS (
      UPDATE operations SET status = 'running', started_at = coalesce(started_at, now()), updated_at = now()
      WHERE id = (SELECT operation_id FROM t) AND status = 'queued' AND EXISTS (SELECT 1 FROM lease))
    SELECT t.*, (SELECT attempts FROM run) AS attempts FROM t`,
};

/**
 * One round trip: reads the target and its operation, takes the herd's lease for it when it may run,
 * and then marks it running and its operation started. Null when the target does not exist.
 */
export async function claimTarget(db: Db, targetId: number, holder: string): Promise<ClaimedTarget | null> {
  const [row] = await prepared<ClaimedTarget>(db, CLAIM.name, CLAIM.text, [targetId, holder, leaseTtlMs()]);
  return row ?? null;
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
