// The herds an open major upgrade holds (as blue or as green): other actions that move their primary
// or restart their members refuse them until the upgrade is cut over, rolled back or cleaned up.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';

/** The herds among `herdIds` that an open major upgrade holds (as blue or green): no switchover or minor upgrade there. */
export async function herdsUnderUpgrade(db: Db, herdIds: number[]): Promise<Map<number, string>> {
  if (!herdIds.length) return new Map();
  const rows = await db.execute<{ blue: number | null; green: number | null; id: number; status: string }>(sql`
    SELECT blue_herd_id AS blue, green_herd_id AS green, id, status FROM major_upgrades
    WHERE status IN ('building', 'ready', 'cut-over')
      AND (blue_herd_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(herdIds)}::jsonb)::int)
        OR green_herd_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(herdIds)}::jsonb)::int))`);
  const out = new Map<number, string>();
  for (const r of rows.rows)
    for (const id of [r.blue, r.green])
      if (id !== null)
        out.set(
          id,
          `the herd is part of major upgrade #${String(r.id)} (${r.status}): its subscriptions follow one primary's address and its fence one member; cut over, roll back or clean the upgrade up first`,
        );
  return out;
}
