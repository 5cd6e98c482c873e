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

/**
 * Registers the fleet's gauges on `registry`. `queues()` gives the queues to count (none without
 * Redis); a queue that does not answer (Redis away) leaves its gauges out of that scrape rather than
 * failing it, and pgherd_queue_up says so.
 */
export function registerFleetGauges(
  registry: Registry,
  db: () => Db,
  queues: () => CountedQueue[],
  opts: { readBoundMs?: number } = {},
): void {
  const readBoundMs = opts.readBoundMs ?? READ_BOUND_MS;
  const registers = [registry];
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
  new Gauge({
    name: 'pgherd_inventory_up',
    help: "Whether pgherd's database answered this scrape (1) or not (0: the fleet's gauges are left out).",
    registers,
    async collect() {
      this.set((await bounded(() => db().execute(sql`SELECT 1`))) ? 1 : 0);
    },
  });
  const rowsOf = async <T extends Record<string, unknown>>(query: SQL): Promise<T[]> =>
    ((await bounded(() => db().execute(query)))?.rows ?? []) as T[];
  new Gauge({
    name: 'pgherd_instances',
    help: 'Instances in the inventory, by environment, role and state.',
    labelNames: ['environment', 'role', 'state'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; role: string; state: string; n: number }>(sql`
        SELECT e.name AS environment, i.role::text AS role, i.state::text AS state, count(*)::int AS n
        FROM instances i JOIN environments e ON e.id = i.environment_id GROUP BY 1, 2, 3`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment, role: r.role, state: r.state }, r.n);
    },
  });
  const lag = async () =>
    rowsOf<{ environment: string; herd: string; pg_instance: string; lag_bytes: string | null; lag_seconds: number | null }>(sql`
        SELECT e.name AS environment, h.name AS herd, s.hostname || ':' || i.port AS pg_instance, i.lag_bytes, i.lag_seconds
        FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
        WHERE i.role = 'replica' AND (i.lag_bytes IS NOT NULL OR i.lag_seconds IS NOT NULL)`);
  // One query for both lag gauges: prom-client collects a registry's metrics together, so the second
  // to ask shares the first's query while it runs.
  let reading: ReturnType<typeof lag> | null = null;
  const lagNow = () =>
    (reading ??= lag().finally(() => {
      reading = null;
    }));
  const lagGauge = (name: string, help: string, value: (r: Awaited<ReturnType<typeof lag>>[number]) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['environment', 'herd', 'pg_instance'] as const,
      registers,
      async collect() {
        const rows = await lagNow();
        this.reset();
        for (const r of rows) {
          const v = value(r);
          if (v !== null) this.set({ environment: r.environment, herd: r.herd, pg_instance: r.pg_instance }, v);
        }
      },
    });
  lagGauge('pgherd_replication_lag_bytes', "A replica's replay lag behind its primary in bytes of WAL, as last observed.", (r) =>
    r.lag_bytes === null ? null : Number(r.lag_bytes),
  );
  lagGauge(
    'pgherd_replication_lag_seconds',
    "A replica's replay lag in seconds (time since the last transaction it replayed was committed), as last observed.",
    (r) => r.lag_seconds,
  );
  new Gauge({
    name: 'pgherd_agents_silent',
    help: `Servers whose agent has not reported for ${SILENT_AFTER_INTERVALS} of its intervals, by environment.`,
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; silent: number }>(sql`
        SELECT e.name AS environment,
               (count(*) FILTER (WHERE s.last_seen_at < now() - make_interval(secs => ${SILENT_AFTER_INTERVALS} *
                 CASE WHEN s.agent_interval_seconds > 0 THEN s.agent_interval_seconds ELSE ${DEFAULT_INTERVAL_SECONDS} END)))::int AS silent
        FROM servers s JOIN environments e ON e.id = s.environment_id
        WHERE s.agent_token_hash IS NOT NULL AND s.last_seen_at IS NOT NULL GROUP BY 1`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment }, r.silent);
    },
  });
  new Gauge({
    name: 'pgherd_herds_two_primaries',
    help: 'Herds with more than one member accepting writes: asked of Postgres where the inventory records two running as primary, or as Patroni\u2019s follower last saw.',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      // The inventory names the suspects; Postgres decides (a switchover records its new primary before
      // its old one is recorded otherwise, with one primary all along).
      const rows = await rowsOf<{ environment: string; patroni: number; suspects: number[] }>(sql`
        SELECT e.name AS environment, (count(*) FILTER (WHERE h.patroni_problem LIKE ${`${TWO_PRIMARIES}%`}))::int AS patroni,
          coalesce(array_agg(h.id) FILTER (WHERE (h.patroni_problem IS NULL OR h.patroni_problem NOT LIKE ${`${TWO_PRIMARIES}%`}) AND
            (SELECT count(*) FROM instances i WHERE i.herd_id = h.id AND i.role = 'primary' AND i.state = 'running') > 1), '{}') AS suspects
        FROM herds h JOIN environments e ON e.id = h.environment_id GROUP BY 1`);
      const writable = await bounded(() =>
        writablePrimaries(
          db(),
          rows.flatMap((r) => r.suspects),
        ),
      );
      this.reset();
      if (!writable) return;
      for (const r of rows) this.set({ environment: r.environment }, r.patroni + r.suspects.filter((h) => writable.has(h)).length);
    },
  });
  new Gauge({
    name: 'pgherd_herds_no_primary',
    help: 'Herds where no member answers as a primary, as pgherd last saw them (the refresher, or a DR failover that stopped), by environment.',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; n: number }>(sql`
        SELECT e.name AS environment, (count(*) FILTER (WHERE h.no_primary_since IS NOT NULL))::int AS n
        FROM herds h JOIN environments e ON e.id = h.environment_id GROUP BY 1`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment }, r.n);
    },
  });
  new Gauge({
    name: 'pgherd_instances_unobserved',
    help: 'Instances the refresh has not observed for two of its intervals (PGHERD_REFRESH_INTERVAL_MS), by environment: their rows are old. Absent while the refresh is off.',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const after = unobservedAfterSeconds();
      this.reset();
      if (after === null) return;
      const rows = await rowsOf<{ environment: string; n: number }>(sql`
        SELECT e.name AS environment, coalesce(u.n, 0)::int AS n
        FROM environments e LEFT JOIN (
          -- (instances_observed_idx: those observed lately are never read)
          SELECT environment_id, count(*) AS n FROM instances
          WHERE coalesce(last_observed_at, created_at) < now() - make_interval(secs => ${after})
          GROUP BY 1) u ON u.environment_id = e.id`);
      for (const r of rows) this.set({ environment: r.environment }, r.n);
    },
  });
  new Gauge({
    name: 'pgherd_instances_settings_drifted',
    help: 'Instances that do not run what their parameter groups say (a setting changed outside pgherd, or a group not applied yet), by environment.',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; n: number }>(sql`
        SELECT e.name AS environment, coalesce(d.n, 0)::int AS n
        FROM environments e LEFT JOIN (
          -- (instances_drifted_idx: those in line are never read)
          SELECT environment_id, count(*) AS n FROM instances WHERE settings_drift > 0 GROUP BY 1) d ON d.environment_id = e.id`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment }, r.n);
    },
  });
  // Backups (lib/fleet/backups): the measured RPO of each configured primary, the age of each herd's
  // last backups, and the herds by their standing, as the changelist's Backups facet reads it.
  new Gauge({
    name: 'pgherd_archive_waiting_seconds',
    help: 'How long WAL written on a configured herd\u2019s primary has waited for the archive (0: none waits): what a restore now would lose.',
    labelNames: ['environment', 'herd', 'pg_instance'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; herd: string; pg_instance: string; s: number }>(sql`
        SELECT e.name AS environment, h.name AS herd, sv.hostname || ':' || i.port AS pg_instance,
               coalesce(extract(epoch FROM now() - i.archive_pending_since), 0)::float8 AS s
        FROM herd_backup_setups b JOIN herds h ON h.id = b.herd_id JOIN environments e ON e.id = h.environment_id
          JOIN instances i ON i.herd_id = h.id AND i.role = 'primary' JOIN servers sv ON sv.id = i.server_id`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment, herd: r.herd, pg_instance: r.pg_instance }, r.s);
    },
  });
  new Gauge({
    name: 'pgherd_archive_failures',
    help: 'archive_command failures counted by a configured primary since its statistics were reset (pg_stat_archiver.failed_count).',
    labelNames: ['environment', 'herd', 'pg_instance'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; herd: string; pg_instance: string; n: string }>(sql`
        SELECT e.name AS environment, h.name AS herd, sv.hostname || ':' || i.port AS pg_instance, i.archive_failed_count::text AS n
        FROM herd_backup_setups b JOIN herds h ON h.id = b.herd_id JOIN environments e ON e.id = h.environment_id
          JOIN instances i ON i.herd_id = h.id AND i.role = 'primary' JOIN servers sv ON sv.id = i.server_id
        WHERE i.archive_failed_count IS NOT NULL`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment, herd: r.herd, pg_instance: r.pg_instance }, Number(r.n));
    },
  });
  new Gauge({
    name: 'pgherd_backup_age_seconds',
    help: 'Seconds since a configured herd\u2019s last backup of each kind ended (full; diff or incr), as the repository lists them.',
    labelNames: ['environment', 'herd', 'kind'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; herd: string; kind: string; s: number }>(sql`
        SELECT e.name AS environment, h.name AS herd, CASE WHEN k.type = 'full' THEN 'full' ELSE 'incremental' END AS kind,
               extract(epoch FROM now() - max(k.stopped_at))::float8 AS s
        FROM backups k JOIN herds h ON h.id = k.herd_id JOIN environments e ON e.id = h.environment_id
        WHERE k.gone_at IS NULL GROUP BY 1, 2, 3`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment, herd: r.herd, kind: r.kind }, r.s);
    },
  });
  new Gauge({
    name: 'pgherd_herds_backup_standing',
    help: 'Herds by their backups\u2019 standing (ok, archive failing, archive lagging, no backup in 1 or 7 days, not configured), by environment.',
    labelNames: ['environment', 'standing'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; standing: string; n: number }>(sql`
        SELECT e.name AS environment, ${backupStatusSql(sql`h.id`)} AS standing, count(*)::int AS n
        FROM herds h JOIN environments e ON e.id = h.environment_id
        -- A restored herd is a copy for a while, not the fleet's to back up.
        WHERE h.restored_from_herd_id IS NULL GROUP BY 1, 2`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment, standing: r.standing }, r.n);
    },
  });
  new Gauge({
    name: 'pgherd_herds_unverified_restore',
    help: 'Herds not restore-proven (no policy applied, archive failing, last restore drill failed, never drilled, or older than PGHERD_RESTORE_DRILL_MAX_AGE_DAYS), by environment.',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const rows = (await bounded(() => unverifiedByEnvironment(db()))) ?? [];
      this.reset();
      for (const r of rows) this.set({ environment: r.environment }, r.n);
    },
  });
  new Gauge({
    name: 'pgherd_dns_records_drifted',
    help: 'DNS records whose server answered something else than the herd\u2019s members say, at the last check, by environment and herd.',
    labelNames: ['environment', 'herd'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ environment: string; herd: string; n: number }>(sql`
        SELECT e.name AS environment, h.name AS herd, (count(*) FILTER (WHERE d.drifted))::int AS n
        FROM dns_records d JOIN herds h ON h.id = d.herd_id JOIN environments e ON e.id = h.environment_id GROUP BY 1, 2`);
      this.reset();
      for (const r of rows) this.set({ environment: r.environment, herd: r.herd }, r.n);
    },
  });
  new Gauge({
    name: 'pgherd_operations',
    help: 'Operations not ended yet, by status (queued, running).',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ status: string; n: number }>(sql`
        SELECT s AS status, (SELECT count(*) FROM operations o WHERE o.status::text = s)::int AS n FROM unnest(ARRAY['queued', 'running']) s`);
      this.reset();
      for (const r of rows) this.set({ status: r.status }, r.n);
    },
  });
  // Labelled (state="alive"): an unlabelled gauge would say 0 when the database did not answer.
  new Gauge({
    name: 'pgherd_workers',
    help: 'Worker processes that said they were alive lately (state="alive"); left out when the database does not answer.',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const rows = await rowsOf<{ n: number }>(sql`
        SELECT count(*)::int AS n FROM workers WHERE stopped_at IS NULL AND last_seen_at > now() - ${WORKER_SILENT_MS} * interval '1 millisecond'`);
      this.reset();
      if (rows[0]) this.set({ state: 'alive' }, rows[0].n);
    },
  });
  // One read of the queues for both gauges (collected together, as the lag's are).
  let counting: Promise<{ name: string; counts: Record<string, number> | null }[]> | null = null;
  const countsNow = () =>
    (counting ??= Promise.all(
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
    ).finally(() => {
      counting = null;
    }));
  new Gauge({
    name: 'pgherd_queue_up',
    help: 'Whether the queue answered this scrape (1) or not (0: Redis unreachable).',
    labelNames: ['queue'] as const,
    registers,
    async collect() {
      const read = await countsNow();
      this.reset();
      for (const q of read) this.set({ queue: q.name }, q.counts ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pgherd_queue_jobs',
    help: 'Jobs in the queue, by state (waiting, active, delayed: a target put back while its herd is busy, prioritized, failed).',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      const read = await countsNow();
      this.reset();
      for (const q of read) if (q.counts) for (const st of QUEUE_STATES) this.set({ queue: q.name, state: st }, q.counts[st] ?? 0);
    },
  });
}
