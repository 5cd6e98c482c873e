// Lag history: each instance's lag and state as last observed (the refresher's and the agents' writes
// to `instances`), sampled by one worker at a time; folded into 5-minute buckets after a day; deleted
// after the retention. And what the charts read: a herd's or an instance's samples over the last hour,
// day or week, with the operations on the herd in that time.
import { sql, type SQL } from 'drizzle-orm';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { setting } from '@/lib/settings/settings';

/** How often a sample is taken (ms; PGHERD_LAG_SAMPLE_MS, default a minute; 0: never). */
export const lagSampleEveryMs = () => setting('PGHERD_LAG_SAMPLE_MS');
/** How long samples are kept (days; PGHERD_LAG_RETENTION_DAYS, default 7). */
export const lagRetentionDays = () => setting('PGHERD_LAG_RETENTION_DAYS');
/** Samples older than this are folded into buckets of FOLD_BUCKET. */
export const FOLD_AFTER = '1 day';
export const FOLD_BUCKET = '5 minutes';
/** An observation older than this is not sampled (the instance is not being observed: a gap, not a flat line). */
const FRESH = '5 minutes';

/**
 * One sample of every instance observed lately (its lag, role and state as the inventory has them now),
 * and the fleet's counts by environment, role and state. Returns how many instances were sampled.
 */
export async function sampleLag(db: Db, at = new Date()): Promise<number> {
  const res = await db.execute(withParams(sqlFile('lib/fleet/sample-lag.sql'), [at, FRESH]));
  return res.rowCount ?? 0;
}

/**
 * Folds the samples older than a day into 5-minute buckets (the worst lag of each, the last state),
 * and deletes what is older than the retention. Buckets wholly before the cutoff only: one a sample
 * straddles is folded on a later pass, into the same row.
 */
