// The fleet's state as gauges, read when Prometheus scrapes the web process: from pgherd's database
// (what the refresher, the agents and the Patroni follower last recorded) and from Redis (the
// queues). Only the web process registers these: the fleet is one, however many workers run.
//
// The instance label is `pg_instance` (host:port): Prometheus keeps `instance` for the scrape target.
import { sql, type SQL } from 'drizzle-orm';
import { Gauge, type Registry } from 'prom-client';
import type { Db } from '@/db/client';
import { DEFAULT_INTERVAL_SECONDS, SILENT_AFTER_INTERVALS, unobservedAfterSeconds } from '@/lib/features/agents/health';
import { WORKER_SILENT_MS } from '@/lib/engine/workers-alive';
import { TWO_PRIMARIES } from '@/lib/features/patroni/follow';
import { throttled } from '@/lib/adapters/log/log';
import { backupStatusSql } from '@/lib/fleet/backups/status-sql';
import { writablePrimaries } from '@/lib/fleet/two-primaries';
import { unverifiedByEnvironment } from '@/lib/features/backups/scorecard';

/** A queue as the gauges read it (BullMQ's Queue has this). */
export interface CountedQueue {
  name: string;
  getJobCounts(...types: string[]): Promise<Record<string, number>>;
  /** Resolves once its connection is up (the web process's is made on first use: the first scrape's). */
  waitUntilReady(): Promise<unknown>;
}

/** How long one read of pgherd's database may hold a scrape. */
const READ_BOUND_MS = 4000;
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;
// A Redis away is said (on stderr, with the web process's other errors) once a minute, not at every scrape.
const quietly = throttled((event, fields) => console.error(JSON.stringify({ at: new Date().toISOString(), event, ...fields })), 60_000);

/** One value of a gauge: its labels and the number. */
interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** What a gauge's read is given: pgherd's database (each read bounded), and the queues' counts. */
interface Reads {
  /** The rows of `query`, or [] when pgherd's database does not answer within the bound. */
  rows: <T extends Record<string, unknown>>(query: SQL) => Promise<T[]>;
  /** `read`'s answer, or null when it does not come within the bound. */
  bounded: <T>(read: () => Promise<T>) => Promise<T | null>;
  db: () => Db;
  /** The replicas' lag, read once for both lag gauges (prom-client collects a registry's metrics together). */
  lag: () => Promise<LagRow[]>;
  /** Each queue's job counts (null: it did not answer), read once for both queue gauges. */
  queues: () => Promise<{ name: string; counts: Record<string, number> | null }[]>;
}

/** A gauge as a row: its name, help and labels, and how its samples are read (null leaves it out of the scrape). */
interface GaugeRow {
  name: string;
  help: string;
  labels: readonly string[];
  read: (r: Reads) => Promise<Sample[] | null>;
}

type LagRow = {
  environment: string;
  herd: string;
  pg_instance: string;
  lag_bytes: string | null;
  lag_seconds: number | null;
};

/** Samples of rows whose labels are the columns named `labels` and whose value is column `value`. */
const samples = <T extends Record<string, unknown>>(rows: T[], labels: readonly string[], value: (r: T) => number | null): Sample[] =>
  rows.flatMap((r) => {
    const v = value(r);
    return v === null ? [] : [{ labels: Object.fromEntries(labels.map((l) => [l, String(r[l])])), value: v }];
  });

/** A gauge whose samples are the rows of one query: its label columns, and its value in column n. */
const counted = (name: string, help: string, labels: readonly string[], query: () => SQL): GaugeRow => ({
  name,
  help,
  labels,
  read: async (r) => samples(await r.rows<Record<string, unknown>>(query()), labels, (x) => Number(x.n)),
});

const ENV = ['environment'] as const;
const INSTANCE = ['environment', 'herd', 'pg_instance'] as const;

