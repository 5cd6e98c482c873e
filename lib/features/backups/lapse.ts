// A herd falls out of date: its restore had been proven (a drill passed) and its recoverability verdict
// left "protected" (the last drill failed, it grew older than PGHERD_RESTORE_DRILL_MAX_AGE_DAYS, the
// archive fails, its backups are no longer configured). Said once, when the worker's judge first sees it,
// in one transaction: the herd's restore_lapsed_since and a herd.restore_unverified event in the webhooks'
// outbox, so that neither is said without the other. Cleared, silently, when the herd is protected again.
// A herd never proven is not "falling": the scorecard and pgherd_herds_unverified_restore show it.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import type { Turn } from '@/lib/engine/turns';
import { NOTIFICATIONS_CHANNEL } from '@/lib/features/rules/webhooks';
import { recoverabilitySql, restoreDrillMaxAgeDays } from './scorecard';

/** Judges every herd; returns the herds raised (told) and cleared now. */
export async function judgeRecoverability(db: Db, turn?: Turn): Promise<{ raised: number[]; cleared: number[] }> {
  const days = restoreDrillMaxAgeDays();
  return db.transaction(async (tx) => {
    await turn?.fence(tx);
    const { rows } = await tx.execute<{ id: number; raised: boolean }>(sql`
      WITH v AS (
        SELECT h.id, h.restore_lapsed_since, ${recoverabilitySql(days)} AS verdict, d.operation_id, d.finished_at, d.cause
        FROM herds h
        LEFT JOIN LATERAL (SELECT * FROM restore_drills r WHERE r.herd_id = h.id ORDER BY r.id DESC LIMIT 1) d ON true
        WHERE h.restore_lapsed_since IS NOT NULL
           OR EXISTS (SELECT 1 FROM restore_drills r WHERE r.herd_id = h.id AND r.ok)),
      cleared AS (
        UPDATE herds h SET restore_lapsed_since = NULL FROM v
        WHERE h.id = v.id AND v.verdict = 'protected' AND h.restore_lapsed_since IS NOT NULL RETURNING h.id),
      -- Checked again on the locked row: of two judges at once, one raises it.
      raised AS (
        UPDATE herds h SET restore_lapsed_since = now() FROM v
        WHERE h.id = v.id AND v.verdict <> 'protected' AND h.restore_lapsed_since IS NULL
        RETURNING h.id, CASE v.verdict
          WHEN 'drill failed' THEN 'the last restore drill (operation #' || coalesce(v.operation_id::text, '?') || ', '
               || to_char(v.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') || ') failed: ' || v.cause
          WHEN 'drill too old' THEN 'the last restore drill passed on '
               || to_char(v.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') || ', more than ' || ${days}::text || ' days ago'
          WHEN 'archive failing' THEN 'WAL archiving fails on its primary: what was written since is not in the repository'
          WHEN 'not configured' THEN 'its backups are no longer configured'
          ELSE v.verdict END AS detail),
      told AS (
        INSERT INTO notification_events (kind, herd_id, detail) SELECT 'herd.restore_unverified', id, detail FROM raised RETURNING herd_id)
      SELECT herd_id AS id, true AS raised FROM told UNION ALL SELECT id, false FROM cleared`);
    const raised = rows.filter((r) => r.raised).map((r) => r.id);
    if (raised.length) await tx.execute(sql`SELECT pg_notify(${NOTIFICATIONS_CHANNEL}, '')`);
    return { raised, cleared: rows.filter((r) => !r.raised).map((r) => r.id) };
  });
}