export async function foldLagSamples(
  db: Db,
  now = new Date(),
  retentionDays = lagRetentionDays(),
): Promise<{ folded: number; deleted: number }> {
  return db.transaction(async (tx) => {
    const cutoff = sql`date_bin(${FOLD_BUCKET}::interval, ${now}::timestamptz - ${FOLD_AFTER}::interval, '2000-01-01'::timestamptz)`;
    const fine = await tx.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM lag_samples WHERE NOT coarse AND at < ${cutoff}`);
    await tx.execute(sql`
      INSERT INTO lag_samples (instance_id, herd_id, at, lag_bytes, lag_seconds, role, state, coarse)
      SELECT instance_id, (array_agg(herd_id ORDER BY at DESC))[1], date_bin(${FOLD_BUCKET}::interval, at, '2000-01-01'::timestamptz),
             max(lag_bytes), max(lag_seconds), (array_agg(role ORDER BY at DESC))[1], (array_agg(state ORDER BY at DESC))[1], true
      FROM lag_samples WHERE NOT coarse AND at < ${cutoff}
      GROUP BY instance_id, 3
      ON CONFLICT (instance_id, at) DO UPDATE SET
        lag_bytes = greatest(lag_samples.lag_bytes, excluded.lag_bytes),
        lag_seconds = greatest(lag_samples.lag_seconds, excluded.lag_seconds),
        role = excluded.role, state = excluded.state, herd_id = excluded.herd_id, coarse = true`);
    await tx.execute(sql`DELETE FROM lag_samples WHERE NOT coarse AND at < ${cutoff}`);
    const old = sql`${now}::timestamptz - make_interval(days => ${retentionDays})`;
    const deleted = await tx.execute(sql`DELETE FROM lag_samples WHERE at < ${old}`);
    await tx.execute(sql`DELETE FROM fleet_samples WHERE at < ${old}`);
    return { folded: fine.rows[0]?.n ?? 0, deleted: deleted.rowCount ?? 0 };
  });
}

export const LAG_RANGES = {
  hour: { ms: 3_600_000, bucket: null, label: 'last hour' },
  day: { ms: 86_400_000, bucket: '5 minutes', label: 'last day' },
  week: { ms: 7 * 86_400_000, bucket: '30 minutes', label: 'last week' },
} as const;
export type LagRange = keyof typeof LAG_RANGES;
export const lagRange = (raw: unknown): LagRange => (raw === 'day' || raw === 'week' ? raw : 'hour');

export interface LagSeries {
  instanceId: number;
  label: string;
  /** Time (ms), worst lag in bytes and seconds in that point's bucket (null: a primary, or not known), last state. */
  points: { t: number; bytes: number | null; seconds: number | null; state: string }[];
}

export interface LagHistory {
  range: LagRange;
  from: number;
  to: number;
  series: LagSeries[];
  /** The operations on the herd that were running at some point of the range. */
  operations: { id: number; action: string; status: string; requestedBy: string; from: number; to: number | null }[];
}

/** A herd's members' samples (or one instance's) over the range, bucketed for the longer ranges. */
export async function lagHistory(
  db: Db,
  by: { herdId: number } | { instanceId: number },
  range: LagRange,
  now = new Date(),
): Promise<LagHistory> {
  const r = LAG_RANGES[range];
  const from = new Date(now.getTime() - r.ms);
  // A herd's chart: its members now only (an instance that moved to another herd, perhaps in another
  // environment, is that herd's to show).
  const where = 'herdId' in by ? sql`s.herd_id = ${by.herdId} AND i.herd_id = ${by.herdId}` : sql`s.instance_id = ${by.instanceId}`;
  const t = r.bucket ? sql`date_bin(${r.bucket}::interval, s.at, '2000-01-01'::timestamptz)` : sql`s.at`;
  const rows = await db.execute<{
    instance_id: number;
    label: string;
    t: string;
    bytes: string | null;
    seconds: number | null;
    state: string;
  }>(sql`
    SELECT s.instance_id, sv.hostname || ':' || i.port AS label, ${t} AS t, max(s.lag_bytes) AS bytes, max(s.lag_seconds) AS seconds,
           (array_agg(s.state ORDER BY s.at DESC))[1]::text AS state
    FROM lag_samples s JOIN instances i ON i.id = s.instance_id JOIN servers sv ON sv.id = i.server_id
    WHERE ${where} AND s.at >= ${from}::timestamptz AND s.at <= ${now}::timestamptz
    GROUP BY 1, 2, 3 ORDER BY 2, 3`);
  const series = new Map<number, LagSeries>();
  for (const row of rows.rows) {
    let s = series.get(row.instance_id);
    if (!s) series.set(row.instance_id, (s = { instanceId: row.instance_id, label: row.label, points: [] }));
    s.points.push({
      t: new Date(row.t).getTime(),
      bytes: row.bytes === null ? null : Number(row.bytes),
      seconds: row.seconds,
      state: row.state,
    });
  }
  const herdOf = 'herdId' in by ? sql`${by.herdId}` : sql`(SELECT herd_id FROM instances WHERE id = ${by.instanceId})`;
  const ops = await db.execute<{
    id: number;
    action: string;
    status: string;
    requested_by: string;
    started: string;
    ended: string | null;
  }>(sql`
    SELECT o.id, o.action, o.status::text AS status, o.requested_by_name AS requested_by,
           coalesce(o.started_at, o.created_at) AS started, o.finished_at AS ended
    FROM operations o
    WHERE EXISTS (SELECT 1 FROM operation_targets t WHERE t.operation_id = o.id AND t.herd_id = ${herdOf})
      AND o.status <> 'planned' AND coalesce(o.finished_at, now()) >= ${from}::timestamptz AND o.created_at <= ${now}::timestamptz
    ORDER BY coalesce(o.started_at, o.created_at), o.id`);
  return {
    range,
    from: from.getTime(),
    to: now.getTime(),
    series: [...series.values()],
    operations: ops.rows.map((o) => ({
      id: o.id,
      action: o.action,
      status: o.status,
      requestedBy: o.requested_by,
      from: new Date(o.started).getTime(),
      to: o.ended === null ? null : new Date(o.ended).getTime(),
    })),
  };
}

export interface FleetHistory {
  from: number;
  to: number;
  /** The fleet at the last sample of each half hour of the last day, by state and by role. */
  points: { t: number; byState: Record<string, number>; byRole: Record<string, number> }[];
  /** Operations that ended in each of the last 7 days (UTC), by how they ended. */
  operations: { day: string; byStatus: Record<string, number> }[];
}

/** The dashboard's history, over the environments in `scope` (null: all). */
export async function fleetHistory(db: Db, scope: number[] | null, now = new Date()): Promise<FleetHistory> {
  const within = (col: SQL) =>
    scope === null
      ? sql`true`
      : scope.length
        ? sql`${col} IN (${sql.join(
            scope.map((id) => sql`${id}`),
            sql`, `,
          )})`
        : sql`false`;
  const from = new Date(now.getTime() - LAG_RANGES.day.ms);
  const [samples, ops] = await Promise.all([
    db.execute<{ t: string; state: string; role: string; n: number }>(
      withParams(sqlFile('lib/fleet/fleet-history-samples.sql'), [from, now, scope]),
    ),
    db.execute<{ day: string; status: string; n: number }>(sql`
      SELECT to_char(date_trunc('day', o.finished_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, o.status::text AS status, count(*)::int AS n
      FROM operations o
      WHERE o.finished_at > date_trunc('day', ${now}::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '6 days'
        AND ${
          // The whole fleet counts every operation, those whose herds are gone since (a torn-down
          // restore) too; a scope can only place an operation through a herd that is still there.
          scope === null
            ? sql`true`
            : sql`EXISTS (SELECT 1 FROM operation_targets t JOIN herds h ON h.id = t.herd_id WHERE t.operation_id = o.id AND ${within(sql`h.environment_id`)})`
        }
      GROUP BY 1, 2 ORDER BY 1`),
  ]);
  const points = new Map<number, FleetHistory['points'][number]>();
  for (const r of samples.rows) {
    const t = new Date(r.t).getTime();
    const p = points.get(t) ?? { t, byState: {}, byRole: {} };
    p.byState[r.state] = (p.byState[r.state] ?? 0) + r.n;
    p.byRole[r.role] = (p.byRole[r.role] ?? 0) + r.n;
    points.set(t, p);
  }
  const days = Array.from({ length: 7 }, (_, i) => new Date(now.getTime() - (6 - i) * 86_400_000).toISOString().slice(0, 10));
  return {
    from: from.getTime(),
    to: now.getTime(),
    points: [...points.values()],
    operations: days.map((day) => ({
      day,
      byStatus: Object.fromEntries(ops.rows.filter((r) => r.day === day).map((r) => [r.status, r.n])),
    })),
  };
}
