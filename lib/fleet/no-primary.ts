// A herd with no primary: no member answers as one, writers have nowhere to write. Said once, when
// pgherd first sees it (a refresh pass, or a DR failover that stopped after it tried to fence the old
// primary), in one transaction: the herd's no_primary_since and what was seen (the health page and
// pgherd_herds_no_primary read them) and a herd.no_primary event in the webhooks' outbox, so that
// neither is said without the other. Cleared, silently, when a member is seen answering as a primary.
import { sql } from 'drizzle-orm';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';

/** The channel the worker listens on for the outbox (the one migration 0032's trigger notifies). */
const NOTIFICATIONS_CHANNEL = 'pgherd_notifications';

/**
 * A herd seen with no member answering as a primary, by someone who looked at every member (a DR
 * failover that stopped): raised unless it is already. Whether it was raised now.
 */
export async function recordNoPrimary(db: Db, seen: { herdId: number; operationId: number | null; detail: string }): Promise<boolean> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.execute(sql`
      WITH raised AS (
        UPDATE herds SET no_primary_since = now(), no_primary_detail = ${seen.detail}
        WHERE id = ${seen.herdId} AND no_primary_since IS NULL RETURNING id)
      INSERT INTO notification_events (kind, herd_id, operation_id, detail)
      SELECT 'herd.no_primary', id, ${seen.operationId}, ${seen.detail} FROM raised RETURNING herd_id`);
    if (rows.length) await tx.execute(sql`SELECT pg_notify(${NOTIFICATIONS_CHANNEL}, '')`);
    return rows.length > 0;
  });
}

/**
 * After a refresh pass has written what it saw. `answered`: herds where it saw a member answer as a
 * running primary (cleared); `silent`: the other herds it looked at. Of those, raised: the ones the
 * inventory now gives no running primary though it records one (a member whose role is primary, in any
 * state: the herd had one, and it stopped, stopped answering, or was fenced), and that no operation
 * holds (a switchover or a failover between its stop and its promotion has no primary for a moment,
 * and says so itself when it stops there). A pass over a healthy fleet has no silent herd: the cost is
 * one statement over the few herds already raised.
 */
export async function judgeHerds(db: Db, pass: { answered: number[]; silent: number[] }): Promise<{ raised: number[]; cleared: number[] }> {
  const cleared = pass.answered.length
    ? (
        await db.execute<{ id: number }>(sql`
          UPDATE herds SET no_primary_since = NULL, no_primary_detail = ''
          WHERE no_primary_since IS NOT NULL AND id = ANY(${sql.param(pass.answered)}::int[]) RETURNING id`)
      ).rows.map((r) => r.id)
    : [];
  if (!pass.silent.length) return { raised: [], cleared };
  const raised = await db.transaction(async (tx) => {
    const { rows } = await tx.execute<{ herd_id: number }>(withParams(sqlFile('lib/fleet/raise-no-primary.sql'), [pass.silent]));
    if (rows.length) await tx.execute(sql`SELECT pg_notify(${NOTIFICATIONS_CHANNEL}, '')`);
    return rows.map((r) => r.herd_id);
  });
  return { raised, cleared };
}

/** A member of `instanceId`'s herd answers as a running primary (one action saw it): the herd has one again. */
export async function primaryAnswered(db: Db, instanceId: number): Promise<void> {
  await db.execute(sql`
    UPDATE herds SET no_primary_since = NULL, no_primary_detail = ''
    WHERE no_primary_since IS NOT NULL
      AND id = (SELECT herd_id FROM instances WHERE id = ${instanceId} AND role = 'primary' AND state = 'running')`);
}
