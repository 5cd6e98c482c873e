// Fleet health from what the agents report: servers whose agent has gone silent, herds where more than
// one instance accepts writes as a primary, asked of Postgres (a split brain, or a restored copy started
// on its own), replicas
// that stream from an instance outside their herd, and instances whose server's EC2 tags name another
// herd than the one the agents put them in; and herds pgherd found with no primary at all (the
// refresher, or a DR failover that stopped: lib/fleet/no-primary.ts). For the dashboard (the whole
// fleet one may see) and the herd page (that herd).
import { archiveFailing, archiveLagging } from '@/lib/fleet/backups/status-sql';
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '@/db/client';
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
    h.drifted.total ===
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
  const staleAfter = unobservedAfterSeconds();
  const [silent, two, none, foreign, held, tagged, archive, unobserved, drifted] = await Promise.all([
    db.execute<SilentServer & { total: number }>(sql`
      SELECT s.id, s.hostname, e.name AS environment, s.last_seen_at AS "lastSeenAt", s.agent_interval_seconds AS "intervalSeconds",
             floor(extract(epoch FROM ${now}::timestamptz - s.last_seen_at))::int AS "silentSeconds", (count(*) OVER ())::int AS total
      FROM servers s JOIN environments e ON e.id = s.environment_id
      WHERE s.agent_token_hash IS NOT NULL AND s.last_seen_at IS NOT NULL
        AND s.last_seen_at < ${now}::timestamptz - make_interval(secs => ${SILENT_AFTER_INTERVALS} * CASE WHEN s.agent_interval_seconds > 0 THEN s.agent_interval_seconds ELSE ${DEFAULT_INTERVAL_SECONDS} END)
        AND ${within(sql`s.environment_id`, scope)}
        AND ${opts.herdId === undefined ? sql`true` : sql`EXISTS (SELECT 1 FROM instances i WHERE i.server_id = s.id AND i.herd_id = ${opts.herdId})`}
      ORDER BY s.last_seen_at, s.hostname
      LIMIT ${HEALTH_ROWS}`),
    db.execute<TwoPrimaries & { total: number }>(sql`
      SELECT h.id AS "herdId", e.name || '/' || h.name AS herd,
             json_agg(json_build_object('id', i.id, 'label', s.hostname || ':' || i.port) ORDER BY s.hostname, i.port) AS primaries,
             (count(*) OVER ())::int AS total
      FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
      WHERE i.role = 'primary' AND i.state = 'running' AND ${within(sql`h.environment_id`, scope)} AND ${herd(sql`h.id`)}
      GROUP BY h.id, e.name, h.name
      HAVING count(*) > 1
      ORDER BY e.name, h.name
      LIMIT ${HEALTH_ROWS}`),
    // Found by the partial index on no_primary_since: the herds with a primary are never read.
    db.execute<NoPrimary & { total: number }>(sql`
      SELECT h.id AS "herdId", e.name || '/' || h.name AS herd, h.no_primary_since AS since, h.no_primary_detail AS detail,
             coalesce((SELECT json_agg(json_build_object('id', i.id, 'label', s.hostname || ':' || i.port, 'state', i.state) ORDER BY s.hostname, i.port)
                       FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.herd_id = h.id AND i.role = 'primary'), '[]') AS primaries,
             (count(*) OVER ())::int AS total
      FROM herds h JOIN environments e ON e.id = h.environment_id
      WHERE h.no_primary_since IS NOT NULL AND ${within(sql`h.environment_id`, scope)} AND ${herd(sql`h.id`)}
      ORDER BY h.no_primary_since, e.name, h.name
      LIMIT ${HEALTH_ROWS}`),
    db.execute<ForeignUpstream & { total: number }>(sql`
      SELECT r.id, rs.hostname || ':' || r.port AS label, rh.id AS "herdId", re.name || '/' || rh.name AS herd,
             u.id AS "upstreamId", us.hostname || ':' || u.port AS upstream,
             CASE WHEN ${within(sql`uh.environment_id`, scope)} THEN ue.name || '/' || uh.name END AS "upstreamHerd",
             (count(*) OVER ())::int AS total
      FROM instances r
        JOIN herds rh ON rh.id = r.herd_id JOIN environments re ON re.id = rh.environment_id JOIN servers rs ON rs.id = r.server_id
        JOIN instances u ON u.id = r.upstream_instance_id
        JOIN herds uh ON uh.id = u.herd_id JOIN environments ue ON ue.id = uh.environment_id JOIN servers us ON us.id = u.server_id
      WHERE r.role = 'replica' AND u.herd_id <> r.herd_id AND ${within(sql`rh.environment_id`, scope)} AND ${herd(sql`rh.id`)}
      ORDER BY re.name, rh.name, rs.hostname, r.port
      LIMIT ${HEALTH_ROWS}`),
    // Held in the server's latest report (a conflict its agent no longer reports is over).
    db.execute<HeldConflict & { total: number }>(sql`
      SELECT s.id AS "serverId", s.hostname || ':' || c.port AS label, se.name AS "serverEnvironment", c.system_identifier AS "systemIdentifier",
             c.herd_id AS "herdId", CASE WHEN ${within(sql`h.environment_id`, scope)} THEN he.name || '/' || h.name END AS herd,
             c.first_seen_at AS "firstSeenAt", (count(*) OVER ())::int AS total
      FROM agent_conflicts c JOIN servers s ON s.id = c.server_id JOIN environments se ON se.id = s.environment_id
        JOIN herds h ON h.id = c.herd_id JOIN environments he ON he.id = h.environment_id
      WHERE c.last_seen_at >= s.last_seen_at AND (${within(sql`s.environment_id`, scope)} OR ${within(sql`h.environment_id`, scope)}) AND ${herd(sql`h.id`)}
      ORDER BY s.hostname, c.port
      LIMIT ${HEALTH_ROWS}`),
    // The tags say where the instance should be; the agents say where its data belongs. Not on a server
    // EC2 no longer has (its tags are history). A tag that is gone counts when another member of the
    // herd still carries it (deleted, not a fleet that never tags herds or environments).
    db.execute<TagDisagreement & { total: number }>(sql`
      SELECT s.id AS "serverId", s.hostname, s.cloud_instance_id AS "cloudInstanceId",
             coalesce(s.cloud_tags ->> ${envTag}, '?') || '/' || coalesce(s.cloud_herd_tag, '?') AS "taggedHerd",
             i.id, s.hostname || ':' || i.port AS label, h.id AS "herdId", e.name || '/' || h.name AS herd, (count(*) OVER ())::int AS total
      FROM servers s JOIN instances i ON i.server_id = s.id JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id
      WHERE s.cloud_gone_at IS NULL AND s.cloud_tags IS NOT NULL
        AND (h.name <> s.cloud_herd_tag OR e.name <> s.cloud_tags ->> ${envTag}
          OR ((s.cloud_herd_tag IS NULL OR s.cloud_tags ->> ${envTag} IS NULL) AND EXISTS (
            SELECT 1 FROM instances o JOIN servers os ON os.id = o.server_id
            WHERE o.herd_id = h.id AND os.id <> s.id AND os.cloud_gone_at IS NULL
              AND ((s.cloud_herd_tag IS NULL AND os.cloud_herd_tag IS NOT NULL)
                OR (s.cloud_tags ->> ${envTag} IS NULL AND os.cloud_tags ->> ${envTag} IS NOT NULL)))))
        AND ${within(sql`i.environment_id`, scope)} AND ${herd(sql`h.id`)}
      ORDER BY s.hostname, i.port
      LIMIT ${HEALTH_ROWS}`),
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
      : db.execute<Unobserved & { total: number }>(sql`
      SELECT i.id, s.hostname || ':' || i.port AS label, h.id AS "herdId", e.name || '/' || h.name AS herd,
             i.last_observed_at AS "lastObservedAt", (count(*) OVER ())::int AS total
      FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
      WHERE coalesce(i.last_observed_at, i.created_at) < ${now}::timestamptz - make_interval(secs => ${staleAfter})
        AND ${within(sql`i.environment_id`, scope)} AND ${herd(sql`h.id`)}
      ORDER BY coalesce(i.last_observed_at, i.created_at), s.hostname, i.port
      LIMIT ${HEALTH_ROWS}`),
    // Found by instances_drifted_idx: the instances in line are never read.
    db.execute<SettingsDrift & { total: number }>(sql`
      SELECT i.id, s.hostname || ':' || i.port AS label, h.id AS "herdId", e.name || '/' || h.name AS herd,
             i.settings_drift AS settings, i.settings_drift_since AS since, (count(*) OVER ())::int AS total
      FROM instances i JOIN herds h ON h.id = i.herd_id JOIN environments e ON e.id = h.environment_id JOIN servers s ON s.id = i.server_id
      WHERE i.settings_drift > 0 AND ${within(sql`i.environment_id`, scope)} AND ${herd(sql`h.id`)}
      ORDER BY i.settings_drift_since, s.hostname, i.port
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
    unobserved: counted(
      (unobserved.rows as (Unobserved & { total: number })[]).map((r) => ({
        ...r,
        lastObservedAt: r.lastObservedAt ? new Date(r.lastObservedAt) : null,
      })),
    ),
  };
}
