// Fleet health from what the agents report: servers whose agent has gone silent, herds where more than
// one instance accepts writes as a primary, asked of Postgres (a split brain, or a restored copy started
// on its own), replicas
// that stream from an instance outside their herd, and instances whose server's EC2 tags name another
// herd than the one the agents put them in; and herds pgherd found with no primary at all (the
// refresher, or a DR failover that stopped: lib/fleet/no-primary.ts). For the dashboard (the whole
// fleet one may see) and the herd page (that herd).
import { archiveFailing, archiveLagging } from '@/lib/fleet/backups/status-sql';
import { sql, type SQL } from 'drizzle-orm';
import { withParams, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { discoveryConfig } from '@/lib/features/discovery/discovery';
import { writablePrimaries } from '@/lib/fleet/two-primaries';
import { setting } from '@/lib/settings/settings';

/** An agent silent for more than this many of its intervals is reported. */
export const SILENT_AFTER_INTERVALS = 3;
/** The interval assumed when a report did not say one (0). The agent's own default. */
export const DEFAULT_INTERVAL_SECONDS = 60;
/** At most this many rows of each kind are listed; the total is always given. */
export const HEALTH_ROWS = 50;

export type SilentServer = {
  id: number;
  hostname: string;
  environment: string;
  lastSeenAt: Date;
  intervalSeconds: number;
  silentSeconds: number;
};

export type TwoPrimaries = {
  herdId: number;
  herd: string;
  primaries: { id: number; label: string }[];
};

/** A herd where no member answers as a primary, since pgherd first saw it so. */
export type NoPrimary = {
  herdId: number;
  herd: string;
  since: Date;
  /** What was seen then, in words. */
  detail: string;
  /** The members the inventory records as primary, as it has them now (none: never observed as one). */
  primaries: { id: number; label: string; state: string }[];
};

export type ForeignUpstream = {
  id: number;
  label: string;
  herdId: number;
  herd: string;
  upstreamId: number;
  upstream: string;
  /** The upstream's herd, or null where the user may not see its environment. */
  upstreamHerd: string | null;
};

/** An instance whose system identifier is a herd's in another environment than its server's: held, not merged. */
export type HeldConflict = {
  serverId: number;
  label: string;
  serverEnvironment: string;
  systemIdentifier: string;
  herdId: number;
  /** The herd it claims to belong to, or null where the user may not see its environment. */
  herd: string | null;
  firstSeenAt: Date;
};

/** An instance the agents put in one herd (by its system identifier) on a server whose EC2 tags name another herd or environment. */
export type TagDisagreement = {
  serverId: number;
  hostname: string;
  cloudInstanceId: string | null;
  /** What the tags say: "environment/herd", a part the tags do not give shown as "?". */
  taggedHerd: string;
  id: number;
  label: string;
  herdId: number;
  herd: string;
};

/** An instance the refresh has not observed for more than two of its intervals (its workers are gone, or behind). */
export type Unobserved = {
  id: number;
  label: string;
  herdId: number;
  herd: string;
  /** Null: never observed (counted from when the row was made). */
  lastObservedAt: Date | null;
};

/** An instance not observed for this many refresh intervals is flagged. */
export const UNOBSERVED_AFTER_INTERVALS = 2;

/** The age past which an instance counts as unobserved, in seconds; null when the refresh is off (PGHERD_REFRESH_INTERVAL_MS=0). */
export function unobservedAfterSeconds(): number | null {
  const ms = setting('PGHERD_REFRESH_INTERVAL_MS');
  return ms > 0 ? (UNOBSERVED_AFTER_INTERVALS * ms) / 1000 : null;
}

/** A configured herd whose primary's archive fails, or keeps written WAL waiting longer than twice archive_timeout. */
export type ArchiveTrouble = {
  herdId: number;
  herd: string;
  primary: string;
  failing: boolean;
  /** How long written WAL has waited for the archive (null: none waits). */
  waitingSeconds: number | null;
  lastFailedWal: string | null;
  lastFailedAt: Date | null;
};

/** An instance that does not run what its parameter groups say (lib/fleet/settings). */
export type SettingsDrift = {
  id: number;
  label: string;
  herdId: number;
  herd: string;
  /** How many of the settings its groups name differ. */
  settings: number;
  since: Date | null;
};

/** A herd whose primary does not have what its object sets declare (lib/fleet/objects). */
export type ObjectsDrift = {
  herdId: number;
  herd: string;
  /** How many differences. */
  objects: number;
  since: Date | null;
};

export interface FleetHealth {
  silent: { rows: SilentServer[]; total: number };
  twoPrimaries: { rows: TwoPrimaries[]; total: number };
  noPrimary: { rows: NoPrimary[]; total: number };
  foreignUpstreams: { rows: ForeignUpstream[]; total: number };
  conflicts: { rows: HeldConflict[]; total: number };
  tagDisagreements: { rows: TagDisagreement[]; total: number };
  archive: { rows: ArchiveTrouble[]; total: number };
  unobserved: { rows: Unobserved[]; total: number };
  drifted: { rows: SettingsDrift[]; total: number };
  objectsDrifted: { rows: ObjectsDrift[]; total: number };
}

export const healthy = (h: FleetHealth) =>
  h.silent.total +
    h.twoPrimaries.total +
    h.noPrimary.total +
    h.foreignUpstreams.total +
    h.conflicts.total +
    h.tagDisagreements.total +
    h.archive.total +
    h.unobserved.total +
    h.drifted.total +
    h.objectsDrifted.total ===
  0;

/** `col` within the environments in `scope` (null: all). */
function within(col: SQL, scope: number[] | null): SQL {
  if (scope === null) return sql`true`;
  if (!scope.length) return sql`false`;
  return sql`${col} IN (${sql.join(
    scope.map((id) => sql`${id}`),
    sql`, `,
  )})`;
}

function counted<T>(rows: (T & { total: number })[]): { rows: T[]; total: number } {
  return { rows: rows.map(({ total: _, ...r }) => r as T), total: rows[0]?.total ?? 0 };
}

/**
 * What is wrong in the environments of `scope` (null: all), or in one herd. Only what an agent (or
 * an admin) wrote into the inventory: the herd page observes the members live besides.
 */
/** The tag that names an instance's environment, as discovery reads it (its default when discovery is not configured, or badly). */
function environmentTag(): string {
  try {
    return discoveryConfig()?.map.environment ?? 'pgherd:environment';
  } catch {
    return 'pgherd:environment';
  }
}

export async function fleetHealth(db: Db, scope: number[] | null, opts: { herdId?: number; now?: Date } = {}): Promise<FleetHealth> {
  const envTag = environmentTag();
  const now = opts.now ?? new Date();
  const herd = (col: SQL) => (opts.herdId === undefined ? sql`true` : sql`${col} = ${opts.herdId}`);
  // The statements in health-*.sql take the scope (the environments' ids, null: all) and the herd (null: any) as parameters.
  const herdId = opts.herdId ?? null;
  const staleAfter = unobservedAfterSeconds();
  const [silent, two, none, foreign, held, tagged, archive, unobserved, drifted, objectsDrifted] = await Promise.all([
    db.execute<SilentServer & { total: number }>(
      withParams(sqlFile('lib/features/agents/health-silent.sql'), [
        now,
        SILENT_AFTER_INTERVALS,
        DEFAULT_INTERVAL_SECONDS,
        scope,
        herdId,
        HEALTH_ROWS,
      ]),
    ),
    db.execute<TwoPrimaries & { total: number }>(
      withParams(sqlFile('lib/features/agents/health-two-primaries.sql'), [scope, herdId, HEALTH_ROWS]),
    ),
    // Found by the partial index on no_primary_since: the herds with a primary are never read.
    db.execute<NoPrimary & { total: number }>(
      withParams(sqlFile('lib/features/agents/health-no-primary.sql'), [scope, herdId, HEALTH_ROWS]),
    ),
    db.execute<ForeignUpstream & { total: number }>(
      withParams(sqlFile('lib/features/agents/health-foreign-upstreams.sql'), [scope, herdId, HEALTH_ROWS]),
    ),
    // Held in the server's latest report (a conflict its agent no longer reports is over).
    db.execute<HeldConflict & { total: number }>(
      withParams(sqlFile('lib/features/agents/health-conflicts.sql'), [scope, herdId, HEALTH_ROWS]),
    ),
    // The tags say where the instance should be; the agents say where its data belongs. Not on a server
    // EC2 no longer has (its tags are history). A tag that is gone counts when another member of the
    // herd still carries it (deleted, not a fleet that never tags herds or environments).
    db.execute<TagDisagreement & { total: number }>(
      withParams(sqlFile('lib/features/agents/health-tags.sql'), [envTag, scope, herdId, HEALTH_ROWS]),
    ),
    // Configured herds only: a primary nobody archives from is the Backups facet's "not configured".
    db.execute<ArchiveTrouble & { total: number }>(sql`
      SELECT h.id AS "herdId", e.name || '/' || h.name AS herd, s.hostname || ':' || i.port AS primary,
             ${archiveFailing(sql`h.id`)} AS failing,
             floor(extract(epoch FROM ${now}::timestamptz - i.archive_pending_since))::int AS "waitingSeconds",
             i.last_archive_failed_wal AS "lastFailedWal", i.last_archive_failed_at AS "lastFailedAt", (count(*) OVER ())::int AS total
      FROM herd_backup_setups b JOIN herds h ON h.id = b.herd_id JOIN environments e ON e.id = h.environment_id
        JOIN instances i ON i.herd_id = h.id AND i.role = 'primary' JOIN servers s ON s.id = i.server_id
      WHERE (${archiveFailing(sql`h.id`)} OR ${archiveLagging(sql`h.id`)}) AND ${within(sql`h.environment_id`, scope)} AND ${herd(sql`h.id`)}
      ORDER BY e.name, h.name
      LIMIT ${HEALTH_ROWS}`),
    // Found by instances_observed_idx: the instances observed lately are never read.
    staleAfter === null
      ? { rows: [] }
      : db.execute<Unobserved & { total: number }>(
          withParams(sqlFile('lib/features/agents/health-unobserved.sql'), [now, staleAfter, scope, herdId, HEALTH_ROWS]),
        ),
    // Found by instances_drifted_idx: the instances in line are never read.
    db.execute<SettingsDrift & { total: number }>(
      withParams(sqlFile('lib/features/agents/health-drifted.sql'), [scope, herdId, HEALTH_ROWS]),
    ),
    db.execute<ObjectsDrift & { total: number }>(sql`
      SELECT h.id AS "herdId", e.name || '/' || h.name AS herd, i.objects_drift AS objects, i.objects_drift_since AS since,
             (count(*) OVER ())::int AS total
      FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
      WHERE i.objects_drift > 0 AND i.role = 'primary' AND ${within(sql`h.environment_id`, scope)} AND ${herd(sql`h.id`)}
      ORDER BY i.objects_drift_since, e.name, h.name
      LIMIT ${HEALTH_ROWS}`),
  ]);
  // The inventory names the suspects; Postgres decides: a herd in the middle of its own switchover records
  // its new primary before its old one is recorded otherwise, with one primary all along.
  const writable = await writablePrimaries(
    db,
    two.rows.map((r) => r.herdId),
  );
  const twoNow = two.rows
    .filter((r) => writable.has(r.herdId))
    .map((r) => ({ ...r, primaries: r.primaries.filter((p) => writable.get(r.herdId)?.includes(p.id)) }));
  return {
    silent: counted(silent.rows.map((r) => ({ ...r, lastSeenAt: new Date(r.lastSeenAt) }))),
    // Counted among the herds asked (the first HEALTH_ROWS the inventory suspects).
    twoPrimaries: { rows: twoNow.map(({ total: _t, ...r }) => r), total: twoNow.length },
    noPrimary: counted(none.rows.map((r) => ({ ...r, since: new Date(r.since) }))),
    foreignUpstreams: counted(foreign.rows),
    conflicts: counted(held.rows.map((r) => ({ ...r, firstSeenAt: new Date(r.firstSeenAt) }))),
    tagDisagreements: counted(tagged.rows),
    archive: counted(archive.rows.map((r) => ({ ...r, lastFailedAt: r.lastFailedAt ? new Date(r.lastFailedAt) : null }))),
    drifted: counted(drifted.rows.map((r) => ({ ...r, since: r.since ? new Date(r.since) : null }))),
    objectsDrifted: counted(objectsDrifted.rows.map((r) => ({ ...r, since: r.since ? new Date(r.since) : null }))),
    unobserved: counted(
      (unobserved.rows as (Unobserved & { total: number })[]).map((r) => ({
        ...r,
        lastObservedAt: r.lastObservedAt ? new Date(r.lastObservedAt) : null,
      })),
    ),
  };
}