/** The fleet's gauges, in the order they are registered. */
const GAUGES: GaugeRow[] = [
  {
    name: 'pgherd_inventory_up',
    help: "Whether pgherd's database answered this scrape (1) or not (0: the fleet's gauges are left out).",
    labels: [],
    read: async (r) => [{ labels: {}, value: (await r.bounded(() => r.db().execute(sql`SELECT 1`))) ? 1 : 0 }],
  },
  counted(
    'pgherd_instances',
    'Instances in the inventory, by environment, role and state.',
    ['environment', 'role', 'state'],
    () => sql`
      SELECT e.name AS environment, i.role::text AS role, i.state::text AS state, count(*)::int AS n
      FROM instances i JOIN environments e ON e.id = i.environment_id GROUP BY 1, 2, 3`,
  ),
  {
    name: 'pgherd_replication_lag_bytes',
    help: "A replica's replay lag behind its primary in bytes of WAL, as last observed.",
    labels: INSTANCE,
    read: async (r) => samples(await r.lag(), INSTANCE, (x) => (x.lag_bytes === null ? null : Number(x.lag_bytes))),
  },
  {
    name: 'pgherd_replication_lag_seconds',
    help: "A replica's replay lag in seconds (time since the last transaction it replayed was committed), as last observed.",
    labels: INSTANCE,
    read: async (r) => samples(await r.lag(), INSTANCE, (x) => x.lag_seconds),
  },
  counted(
    'pgherd_agents_silent',
    `Servers whose agent has not reported for ${SILENT_AFTER_INTERVALS} of its intervals, by environment.`,
    ENV,
    () => sql`
      SELECT e.name AS environment,
             (count(*) FILTER (WHERE s.last_seen_at < now() - make_interval(secs => ${SILENT_AFTER_INTERVALS} *
               CASE WHEN s.agent_interval_seconds > 0 THEN s.agent_interval_seconds ELSE ${DEFAULT_INTERVAL_SECONDS} END)))::int AS n
      FROM servers s JOIN environments e ON e.id = s.environment_id
      WHERE s.agent_token_hash IS NOT NULL AND s.last_seen_at IS NOT NULL GROUP BY 1`,
  ),
  {
    name: 'pgherd_herds_two_primaries',
    help: 'Herds with more than one member accepting writes: asked of Postgres where the inventory records two running as primary, or as Patroni\u2019s follower last saw.',
    labels: ENV,
    read: async (r) => {
      // The inventory names the suspects; Postgres decides (a switchover records its new primary before
      // its old one is recorded otherwise, with one primary all along).
      const rows = await r.rows<{ environment: string; patroni: number; suspects: number[] }>(sql`
        SELECT e.name AS environment, (count(*) FILTER (WHERE h.patroni_problem LIKE ${`${TWO_PRIMARIES}%`}))::int AS patroni,
          coalesce(array_agg(h.id) FILTER (WHERE (h.patroni_problem IS NULL OR h.patroni_problem NOT LIKE ${`${TWO_PRIMARIES}%`}) AND
            (SELECT count(*) FROM instances i WHERE i.herd_id = h.id AND i.role = 'primary' AND i.state = 'running') > 1), '{}') AS suspects
        FROM herds h JOIN environments e ON e.id = h.environment_id GROUP BY 1`);
      const writable = await r.bounded(() =>
        writablePrimaries(
          r.db(),
          rows.flatMap((x) => x.suspects),
        ),
      );
      if (!writable) return null;
      return rows.map((x) => ({
        labels: { environment: x.environment },
        value: x.patroni + x.suspects.filter((h) => writable.has(h)).length,
      }));
    },
  },
  counted(
    'pgherd_herds_no_primary',
    'Herds where no member answers as a primary, as pgherd last saw them (the refresher, or a DR failover that stopped), by environment.',
    ENV,
    () => sql`
      SELECT e.name AS environment, (count(*) FILTER (WHERE h.no_primary_since IS NOT NULL))::int AS n
      FROM herds h JOIN environments e ON e.id = h.environment_id GROUP BY 1`,
  ),
  {
    name: 'pgherd_instances_unobserved',
    help: 'Instances the refresh has not observed for two of its intervals (PGHERD_REFRESH_INTERVAL_MS), by environment: their rows are old. Absent while the refresh is off.',
    labels: ENV,
    read: async (r) => {
      const after = unobservedAfterSeconds();
      if (after === null) return null;
      const rows = await r.rows<{ environment: string; n: number }>(sql`
        SELECT e.name AS environment, coalesce(u.n, 0)::int AS n
        FROM environments e LEFT JOIN (
          -- (instances_observed_idx: those observed lately are never read)
          SELECT environment_id, count(*) AS n FROM instances
          WHERE coalesce(last_observed_at, created_at) < now() - make_interval(secs => ${after})
          GROUP BY 1) u ON u.environment_id = e.id`);
      return samples(rows, ENV, (x) => x.n);
    },
  },
  counted(
    'pgherd_risks',
    "The fleet's risks that count now (found, and not acknowledged: docs/risks.md), by environment, kind and severity.",
    ['environment', 'kind', 'severity'],
    () => sql`
      SELECT e.name AS environment, r.kind, r.severity, count(*)::int AS n
      FROM risks r JOIN environments e ON e.id = r.environment_id WHERE r.counted GROUP BY 1, 2, 3`,
  ),
  counted(
    'pgherd_instances_settings_drifted',
    'Instances that do not run what their parameter groups say (a setting changed outside pgherd, or a group not applied yet), by environment.',
    ENV,
    () => sql`
      SELECT e.name AS environment, coalesce(d.n, 0)::int AS n
      FROM environments e LEFT JOIN (
        -- (instances_drifted_idx: those in line are never read)
        SELECT environment_id, count(*) AS n FROM instances WHERE settings_drift > 0 GROUP BY 1) d ON d.environment_id = e.id`,
  ),
  counted(
    'pgherd_herds_objects_drifted',
    'Herds whose primary does not have what their object sets declare (a role, database, extension or pg_hba line changed outside pgherd, or a set not applied yet), by environment.',
    ENV,
    () => sql`
      SELECT e.name AS environment, coalesce(d.n, 0)::int AS n
      FROM environments e LEFT JOIN (
        SELECT h.environment_id, count(DISTINCT h.id) AS n FROM instances i JOIN herds h ON h.id = i.herd_id
        WHERE i.objects_drift > 0 AND i.role = 'primary' GROUP BY 1) d ON d.environment_id = e.id`,
  ),
  // Backups (lib/fleet/backups): the measured RPO of each configured primary, the age of each herd's
  // last backups, and the herds by their standing, as the changelist's Backups facet reads it.
  counted(
    'pgherd_archive_waiting_seconds',
    'How long WAL written on a configured herd\u2019s primary has waited for the archive (0: none waits): what a restore now would lose.',
    INSTANCE,
    () => sql`
      SELECT e.name AS environment, h.name AS herd, sv.hostname || ':' || i.port AS pg_instance,
             coalesce(extract(epoch FROM now() - i.archive_pending_since), 0)::float8 AS n
      FROM herd_backup_setups b JOIN herds h ON h.id = b.herd_id JOIN environments e ON e.id = h.environment_id
        JOIN instances i ON i.herd_id = h.id AND i.role = 'primary' JOIN servers sv ON sv.id = i.server_id`,
  ),
  counted(
    'pgherd_archive_failures',
    'archive_command failures counted by a configured primary since its statistics were reset (pg_stat_archiver.failed_count).',
    INSTANCE,
    () => sql`
      SELECT e.name AS environment, h.name AS herd, sv.hostname || ':' || i.port AS pg_instance, i.archive_failed_count::text AS n
      FROM herd_backup_setups b JOIN herds h ON h.id = b.herd_id JOIN environments e ON e.id = h.environment_id
        JOIN instances i ON i.herd_id = h.id AND i.role = 'primary' JOIN servers sv ON sv.id = i.server_id
      WHERE i.archive_failed_count IS NOT NULL`,
  ),
  counted(
    'pgherd_backup_age_seconds',
    'Seconds since a configured herd\u2019s last backup of each kind ended (full; diff or incr), as the repository lists them.',
    ['environment', 'herd', 'kind'],
    () => sql`
      SELECT e.name AS environment, h.name AS herd, CASE WHEN k.type = 'full' THEN 'full' ELSE 'incremental' END AS kind,
             extract(epoch FROM now() - max(k.stopped_at))::float8 AS n
      FROM backups k JOIN herds h ON h.id = k.herd_id JOIN environments e ON e.id = h.environment_id
      WHERE k.gone_at IS NULL GROUP BY 1, 2, 3`,
  ),
  counted(
    'pgherd_herds_backup_standing',
    'Herds by their backups\u2019 standing (ok, archive failing, archive lagging, no backup in 1 or 7 days, not configured), by environment.',
    ['environment', 'standing'],
    () => sql`
      SELECT e.name AS environment, ${backupStatusSql(sql`h.id`)} AS standing, count(*)::int AS n
      FROM herds h JOIN environments e ON e.id = h.environment_id
      -- A restored herd is a copy for a while, not the fleet's to back up.
      WHERE h.restored_from_herd_id IS NULL GROUP BY 1, 2`,
  ),
  {
    name: 'pgherd_herds_unverified_restore',
    help: 'Herds not restore-proven (no policy applied, archive failing, last restore drill failed, never drilled, or older than PGHERD_RESTORE_DRILL_MAX_AGE_DAYS), by environment.',
    labels: ENV,
    read: async (r) => samples((await r.bounded(() => unverifiedByEnvironment(r.db()))) ?? [], ENV, (x) => x.n),
  },
  counted(
    'pgherd_dns_records_drifted',
    'DNS records whose server answered something else than the herd\u2019s members say, at the last check, by environment and herd.',
    ['environment', 'herd'],
    () => sql`
      SELECT e.name AS environment, h.name AS herd, (count(*) FILTER (WHERE d.drifted))::int AS n
      FROM dns_records d JOIN herds h ON h.id = d.herd_id JOIN environments e ON e.id = h.environment_id GROUP BY 1, 2`,
  ),
  counted(
    'pgherd_operations',
    'Operations not ended yet, by status (queued, running).',
    ['status'],
    () => sql`
      SELECT s AS status, (SELECT count(*) FROM operations o WHERE o.status::text = s)::int AS n FROM unnest(ARRAY['queued', 'running']) s`,
  ),
  // Labelled (state="alive"): an unlabelled gauge would say 0 when the database did not answer.
  {
    name: 'pgherd_workers',
    help: 'Worker processes that said they were alive lately (state="alive"); left out when the database does not answer.',
    labels: ['state'],
    read: async (r) =>
      (
        await r.rows<{ n: number }>(sql`
          SELECT count(*)::int AS n FROM workers WHERE stopped_at IS NULL AND last_seen_at > now() - ${WORKER_SILENT_MS} * interval '1 millisecond'`)
      ).map((x) => ({ labels: { state: 'alive' }, value: x.n })),
  },
  {
    name: 'pgherd_queue_up',
    help: 'Whether the queue answered this scrape (1) or not (0: Redis unreachable).',
    labels: ['queue'],
    read: async (r) => (await r.queues()).map((q) => ({ labels: { queue: q.name }, value: q.counts ? 1 : 0 })),
  },
  {
    name: 'pgherd_queue_jobs',
    help: 'Jobs in the queue, by state (waiting, active, delayed: a target put back while its herd is busy, prioritized, failed).',
    labels: ['queue', 'state'],
    read: async (r) =>
      (await r.queues()).flatMap((q) =>
        q.counts ? QUEUE_STATES.map((st) => ({ labels: { queue: q.name, state: st }, value: q.counts?.[st] ?? 0 })) : [],
      ),
  },
];

