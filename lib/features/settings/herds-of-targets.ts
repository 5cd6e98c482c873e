// The herds an operation's targets are in (a herd target, or an instance target's herd), for the link to
// what changed on them before it.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';

export async function herdsOfTargets(
  db: Db,
  targets: { instanceId: number | null; herdId: number | null }[],
): Promise<{ id: number; label: string }[]> {
  const herdIds = targets.map((t) => t.herdId).filter((x): x is number => x !== null);
  const instanceIds = targets.map((t) => t.instanceId).filter((x): x is number => x !== null);
  if (!herdIds.length && !instanceIds.length) return [];
  const r = await db.execute<{ id: number; label: string }>(sql`
    SELECT h.id, e.name || '/' || h.name AS label FROM herds h JOIN environments e ON e.id = h.environment_id
    WHERE h.id = ANY(${sql.param(herdIds)}::int[]) OR h.id IN (SELECT herd_id FROM instances WHERE id = ANY(${sql.param(instanceIds)}::bigint[]))
    ORDER BY label LIMIT 20`);
  return r.rows;
}
