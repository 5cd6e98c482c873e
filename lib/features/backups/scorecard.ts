// The recoverability scorecard, beside the DR scorecard: each herd of the fleet (a restored herd is a copy
// for a while, not counted) with its standing as a restore would find it. protected: its last restore drill passed within PGHERD_RESTORE_DRILL_MAX_AGE_DAYS and its archive
// is healthy; otherwise what needs a look, worst first: not configured, archive failing, drill failed,
// never drilled, drill too old. With the last drill's RTO and RPO.
import { sql } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { setting } from '@/lib/settings/settings';
import { archiveFailing } from '@/lib/fleet/backups/status-sql';

export const restoreDrillMaxAgeDays = () => setting('PGHERD_RESTORE_DRILL_MAX_AGE_DAYS');

export const RECOVERABILITY = ['not configured', 'archive failing', 'drill failed', 'never drilled', 'drill too old', 'protected'] as const;
export type Recoverability = (typeof RECOVERABILITY)[number];

export interface RecoverabilityRow {
  herdId: number;
  herd: string;
  environment: string;
  verdict: Recoverability;
  /** The last drill, when there was one. */
  last: { operationId: number | null; finishedAt: Date; ok: boolean; cause: string; rtoMs: number | null; rpoMs: number | null } | null;
  /** The last full backup's end, when there is one. */
  lastFull: Date | null;
}

/** The verdict in SQL, for the scorecard, the metric and the changelists (h: the herds row's alias). */
export const recoverabilitySql = (maxAgeDays: number) => sql<Recoverability>`CASE
  WHEN NOT EXISTS (SELECT 1 FROM herd_backup_setups s WHERE s.herd_id = h.id) THEN 'not configured'
  WHEN ${archiveFailing(sql`h.id`)} THEN 'archive failing'
  WHEN d.ok IS NULL THEN 'never drilled'
  WHEN NOT d.ok THEN 'drill failed'
  WHEN d.finished_at < now() - make_interval(days => ${maxAgeDays}) THEN 'drill too old'
  ELSE 'protected' END`;

const lastDrill = sql`LEFT JOIN LATERAL (SELECT * FROM restore_drills r WHERE r.herd_id = h.id ORDER BY r.id DESC LIMIT 1) d ON true`;

/** The scorecard of one environment (null: every environment), herds by name. */
export async function recoverabilityScorecard(db: Queries, environmentId: number | null): Promise<RecoverabilityRow[]> {
  const r = await db.execute<{
    herd_id: number;
    herd: string;
    environment: string;
    verdict: Recoverability;
    operation_id: number | null;
    finished_at: Date | null;
    ok: boolean | null;
    cause: string | null;
    rto_ms: number | null;
    rpo_ms: number | null;
    last_full: Date | null;
  }>(sql`
    SELECT h.id AS herd_id, h.name AS herd, e.name AS environment, ${recoverabilitySql(restoreDrillMaxAgeDays())} AS verdict,
           d.operation_id, d.finished_at, d.ok, d.cause, d.rto_ms, d.rpo_ms,
           (SELECT max(b.stopped_at) FROM backups b WHERE b.herd_id = h.id AND b.type = 'full' AND b.gone_at IS NULL) AS last_full
    FROM herds h JOIN environments e ON e.id = h.environment_id ${lastDrill}
    WHERE h.restored_from_herd_id IS NULL AND ${environmentId === null ? sql`true` : sql`h.environment_id = ${environmentId}`}
    ORDER BY e.name, h.name`);
  return r.rows.map((x) => ({
    herdId: x.herd_id,
    herd: x.herd,
    environment: x.environment,
    verdict: x.verdict,
    last:
      x.finished_at !== null && x.ok !== null
        ? {
            operationId: x.operation_id,
            finishedAt: new Date(x.finished_at),
            ok: x.ok,
            cause: x.cause ?? '',
            rtoMs: x.rto_ms,
            rpoMs: x.rpo_ms,
          }
        : null,
    lastFull: x.last_full ? new Date(x.last_full) : null,
  }));
}

/** Herds not restore-proven (any verdict but protected), by environment: pgherd_herds_unverified_restore. */
export async function unverifiedByEnvironment(db: Queries): Promise<{ environment: string; n: number }[]> {
  const r = await db.execute<{ environment: string; n: number }>(sql`
    SELECT e.name AS environment, (count(*) FILTER (WHERE ${recoverabilitySql(restoreDrillMaxAgeDays())} <> 'protected'))::int AS n
    FROM herds h JOIN environments e ON e.id = h.environment_id ${lastDrill} WHERE h.restored_from_herd_id IS NULL GROUP BY e.name`);
  return r.rows;
}