/** Reads shared by the gauges collected together: started by the first to ask, ended when it answers. */
function shared<T>(read: () => Promise<T>): () => Promise<T> {
  let reading: Promise<T> | null = null;
  return () =>
    (reading ??= read().finally(() => {
      reading = null;
    }));
}

/**
 * Registers the fleet's gauges on `registry`. `queues()` gives the queues to count (none without
 * Redis); a queue that does not answer (Redis away) leaves its gauges out of that scrape rather than
 * failing it, and pgherd_queue_up says so.
 */
export function registerFleetGauges(
  registry: Registry,
  db: () => Db,
  queues: () => CountedQueue[],
  opts: {
    readBoundMs?: number;
    /**
     * Only these environments' samples (an API caller's: GET /api/v1/metrics), and no gauge without an
     * environment label (the queues, the workers: the whole fleet's). Undefined: everything (/metrics).
     */
    environments?: ReadonlySet<string>;
  } = {},
): void {
  const readBoundMs = opts.readBoundMs ?? READ_BOUND_MS;
  const only = opts.environments;
  // pgherd's database away: the gauges it feeds are left out of the scrape (not zero, which would read
  // as "all is well"), the process's own metrics are still served, and pgherd_inventory_up says 0.
  // Each read bounded: a database that takes the connection and never answers leaves its gauges out
  // after READ_BOUND_MS, never the scrape waiting (the pool's own timeouts end the stuck query later).
  const bounded = <T>(read: () => Promise<T>): Promise<T | null> =>
    Promise.race([
      Promise.resolve()
        .then(read)
        .catch(() => null),
      new Promise<null>((r) => setTimeout(() => r(null), readBoundMs).unref()),
    ]);
  const rows = async <T extends Record<string, unknown>>(query: SQL): Promise<T[]> =>
    ((await bounded(() => db().execute(query)))?.rows ?? []) as T[];
  const reads: Reads = {
    rows,
    bounded,
    db,
    lag: shared(() =>
      rows<LagRow>(sql`
        SELECT e.name AS environment, h.name AS herd, s.hostname || ':' || i.port AS pg_instance, i.lag_bytes, i.lag_seconds
        FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
        WHERE i.role = 'replica' AND (i.lag_bytes IS NOT NULL OR i.lag_seconds IS NOT NULL)`),
    ),
    queues: shared(() =>
      Promise.all(
        queues().map(async (q) => ({
          name: q.name,
          // A Redis away must not hold the scrape for its reconnect timeout.
          counts: await Promise.race([
            q
              .waitUntilReady()
              .then(() => q.getJobCounts(...QUEUE_STATES))
              .catch((err: unknown) => {
                quietly('metrics.queue.error', { queue: q.name, error: err instanceof Error ? err.message : String(err) });
                return null;
              }),
            new Promise<null>((r) => setTimeout(() => r(null), 2000).unref()),
          ]),
        })),
      ),
    ),
  };
  for (const g of GAUGES.filter((x) => !only || x.labels.includes('environment')))
    new Gauge({
      name: g.name,
      help: g.help,
      labelNames: g.labels,
      registers: [registry],
      async collect() {
        const now = await g.read(reads);
        this.reset();
        for (const x of now ?? [])
          if (only && !only.has(x.labels.environment ?? '')) continue;
          else if (g.labels.length) this.set(x.labels, x.value);
          else this.set(x.value);
      },
    });
}
