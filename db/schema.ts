// The drizzle schema is the source of truth for pgherd's types and enum values.
// ON DELETE rules are deliberate: inventory parents cascade to their children (the
// delete confirmation page lists them first); history (operations, audit) never
// cascades away with the inventory it talks about.
// Ids are bigint (bigserial, read as numbers) where rows are made over and over, by the agents, the
// refresher, rules and the engine: instances (each agent report used to take a value of their
// sequence), operations and their targets, steps and waves, rule runs, the outbox, lag samples. An
// integer id runs out (2^31) within a year at fleet scale; what people make (environments, herds,
// servers, rules, users) keeps integer ids.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  real,
  serial,
  smallint,
  text,
  timestamp,
  unique,
  uniqueIndex,
  type AnyPgColumn,
} from 'drizzle-orm/pg-core';

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true })
    .notNull()
    .defaultNow()
    .$onUpdate(() => new Date()),
};

// rds: a herd RDS runs (its members are RDS DB instances, acted on through the RDS API only).
export const controlDriver = pgEnum('control_driver', ['pg_ctl', 'pg_ctlcluster', 'systemd', 'patroni', 'rds']);
export const automationMode = pgEnum('automation_mode', ['enabled', 'maintenance']);
export const instanceRole = pgEnum('instance_role', ['primary', 'replica', 'unknown']);
export const instanceState = pgEnum('instance_state', ['running', 'stopped', 'unreachable', 'fenced', 'needs_rebuild']);
export const dnsRecordType = pgEnum('dns_record_type', ['CNAME', 'A']);
export const dnsProvider = pgEnum('dns_provider', ['rfc2136', 'route53']);
export const dnsMatch = pgEnum('dns_match', ['instance', 'role']);
export const hookHost = pgEnum('hook_host', ['worker', 'database']);
export const backupTool = pgEnum('backup_tool', ['pgbackrest']);
export const backupRepoKind = pgEnum('backup_repo_kind', ['posix', 's3']);
export const backupType = pgEnum('backup_type', ['full', 'diff', 'incr']);
export const operationStatus = pgEnum('operation_status', [
  'planned',
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'interrupted',
  // An operation some of whose targets succeeded and some did not.
  'partial',
  // Confirmed by one person where an approval policy asks for another's (lib/features/operations/approvals.ts):
  // nothing queued, nothing held, until approved; then queued. Denied or expired, it ends so.
  'awaiting_approval',
  'denied',
  'expired',
  // Stopped at a safe point for an urgent operation on its herd (a spot evacuation, a DR failover),
  // its cleanups run: planned again when the herd is free (lib/engine/preempt.ts).
  'preempted',
]);
export const stepStatus = pgEnum('step_status', ['running', 'succeeded', 'failed', 'skipped']);
export const userSource = pgEnum('user_source', ['local', 'ldap']);
export const roleName = pgEnum('role_name', ['viewer', 'operator', 'admin']);
export const bindingSubject = pgEnum('binding_subject', ['user', 'group']);
export const tokenScope = pgEnum('token_scope', ['read', 'operate']);

/** What RDS says of a DB instance besides its class, zone and status (servers.cloud_details). */
export interface RdsDetails {
  engineVersion: string;
  allocatedStorageGiB: number;
  storageType: string;
  multiAz: boolean;
  parameterGroup: string;
  endpoint: string;
  sourceIdentifier: string | null;
  pendingClass: string | null;
  account: string;
  vpcId: string;
}

export const environments = pgTable(
  'environments',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    // At most this many operation targets running at once in the environment, over every operation and
    // worker (null: no cap). Enforced when a worker claims a target.
    maxRunning: integer('max_running'),
    // The parameter group every instance of the environment inherits (null: none); see parameterGroups.
    parameterGroupId: integer('parameter_group_id').references((): AnyPgColumn => parameterGroups.id, { onDelete: 'restrict' }),
    // The object set (roles, databases, extensions, access rules) every herd of the environment inherits; see objectSets.
    objectSetId: integer('object_set_id').references((): AnyPgColumn => objectSets.id, { onDelete: 'restrict' }),
    // The risks' thresholds where the environment sets its own (lib/fleet/risks/thresholds.ts): a key
    // left out takes the default; `ignore` lists kinds not judged there.
    riskThresholds: jsonb('risk_thresholds')
      .$type<Record<string, number | string[]>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    ...timestamps,
  },
  (t) => [uniqueIndex('environments_name_key').on(t.name)],
);

// A site (a data centre, an availability zone) as servers name it in their `site`, with its cap: at
// most this many operation targets running at once on its servers, over every operation and worker.
export const sites = pgTable(
  'sites',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    maxRunning: integer('max_running'),
    ...timestamps,
  },
  (t) => [uniqueIndex('sites_name_key').on(t.name)],
);

export const herds = pgTable(
  'herds',
  {
    id: serial('id').primaryKey(),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    defaultPort: integer('default_port').notNull().default(5432),
    defaultDataDirectory: text('default_data_directory').notNull().default(''),
    pgVersion: smallint('pg_version').notNull().default(15),
    controlDriver: controlDriver('control_driver').notNull().default('pg_ctl'),
    dnsName: text('dns_name').notNull().default(''),
    automation: automationMode('automation').notNull().default('enabled'),
    // Every member of a replication herd shares it (pg_control_system()); the agent matches on it.
    systemIdentifier: text('system_identifier'),
    // A resize's hooks (docs/actions.md, "Resize hooks"): absolute paths of executables on the worker's host or on
    // the database host, run before Postgres is stopped and after it streams again; empty: none.
    resizePreHook: text('resize_pre_hook').notNull().default(''),
    resizePostHook: text('resize_post_hook').notNull().default(''),
    hooksRunOn: hookHost('hooks_run_on').notNull().default('database'),
    hookTimeoutSeconds: integer('hook_timeout_seconds').notNull().default(300),
    // A herd whose control driver is patroni: Patroni's name of its cluster (patroni.yml's scope); its
    // members' REST addresses are on the instances (instances.patroni_url). Empty: not known yet.
    patroniScope: text('patroni_scope').notNull().default(''),
    // Patroni's view, as the worker last read it (lib/features/patroni/follow.ts), for the herds changelist: the
    // leader's member name (empty: nobody holds the key), maintenance mode, and why no member answered.
    patroniLeader: text('patroni_leader').notNull().default(''),
    // The leader's instance in pgherd's inventory (null: none matched); no foreign key, a reading.
    patroniLeaderInstanceId: bigint('patroni_leader_instance_id', { mode: 'number' }),
    patroniPaused: boolean('patroni_paused').notNull().default(false),
    patroniProblem: text('patroni_problem').notNull().default(''),
    patroniReadAt: timestamp('patroni_read_at', { withTimezone: true }),
    /** When the follower last observed every member because the inventory disagreed with Patroni (at most once in 15 s, whichever worker follows). */
    patroniReobservedAt: timestamp('patroni_reobserved_at', { withTimezone: true }),
    // Since when no member has answered as its primary, as pgherd last saw the herd (the refresher, or a
    // DR failover that stopped after its fence); null while one does. Set once (the herd.no_primary
    // event goes out with it), cleared when a primary is seen again (lib/fleet/no-primary.ts).
    noPrimarySince: timestamp('no_primary_since', { withTimezone: true }),
    // What was seen then, in words (the members, or the failover that stopped): for the health page.
    noPrimaryDetail: text('no_primary_detail').notNull().default(''),
    // A herd made by a point-in-time restore (lib/actions/backups/restore.action.ts): the herd it was restored
    // from, to what (in words: "latest", a time, an LSN, "before operation #N"), and when pgherd tears it down
    // (null: kept until someone deletes it). No foreign key: the source may go, the history stays.
    restoredFromHerdId: integer('restored_from_herd_id'),
    restoredTo: text('restored_to').notNull().default(''),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    // Since when a herd whose restore had been proven is no longer (its recoverability verdict left
    // "protected": a drill failed or grew old, the archive fails); null while it is protected, or was never.
    // Set once with its herd.restore_unverified event, cleared when it is protected again
    // (lib/features/backups/lapse.ts).
    restoreLapsedSince: timestamp('restore_lapsed_since', { withTimezone: true }),
    // The refresh's schedule, shared by every worker (lib/fleet/refresh-share.ts): when the herd's members
    // are next due to be observed, and which worker claimed them last. A claim moves the time on by one
    // interval, so that no two workers observe a herd in the same interval.
    observeDueAt: timestamp('observe_due_at', { withTimezone: true })
      .notNull()
      .default(sql`'-infinity'`),
    observedBy: text('observed_by'),
    // Its parameter group, in place of its environment's (null: the environment's), and settings of its
    // own over the group's: postgresql.conf lines, as lib/fleet/settings/conf-text.ts writes them.
    parameterGroupId: integer('parameter_group_id').references((): AnyPgColumn => parameterGroups.id, { onDelete: 'restrict' }),
    settingOverrides: text('setting_overrides').notNull().default(''),
    // Its object set, in place of its environment's, and lines of its own over it (lib/fleet/objects/declaration.ts).
    objectSetId: integer('object_set_id').references((): AnyPgColumn => objectSets.id, { onDelete: 'restrict' }),
    objectOverrides: text('object_overrides').notNull().default(''),
    // The passwords pgherd set on its rotated logins, for their drift: by login, a SHA-256 (hex) of the
    // verifier it set (never a password; lib/actions/objects/rotate-credentials.action.ts).
    passwordMarks: jsonb('password_marks').$type<Record<string, string>>().notNull().default({}),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('herds_environment_name_key').on(t.environmentId, t.name),
    // The herds due for observation, oldest first, found without reading the others.
    index('herds_observe_due_idx').on(t.observeDueAt),
    // The few herds with no primary, found without reading the others (the health page, the metric).
    index('herds_no_primary_idx')
      .on(t.noPrimarySince)
      .where(sql`no_primary_since IS NOT NULL`),
    uniqueIndex('herds_system_identifier_key').on(t.systemIdentifier),
    index('herds_name_idx').on(t.name),
    // The changelists' search ("name contains"): trigrams (pg_trgm) find a fragment without a scan.
    index('herds_name_trgm_idx').using('gin', t.name.op('gin_trgm_ops')),
  ],
);

export const servers = pgTable(
  'servers',
  {
    id: serial('id').primaryKey(),
    hostname: text('hostname').notNull(),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    // Where pgherd connects to (an IP or a resolvable name); the hostname is the server's identity.
    address: text('address').notNull().default(''),
    site: text('site').notNull().default(''),
    sshPort: integer('ssh_port').notNull().default(22),
    sshUser: text('ssh_user').notNull().default('postgres'),
    sshHostKeyFingerprint: text('ssh_host_key_fingerprint'),
    cloudProvider: text('cloud_provider'),
    cloudRegion: text('cloud_region'),
    cloudInstanceId: text('cloud_instance_id'),
    cloudInstanceType: text('cloud_instance_type'),
    // The rest of the server's cloud identity, as EC2 discovery last saw it.
    cloudAvailabilityZone: text('cloud_availability_zone'),
    cloudArchitecture: text('cloud_architecture'),
    /** EC2's state: pending, running, stopping, stopped, shutting-down, terminated; `gone` when EC2 no longer lists it. */
    cloudState: text('cloud_state'),
    cloudPrivateAddress: text('cloud_private_address'),
    /** The instance's tags, as discovery read them (environment, herd and site as tagged, for the health panel). */
    cloudTags: jsonb('cloud_tags').$type<Record<string, string>>(),
    /** The herd its tags name (discovery's `map.herd` tag), compared with the agents' by the health panel. */
    cloudHerdTag: text('cloud_herd_tag'),
    cloudSeenAt: timestamp('cloud_seen_at', { withTimezone: true }),
    /**
     * An RDS DB instance's facts as RDS discovery last read them (cloud_provider 'rds': the server is the DB
     * instance, its instance id the identifier, its type the class): engine version, storage, Multi-AZ,
     * parameter group, the endpoint, the source it replicates from, a class RDS has pending.
     */
    cloudDetails: jsonb('cloud_details').$type<RdsDetails>(),
    /** When discovery found the instance terminated or no longer listed: marked, never deleted. */
    cloudGoneAt: timestamp('cloud_gone_at', { withTimezone: true }),
    /**
     * 'pending': created by EC2 discovery in an environment whose PGHERD_AWS_ENVIRONMENTS entry asks for
     * approval; every action is refused on it until an admin sets 'approved'. Null: none was asked for.
     */
    approval: text('approval'),
    agentTokenHash: text('agent_token_hash'),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    // Seconds between the agent's reports, as its last report said (0: unknown, e.g. run by hand).
    // Silence is counted in these intervals.
    agentIntervalSeconds: integer('agent_interval_seconds').notNull().default(0),
    // The host's 1-minute load average, as its agent's last report said (null: not reported), and when.
    loadAverage: real('load_average'),
    loadAverageAt: timestamp('load_average_at', { withTimezone: true }),
    // The host's memory and cores, as its agent reports them (null: never reported): what a parameter
    // group's formulas ({memory_mb / 4}MB) are computed from.
    memoryMb: integer('memory_mb'),
    cpus: integer('cpus'),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('servers_hostname_key').on(t.hostname),
    index('servers_hostname_trgm_idx').using('gin', t.hostname.op('gin_trgm_ops')),
    // The agent ingest: a report's token names its server, a replica's upstream is found by address.
    uniqueIndex('servers_agent_token_hash_key').on(t.agentTokenHash),
    index('servers_address_idx').on(t.address),
    index('servers_environment_idx').on(t.environmentId),
    index('servers_site_idx').on(t.site),
    // Discovery finds a server by its cloud instance, which is one server's.
    uniqueIndex('servers_cloud_instance_key').on(t.cloudProvider, t.cloudInstanceId),
  ],
);

export const instances = pgTable(
  'instances',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    herdId: integer('herd_id')
      .notNull()
      .references(() => herds.id, { onDelete: 'cascade' }),
    serverId: integer('server_id')
      .notNull()
      .references(() => servers.id, { onDelete: 'cascade' }),
    port: integer('port').notNull(),
    dataDirectory: text('data_directory').notNull().default(''),
    pgVersion: smallint('pg_version').notNull().default(15),
    // The full version it answered with last (server_version_num: 150018 is 15.18); null: never observed.
    serverVersionNum: integer('server_version_num'),
    // The Postgres build it runs from (the bin directory of its pg_ctl and postgres): a minor upgrade
    // moves it to another build on the host. Empty: the environment's template for its major
    // (PGHERD_PG_BIN_TEMPLATE).
    binDir: text('bin_dir').notNull().default(''),
    role: instanceRole('role').notNull().default('unknown'),
    // What the instance itself said last (pg_is_in_recovery), written only by observations and by the
    // steps that change it; an admin's edit of `role` leaves it. Power on trusts only this: a host
    // whose Postgres last answered as a primary may boot as one, whatever the inventory was edited to.
    observedRole: instanceRole('observed_role'),
    upstreamInstanceId: bigint('upstream_instance_id', { mode: 'number' }).references((): AnyPgColumn => instances.id, {
      onDelete: 'set null',
    }),
    state: instanceState('state').notNull().default('stopped'),
    timeline: integer('timeline'),
    lsn: bigint('lsn', { mode: 'number' }),
    lagBytes: bigint('lag_bytes', { mode: 'number' }),
    lagSeconds: real('lag_seconds'),
    pendingRestart: boolean('pending_restart').notNull().default(false),
    lastObservedAt: timestamp('last_observed_at', { withTimezone: true }),
    // When it last answered (an observation that reached it, or its agent's report): how long a member has
    // been silent, for auto-replace. A member that flaps (up a moment every 20 s) keeps it fresh.
    answeredAt: timestamp('answered_at', { withTimezone: true }),
    // WAL archiving as a primary last reported it (pg_stat_archiver); null on replicas and before the
    // first observation. archivePendingSince: since when WAL written has waited for the archive (its
    // age is the measured RPO; null: nothing waits).
    archivedCount: bigint('archived_count', { mode: 'number' }),
    lastArchivedWal: text('last_archived_wal'),
    lastArchivedAt: timestamp('last_archived_at', { withTimezone: true }),
    archiveFailedCount: bigint('archive_failed_count', { mode: 'number' }),
    lastArchiveFailedWal: text('last_archive_failed_wal'),
    lastArchiveFailedAt: timestamp('last_archive_failed_at', { withTimezone: true }),
    archivePendingSince: timestamp('archive_pending_since', { withTimezone: true }),
    // Its Patroni's REST address (https://host:8008) when its herd's control driver is patroni; empty: none.
    patroniUrl: text('patroni_url').notNull().default(''),
    // What its agent reports of the Patroni running it (REST address and scope), until an admin accepts
    // it (acceptPatroniProposal): a report never sets the address or the herd's driver itself.
    // Empty: nothing proposed.
    patroniProposedUrl: text('patroni_proposed_url').notNull().default(''),
    patroniProposedScope: text('patroni_proposed_scope').notNull().default(''),
    // Copies of its herd's environment and its server's site, kept by the database (a trigger sets them
    // on every insert and move, and follows a herd or server that moves): what the changelists filter
    // on without a join, and the cell of instance_counts the instance is counted in. Never written by
    // the application; the defaults only satisfy NOT NULL until the trigger runs.
    environmentId: integer('environment_id').notNull().default(0),
    site: text('site').notNull().default(''),
    // Likewise its server's EC2 instance type and availability zone ('' off the cloud).
    instanceType: text('instance_type').notNull().default(''),
    zone: text('zone').notNull().default(''),
    // Its parameter group, over its herd's (null: the herd's).
    parameterGroupId: integer('parameter_group_id').references((): AnyPgColumn => parameterGroups.id, { onDelete: 'restrict' }),
    // When it last loaded its configuration (pg_conf_load_time(): every reload and start moves it), as the
    // refresh read it: a time other than the one its settings were read at says they may have changed.
    confLoadedAt: timestamp('conf_loaded_at', { withTimezone: true }),
    // Its settings as last read (lib/fleet/settings/read-settings.ts): the snapshot, the load time it was
    // read at, and how many of the settings its group says differ from what runs (null: no group, or not
    // read yet), since when, and the digest of what the group said then (a group edited is judged again).
    settingsSnapshotId: bigint('settings_snapshot_id', { mode: 'number' }),
    settingsLoadedAt: timestamp('settings_loaded_at', { withTimezone: true }),
    settingsDrift: integer('settings_drift'),
    settingsDriftSince: timestamp('settings_drift_since', { withTimezone: true }),
    settingsWantedDigest: text('settings_wanted_digest'),
    // A primary's roles, memberships and databases as a digest, read by every refresh (cheap): when it
    // moves, the objects pass reads them whole (object_readings). The differences from what is declared,
    // since when, and the key of what they were judged from (lib/fleet/objects/objects-pass.ts).
    objectsFingerprint: text('objects_fingerprint'),
    objectsDrift: integer('objects_drift'),
    objectsDriftSince: timestamp('objects_drift_since', { withTimezone: true }),
    objectsJudgedKey: text('objects_judged_key'),
    // The changelist's facet, and the cell of instance_counts it is counted in.
    settingsStatus: text('settings_status')
      .notNull()
      .generatedAlwaysAs(sql`CASE WHEN settings_drift > 0 THEN 'drifted' WHEN settings_drift = 0 THEN 'in line' ELSE 'no group' END`),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('instances_server_port_key').on(t.serverId, t.port),
    // An address, nothing else (no path, query or credentials in it): pgherd adds the endpoint's path.
    check('instances_bin_dir_check', sql`bin_dir = '' OR bin_dir ~ '^/[^\\n]*$'`),
    check('instances_patroni_url_check', sql`patroni_url = '' OR patroni_url ~ '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$'`),
    index('instances_instance_type_idx').on(t.instanceType),
    index('instances_zone_idx').on(t.zone),
    // An environment's instances, and its worst lag first (both ways: its last page reads backwards).
    index('instances_environment_lag_idx').on(t.environmentId, t.lagBytes.desc().nullsLast(), t.id),
    index('instances_site_idx').on(t.site),
    index('instances_herd_idx').on(t.herdId),
    index('instances_role_idx').on(t.role),
    index('instances_state_idx').on(t.state),
    index('instances_version_idx').on(t.pgVersion),
    // The changelist's "lag, descending" (empty last, the id breaking ties) read in index order, and
    // its last pages read backwards.
    index('instances_lag_idx').on(t.lagBytes.desc().nullsLast(), t.id),
    index('instances_upstream_idx').on(t.upstreamInstanceId),
    // The instances not observed for two refresh intervals (fleet health, the metric), oldest first:
    // never observed counts from when the row was made.
    index('instances_observed_idx').on(sql`coalesce(${t.lastObservedAt}, ${t.createdAt})`),
    // The drifted instances (fleet health, the metric): the few, never a walk over the fleet.
    index('instances_drifted_idx')
      .on(t.settingsDriftSince)
      .where(sql`${t.settingsDrift} > 0`),
    // A herd's running primaries (one, or a split brain): the agent ingest's lag, fleet health.
    index('instances_running_primary_idx')
      .on(t.herdId)
      .where(sql`role = 'primary' AND state = 'running'`),
  ],
);

// The Postgres builds installed on a server, as its agent reported them last: a build is a bin directory
// (where pg_ctl and postgres are) and the full version its postgres says it is. A report replaces the
// server's rows; what upgrades may move an instance to.
export const postgresBuilds = pgTable(
  'postgres_builds',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    serverId: integer('server_id')
      .notNull()
      .references(() => servers.id, { onDelete: 'cascade' }),
    binDir: text('bin_dir').notNull(),
    // 150018 for 15.18, as server_version_num says it; the major is versionNum / 10000.
    versionNum: integer('version_num').notNull(),
    // What `postgres --version` printed (the packager's words included).
    versionText: text('version_text').notNull(),
    // The extensions it ships, name: default_version (its share directory's control files).
    extensions: jsonb('extensions').$type<Record<string, string>>().notNull().default({}),
    reportedAt: timestamp('reported_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('postgres_builds_server_dir_key').on(t.serverId, t.binDir),
    index('postgres_builds_version_idx').on(t.versionNum),
    check('postgres_builds_bin_dir_check', sql`bin_dir ~ '^/[^\\n]*$'`),
  ],
);

// A major upgrade by blue/green: the herd as it runs (blue), the new herd on the target major (green)
// fed by logical replication from blue's primary, and where it stands. One open upgrade a herd.
// building: green is being laid down and copied; ready: green is current, cut over when asked;
// cut-over: green takes the writes, blue stays current through a reverse subscription (the way back);
// cleaned: the side not kept was taken away; failed: green could not be built (nothing of it is kept).
export const majorUpgrades = pgTable(
  'major_upgrades',
  {
    id: serial('id').primaryKey(),
    // Null once the side that was cleaned up is out of the inventory (the record stays).
    blueHerdId: integer('blue_herd_id').references(() => herds.id, { onDelete: 'set null' }),
    greenHerdId: integer('green_herd_id').references(() => herds.id, { onDelete: 'set null' }),
    toVersionNum: integer('to_version_num').notNull(),
    // The databases replicated (each has its publication on one side and subscription on the other).
    databases: text('databases').array().notNull(),
    status: text('status').notNull().default('building'),
    sequenceGap: integer('sequence_gap').notNull().default(1000),
    operationId: bigint('operation_id', { mode: 'number' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    readyAt: timestamp('ready_at', { withTimezone: true }),
    cutOverAt: timestamp('cut_over_at', { withTimezone: true }),
    rolledBackAt: timestamp('rolled_back_at', { withTimezone: true }),
    cleanedAt: timestamp('cleaned_at', { withTimezone: true }),
  },
  (t) => [
    check('major_upgrades_status_check', sql`status IN ('building', 'ready', 'cut-over', 'cleaned', 'failed')`),
    uniqueIndex('major_upgrades_open_key')
      .on(t.blueHerdId)
      .where(sql`status IN ('building', 'ready', 'cut-over')`),
    index('major_upgrades_green_idx').on(t.greenHerdId),
  ],
);

// The instances counted by environment, role, state, version, site, instance type and zone: what the changelist's total
// and facet counts read instead of scanning 100,000 instances. A journal: triggers on instances add
// a row for every change of a cell (+n, -n; never an UPDATE, so writers never wait on each other),
// and pgherd_compact_instance_counts() folds it to one row a cell. The sum of n over any cells is
// exact at every snapshot.
export const instanceCounts = pgTable('instance_counts', {
  environmentId: integer('environment_id').notNull(),
  role: instanceRole('role').notNull(),
  state: instanceState('state').notNull(),
  pgVersion: smallint('pg_version').notNull(),
  site: text('site').notNull(),
  instanceType: text('instance_type').notNull(),
  zone: text('zone').notNull(),
  settingsStatus: text('settings_status').notNull().default('no group'),
  n: integer('n').notNull(),
});

export const dnsRecords = pgTable(
  'dns_records',
  {
    id: serial('id').primaryKey(),
    herdId: integer('herd_id')
      .notNull()
      .references(() => herds.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    type: dnsRecordType('type').notNull().default('CNAME'),
    zone: text('zone').notNull(),
    provider: dnsProvider('provider').notNull().default('rfc2136'),
    ttl: integer('ttl').notNull().default(60),
    match: dnsMatch('match').notNull().default('role'),
    matchRole: instanceRole('match_role').default('primary'),
    matchInstanceId: bigint('match_instance_id', { mode: 'number' }).references(() => instances.id, { onDelete: 'set null' }),
    // What the zone's server answered when pgherd last asked (the worker's refresher), and whether that
    // was not what the members say it should be: the herds changelist's DNS drift flag. Null: not asked yet.
    lastAnswer: text('last_answer').array(),
    drifted: boolean('drifted'),
    lastCheckedAt: timestamp('last_checked_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [uniqueIndex('dns_records_name_type_key').on(t.name, t.type), index('dns_records_herd_idx').on(t.herdId)],
);

// A PgBouncer in front of a herd: switchover pauses it, points its database entries at the new
// primary (its configuration file, edited over SSH on its server, then RELOAD) and resumes it.
export const poolers = pgTable(
  'poolers',
  {
    id: serial('id').primaryKey(),
    herdId: integer('herd_id')
      .notNull()
      .references(() => herds.id, { onDelete: 'cascade' }),
    // The server it runs on: reached over SSH like the database servers (same pinned host key).
    serverId: integer('server_id')
      .notNull()
      .references(() => servers.id, { onDelete: 'cascade' }),
    port: integer('port').notNull().default(6432),
    adminUser: text('admin_user').notNull().default('pgbouncer'),
    configFile: text('config_file').notNull().default('/etc/pgbouncer/pgbouncer.ini'),
    // The [databases] entries that point at the herd's primary.
    databases: text('databases').array().notNull(),
    ...timestamps,
  },
  (t) => [uniqueIndex('poolers_server_port_key').on(t.serverId, t.port), index('poolers_herd_idx').on(t.herdId)],
);

export const users = pgTable(
  'users',
  {
    id: serial('id').primaryKey(),
    username: text('username').notNull(),
    displayName: text('display_name').notNull().default(''),
    email: text('email').notNull().default(''),
    source: userSource('source').notNull().default('local'),
    // scrypt$N$r$p$salt$hash (lib/features/auth/password.ts); null for directory users.
    passwordHash: text('password_hash'),
    isActive: boolean('is_active').notNull().default(true),
    isSuperuser: boolean('is_superuser').notNull().default(false),
    // Directory users: their DN and group DNs as of their last sign-in (role bindings name groups).
    ldapDn: text('ldap_dn'),
    groups: text('groups')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    lastLoginAt: timestamp('last_login_at', { withTimezone: true }),
    ...timestamps,
  },
  (t) => [uniqueIndex('users_username_key').on(t.username)],
);

export const roleBindings = pgTable(
  'role_bindings',
  {
    id: serial('id').primaryKey(),
    role: roleName('role').notNull(),
    subjectType: bindingSubject('subject_type').notNull(),
    // A username, or an LDAP group's DN.
    subject: text('subject').notNull(),
    // Null: the binding holds in every environment.
    environmentId: integer('environment_id').references(() => environments.id, { onDelete: 'cascade' }),
    createdAt: timestamps.createdAt,
  },
  (t) => [unique('role_bindings_key').on(t.subjectType, t.subject, t.role, t.environmentId).nullsNotDistinct()],
);

export const operations = pgTable(
  'operations',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    action: text('action').notNull(),
    // What it was asked to run on: { instanceIds } or { herdIds }, as listed (thousands of ids for a
    // large operation: stored compressed out of line, so nothing read per target belongs here).
    params: jsonb('params')
      .notNull()
      .default(sql`'{}'::jsonb`),
    // The action's parameters, as confirmed: every target's claim reads them.
    actionParams: jsonb('action_params')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    status: operationStatus('status').notNull().default('planned'),
    planDigest: text('plan_digest').notNull(),
    requestedBy: integer('requested_by').references(() => users.id, { onDelete: 'set null' }),
    requestedByName: text('requested_by_name').notNull(),
    // Requested by pgherd itself (seeding, tests, later rules): no user's roles to check when it runs.
    // A user's operation whose user is gone (requested_by set null) is not one: it is refused at execution.
    requestedBySystem: boolean('requested_by_system').notNull().default(false),
    confirmation: text('confirmation').notNull().default(''),
    // From the confirmation page: a second submit of the same page finds this and enqueues nothing.
    idempotencyKey: text('idempotency_key'),
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    // Rolling operations (lib/engine/waves.ts): the waves as confirmed (size, gate, failure budget), null
    // for an operation that starts every target at once; the wave now running or soaking.
    waves: jsonb('waves'),
    currentWave: integer('current_wave').notNull().default(1),
    // Paused (by a person, a failure budget or a health gate): no new target starts until resumed.
    pausedAt: timestamp('paused_at', { withTimezone: true }),
    pausedReason: text('paused_reason'),
    // Members of the herds it touches that were stopped, fenced or to be rebuilt when it was confirmed:
    // its health gate does not wait for them to answer.
    gateExcused: bigint('gate_excused', { mode: 'number' })
      .array()
      .notNull()
      .default(sql`'{}'::bigint[]`),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    // The rule whose run made it (null: a person or the API made it).
    ruleId: integer('rule_id').references((): AnyPgColumn => rules.id, { onDelete: 'set null' }),
    // Made by a rule marked insideWindow: its next wave starts only inside its herds' maintenance windows.
    windowBound: boolean('window_bound').notNull().default(false),
    // Approval (lib/features/operations/approvals.ts). How many people other than the requester must approve it (null:
    // none was asked for); until when; the environments of its targets (what access to it is judged on
    // while it has no targets); what writing it needs once approved (waves, retry); how it ended short of
    // running (a denial's or the plan's change, in words); an admin's reason for running it unapproved.
    approvalsRequired: integer('approvals_required'),
    approvalExpiresAt: timestamp('approval_expires_at', { withTimezone: true }),
    environmentIds: integer('environment_ids').array(),
    pending: jsonb('pending').$type<{ waves: unknown; retryOf: number | null; typed?: boolean }>(),
    endedReason: text('ended_reason'),
    breakGlassReason: text('break_glass_reason'),
    ...timestamps,
  },
  (t) => [
    index('operations_status_idx').on(t.status),
    index('operations_rule_idx')
      .on(t.ruleId, t.id)
      .where(sql`rule_id IS NOT NULL`),
    // One unfinished operation per rule: two fires deciding at once cannot both start one (overlap).
    uniqueIndex('operations_rule_open_key')
      .on(t.ruleId)
      .where(sql`rule_id IS NOT NULL AND finished_at IS NULL`),
    index('operations_created_idx').on(t.createdAt),
    // A key answers only its own user's operation (another user's key is just a new key for them).
    uniqueIndex('operations_user_idempotency_key').on(t.requestedByName, t.idempotencyKey),
    // What waits for approval: the expiry chore's and the approvers' list.
    index('operations_awaiting_idx')
      .on(t.approvalExpiresAt)
      .where(sql`approvals_required IS NOT NULL AND finished_at IS NULL`),
    // The wave conductor's round: rolling operations not finished yet.
    index('operations_rolling_idx')
      .on(t.id)
      .where(sql`finished_at IS NULL AND waves IS NOT NULL`),
  ],
);

// Two people for production (lib/features/operations/approvals.ts, docs/approvals.md): in an environment, which actions
// need how many approvals before they run, from whom, for how long. Global admins edit them; whoever
// has a role in the environment reads them. Several in one environment add up: the most approvals asked,
// every one's approvers, the shortest time, break glass forbidden where any forbids it.
export const approvalPolicies = pgTable(
  'approval_policies',
  {
    id: serial('id').primaryKey(),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    // The actions it covers, by name; and every action whose confirmation asks for something typed.
    actions: text('actions')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    typedConfirmation: boolean('typed_confirmation').notNull().default(false),
    approvalsRequired: integer('approvals_required').notNull().default(1),
    // Who may approve: this role at least in every environment of the plan's targets, or (when set) a
    // member of this directory group who may see them all.
    approverRole: roleName('approver_role').notNull().default('operator'),
    approverGroup: text('approver_group'),
    ttlSeconds: integer('ttl_seconds').notNull().default(3600),
    // Never by default: a person's second token or second session is the same person.
    requesterMayApprove: boolean('requester_may_approve').notNull().default(false),
    // Actions an admin may not run unapproved here (break glass), by name.
    breakGlassForbidden: text('break_glass_forbidden')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    ...timestamps,
  },
  (t) => [
    index('approval_policies_environment_idx').on(t.environmentId),
    check('approval_policies_required_check', sql`${t.approvalsRequired} BETWEEN 1 AND 5`),
    check('approval_policies_ttl_check', sql`${t.ttlSeconds} BETWEEN 60 AND 604800`),
    check('approval_policies_role_check', sql`${t.approverRole} <> 'viewer'`),
  ],
);

// Each person's decision on an operation awaiting approval: the digest they approved, how they did it.
export const operationApprovals = pgTable(
  'operation_approvals',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    operationId: bigint('operation_id', { mode: 'number' })
      .notNull()
      .references(() => operations.id, { onDelete: 'cascade' }),
    userId: integer('user_id').references(() => users.id, { onDelete: 'set null' }),
    username: text('username').notNull(),
    decision: text('decision', { enum: ['approved', 'denied'] }).notNull(),
    comment: text('comment').notNull().default(''),
    digest: text('digest').notNull(),
    via: text('via', { enum: ['console', 'api', 'link'] }).notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // One decision a person: a second session or token of theirs is the same person.
    uniqueIndex('operation_approvals_person_key').on(t.operationId, sql`lower(${t.username})`),
    check('operation_approvals_decision_check', sql`${t.decision} IN ('approved', 'denied')`),
  ],
);

// The signed links an approval.requested webhook carries (lib/features/operations/approval-links.ts):
// each one's nonce once used, so a link works once; and the key that signs them (made at first use, never
// shown, read by the workers that sign and the consoles that check).
export const approvalLinkUses = pgTable('approval_link_uses', {
  nonce: text('nonce').primaryKey(),
  operationId: bigint('operation_id', { mode: 'number' })
    .notNull()
    .references(() => operations.id, { onDelete: 'cascade' }),
  usedBy: text('used_by').notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }).notNull().defaultNow(),
});

export const signingKeys = pgTable('signing_keys', {
  name: text('name').primaryKey(),
  key: text('key').notNull(),
  createdAt: timestamps.createdAt,
});

// At most one mutating operation per herd at a time. A lease whose heartbeat stops expires.
export const herdLeases = pgTable(
  'herd_leases',
  {
    herdId: integer('herd_id')
      .primaryKey()
      .references(() => herds.id, { onDelete: 'cascade' }),
    targetId: bigint('target_id', { mode: 'number' })
      .notNull()
      .references(() => operationTargets.id, { onDelete: 'cascade' }),
    holder: text('holder').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    // The fencing token: every grant takes a new one. A worker checks, before each step, that the
    // lease is still its own grant and unexpired; one that lost it (paused, cut off) stops there.
    generation: bigserial('generation', { mode: 'number' }).notNull(),
  },
  // A target ends by giving back its lease (by target): an index probe, not a walk over the leases'
  // churned pages.
  (t) => [index('herd_leases_target_idx').on(t.targetId)],
);

// The consoles' readiness probe (GET /readyz): one row, written on every probe, because only a commit
// that waited for the synchronous standby says that pgherd's database takes writes now.
export const readinessProbe = pgTable('readiness_probe', {
  id: smallint('id').primaryKey(),
  at: timestamp('at', { withTimezone: true }).notNull(),
});

// A chore that must run on one worker at a time (the settings pass, Patroni's leaders followed, the
// wave conductor...): whose turn it is, until when, and the turn's generation (its fencing token). A
// worker takes the turn when it is free or expired, renews it while the chore runs, and confirms the
// generation in the same transaction as each write that acts (an operation started, an event raised):
// one frozen past its turn (SIGSTOP, a paused host) and thawed is refused there (takeTurn and its generation).
export const choreTurns = pgTable('chore_turns', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  generation: bigint('generation', { mode: 'number' }).notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
});

// A fleet instance's databases whose door a major upgrade's switch closed to application clients
// (CONNECTION LIMIT 0: superusers and background workers, pgherd and the subscriptions, still get in),
// with the limit each had before, given back when the side takes writes again (lib/actions/steps/door.ts).
export const instanceDoors = pgTable(
  'instance_doors',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    instanceId: bigint('instance_id', { mode: 'number' })
      .notNull()
      .references(() => instances.id, { onDelete: 'cascade' }),
    datname: text('datname').notNull(),
    earlierLimit: integer('earlier_limit').notNull(),
    closedAt: timestamp('closed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // An id of its own: the admin's delete collector follows references to rows by a one-column key.
  (t) => [uniqueIndex('instance_doors_instance_datname_key').on(t.instanceId, t.datname)],
);

// What a target took away from clients and owes them back (a PgBouncer it paused), written before it is
// taken: the target's own cleanup settles it; one the target could not settle (its worker killed, its
// lease lost, the pooler away) is settled by the next worker's reconcile once no one holds the herd,
// and shown on the herd and the operation until it is.
export const owedCleanups = pgTable(
  'owed_cleanups',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    targetId: bigint('target_id', { mode: 'number' })
      .notNull()
      .references(() => operationTargets.id, { onDelete: 'cascade' }),
    herdId: integer('herd_id')
      .notNull()
      .references(() => herds.id, { onDelete: 'cascade' }),
    poolerId: integer('pooler_id').references(() => poolers.id, { onDelete: 'cascade' }),
    // pooler-resume: a PgBouncer paused; writes-fence: an instance a major upgrade's switch made
    // read-only (default_transaction_read_only), owed back unless the switch went through.
    kind: text('kind').$type<'pooler-resume' | 'writes-fence'>().notNull(),
    instanceId: bigint('instance_id', { mode: 'number' }).references(() => instances.id, { onDelete: 'cascade' }),
    upgradeId: integer('upgrade_id').references(() => majorUpgrades.id, { onDelete: 'cascade' }),
    // What it owes, in words (for the pages), and the entries it paused.
    says: text('says').notNull(),
    databases: text('databases').array().notNull(),
    // The resume armed on the pooler's host (lib/actions/steps/pooler-resume.ts): found and disarmed by this.
    resumeToken: text('resume_token').notNull(),
    // When the armed resume fires at the latest.
    dueBy: timestamp('due_by', { withTimezone: true }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    // A worker's reconcile settling it holds it until then (two workers never resume one pooler at once).
    claimedUntil: timestamp('claimed_until', { withTimezone: true }),
    lastError: text('last_error'),
    settledAt: timestamp('settled_at', { withTimezone: true }),
    settledHow: text('settled_how'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('owed_cleanups_open_idx')
      .on(t.herdId)
      .where(sql`settled_at IS NULL`),
    index('owed_cleanups_target_idx').on(t.targetId),
  ],
);

// An agent report that named the system identifier of a herd in another environment than the reporting
// server's: held here, never merged into that herd (a staging host must not add members to a production
// herd); shown on the fleet health panel and audited when first seen.
export const agentConflicts = pgTable(
  'agent_conflicts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    serverId: integer('server_id')
      .notNull()
      .references(() => servers.id, { onDelete: 'cascade' }),
    port: integer('port').notNull(),
    systemIdentifier: text('system_identifier').notNull(),
    herdId: integer('herd_id')
      .notNull()
      .references(() => herds.id, { onDelete: 'cascade' }),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('agent_conflicts_key').on(t.serverId, t.port, t.systemIdentifier), index('agent_conflicts_herd_idx').on(t.herdId)],
);

// The worker processes, as they last said they were alive: the console shows when none is (a running
// operation that nothing runs), and which one holds a target.
export const workers = pgTable(
  'workers',
  {
    holder: text('holder').primaryKey(),
    hostname: text('hostname').notNull(),
    pid: integer('pid').notNull(),
    concurrency: integer('concurrency').notNull(),
    // Its PGHERD_REFRESH_INTERVAL_MS (0: it does not refresh): workers that disagree share the refresh
    // at the slower one's pace, which the console says.
    refreshIntervalMs: integer('refresh_interval_ms').notNull().default(0),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
    stoppedAt: timestamp('stopped_at', { withTimezone: true }),
  },
  (t) => [index('workers_last_seen_idx').on(t.lastSeenAt)],
);

export const operationTargets = pgTable(
  'operation_targets',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    operationId: bigint('operation_id', { mode: 'number' })
      .notNull()
      .references(() => operations.id, { onDelete: 'cascade' }),
    // The inventory may go away; the target keeps its label so the history still reads.
    instanceId: bigint('instance_id', { mode: 'number' }).references(() => instances.id, { onDelete: 'set null' }),
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'set null' }),
    label: text('label').notNull(),
    status: operationStatus('status').notNull().default('queued'),
    error: text('error'),
    // Set when the target was refused (at planning, at execution, or by a step before it changed
    // anything): the refusal's code (lib/fleet/refusal.ts). A refused target is not retried.
    refusal: text('refusal'),
    // What the target came to, in one line, when the action says (a failover: the new primary and the possible data loss).
    outcome: text('outcome'),
    attempts: integer('attempts').notNull().default(0),
    // The steps the user confirmed for it, for an action that runs only what was confirmed
    // (runsAsConfirmed): what each does (a kind and its arguments) and its words; its first attempt is
    // refused when its plan does otherwise by the time it starts. Rows written before steps carried
    // what they do hold the words only.
    confirmedSteps: jsonb('confirmed_steps').$type<({ says: string; does: { kind: string; [arg: string]: unknown } } | string)[]>(),
    // The wave it runs in (1 when the operation has no waves), and whether it is held back: queued but
    // not to be claimed until its wave starts (or its paused operation resumes).
    wave: integer('wave').notNull().default(1),
    held: boolean('held').notNull().default(false),
    // The site of the server it acts on (a herd action: the primary's), for the sites' caps.
    site: text('site').notNull().default(''),
    // An urgent action's target (a spot evacuation, a DR failover): it goes before the herd's queued
    // targets and asks the one holding the herd to stop at its next safe point (lib/engine/preempt.ts).
    urgent: boolean('urgent').notNull().default(false),
    // The urgent target that asked this one to stop: its steps stop at the next safe point and it ends preempted.
    preemptedBy: bigint('preempted_by', { mode: 'number' }).references((): AnyPgColumn => operationTargets.id, { onDelete: 'set null' }),
    ...timestamps,
  },
  (t) => [
    index('operation_targets_operation_idx').on(t.operationId, t.wave),
    // The caps count the targets running per site (and per environment, through the herd).
    index('operation_targets_running_site_idx')
      .on(t.site)
      .where(sql`status = 'running'`),
    index('operation_targets_instance_idx').on(t.instanceId),
    index('operation_targets_herd_idx').on(t.herdId),
    // No index on status alone: every lookup by status is of the open or the running targets, which the
    // partial indexes below answer, and each target changes status twice (a plain index on it was two
    // more entries to write a target, for an index of all the history).
    // The engine's hot paths: "is an earlier target of this herd still open?" (the lease) and "is any
    // target of this operation (of this wave) still open?" (settling it) stay index probes however long
    // the history. The second is asked in this index's full order, which operation_targets_operation_idx
    // cannot give: the planner has only this index to read it by (see migration 0022).
    index('operation_targets_open_herd_idx')
      .on(t.herdId, t.id)
      .where(sql`status IN ('queued', 'running')`),
    index('operation_targets_open_operation_idx')
      .on(t.operationId, t.wave, t.id)
      .where(sql`status IN ('queued', 'running')`),
    // "Is an urgent target of this herd waiting?", asked by every claim: an entry only while one queues.
    index('operation_targets_urgent_herd_idx')
      .on(t.herdId)
      .where(sql`urgent AND status = 'queued'`),
  ],
);

export const operationSteps = pgTable(
  'operation_steps',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    targetId: bigint('target_id', { mode: 'number' })
      .notNull()
      .references(() => operationTargets.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    name: text('name').notNull(),
    command: text('command').notNull().default(''),
    status: stepStatus('status').notNull().default('running'),
    exitCode: integer('exit_code'),
    stdoutTail: text('stdout_tail').notNull().default(''),
    stderrTail: text('stderr_tail').notNull().default(''),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('operation_steps_target_seq_key').on(t.targetId, t.seq)],
);

// The waves of a rolling operation and the state of each: pending, running (its targets are), soaking
// (its targets ended; the health gate is being watched), passed, held (its gate did not pass in time,
// or the operation was paused while it soaked), ended (the operation settled with it: the last
// wave, which has no gate after it, or one an abort stopped), or skipped (it never started: the
// operation ended first).
export const operationWaves = pgTable(
  'operation_waves',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    operationId: bigint('operation_id', { mode: 'number' })
      .notNull()
      .references(() => operations.id, { onDelete: 'cascade' }),
    wave: integer('wave').notNull(),
    targets: integer('targets').notNull(),
    status: text('status', { enum: ['pending', 'running', 'soaking', 'passed', 'held', 'ended', 'skipped'] })
      .notNull()
      .default('pending'),
    startedAt: timestamp('started_at', { withTimezone: true }),
    // When its last target ended, and when the current stretch of healthy samples began.
    endedAt: timestamp('ended_at', { withTimezone: true }),
    soakFrom: timestamp('soak_from', { withTimezone: true }),
    // When the gate was last read: healthy time is only what readings saw, so a gap between two
    // (no conductor for a while) starts the soak again.
    lastReadingAt: timestamp('last_reading_at', { withTimezone: true }),
    passedAt: timestamp('passed_at', { withTimezone: true }),
    // The gate's last reading in words ("orders: db-3 replay paused").
    gateNote: text('gate_note'),
    updatedAt: timestamps.updatedAt,
  },
  (t) => [uniqueIndex('operation_waves_key').on(t.operationId, t.wave)],
);

// No foreign keys on purpose: the audit log outlives the objects and users it names.
export const auditEntries = pgTable(
  'audit_entries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    userId: integer('user_id'),
    username: text('username').notNull(),
    remoteAddr: text('remote_addr').notNull().default(''),
    action: text('action').notNull(),
    objectType: text('object_type').notNull(),
    objectId: text('object_id').notNull().default(''),
    objectLabel: text('object_label').notNull().default(''),
    environmentId: integer('environment_id'),
    changes: jsonb('changes')
      .$type<Record<string, [unknown, unknown]>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
  },
  (t) => [
    index('audit_object_idx').on(t.objectType, t.objectId, t.at),
    index('audit_at_idx').on(t.at),
    index('audit_user_idx').on(t.username),
    index('audit_action_idx').on(t.action, t.at),
    // Sign-in throttling counts recent failures per user and per address.
    index('audit_failed_sign_in_user_idx')
      .on(t.username, t.at)
      .where(sql`action = 'auth.sign_in_failed'`),
    index('audit_failed_sign_in_addr_idx')
      .on(t.remoteAddr, t.at)
      .where(sql`action = 'auth.sign_in_failed'`),
  ],
);

// The audit log's hash chain (lib/features/audit/chain.ts): each entry, once committed, sealed in the
// order it was sealed, with the hash of the one sealed before it, so that an export shows a gap or an
// edit. Append-only, as the entries are (a trigger refuses UPDATE and DELETE).
export const auditChain = pgTable('audit_chain', {
  seq: bigint('seq', { mode: 'number' }).primaryKey(),
  entryId: bigint('entry_id', { mode: 'number' }).notNull().unique(),
  prevHash: text('prev_hash').notNull(),
  hash: text('hash').notNull(),
  sealedAt: timestamp('sealed_at', { withTimezone: true }).notNull().defaultNow(),
});

// API tokens: shown once, stored as a SHA-256 hash (they are 256 random bits, so no slow hash is needed).
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: serial('id').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull(),
    /** The first characters, to tell tokens apart in lists. */
    prefix: text('prefix').notNull(),
    scope: tokenScope('scope').notNull().default('read'),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    createdAt: timestamps.createdAt,
  },
  (t) => [uniqueIndex('api_tokens_hash_key').on(t.tokenHash), index('api_tokens_user_idx').on(t.userId)],
);

// EC2 discovery passes: the worker's scheduled ones, and those a user asks for (a button, the API),
// which wait here until a worker takes them (a row survives Redis and the worker; a pass a worker
// died in is taken again by the next). `summary` is lib/features/discovery/discovery's DiscoverySummary.
export const discoveryRuns = pgTable(
  'discovery_runs',
  {
    id: serial('id').primaryKey(),
    /** Who asked: a user name, or null for the worker's schedule. */
    requestedBy: text('requested_by'),
    requestedAt: timestamp('requested_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    summary: jsonb('summary').$type<{
      found: number;
      created: string[];
      updated: number;
      gone: string[];
      skipped: { instanceId: string; reason: string }[];
      problems?: { instanceId: string; problem: string }[];
      rds?: {
        found: number;
        herds: string[];
        created: string[];
        updated: number;
        gone: string[];
        skipped: { instanceId: string; reason: string }[];
        problems: { instanceId: string; problem: string }[];
      };
    }>(),
    error: text('error'),
  },
  (t) => [
    index('discovery_runs_pending_idx')
      .on(t.id)
      .where(sql`finished_at IS NULL`),
  ],
);

// Rules (lib/features/rules): an action over a scope, fired on a schedule by the worker pool as an
// ordinary operation, owned by a user whose roles are checked at each fire. The table is the truth: the
// BullMQ job schedulers that fire them are rebuilt from it. Its JSON columns are what
// lib/features/rules/rule-body.ts validated (read back through the same schemas).
export const rules = pgTable(
  'rules',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    // Whose roles each fire is checked against (gone: every fire is refused, and says so).
    ownerId: integer('owner_id').references(() => users.id, { onDelete: 'set null' }),
    ownerName: text('owner_name').notNull(),
    action: text('action').notNull(),
    params: jsonb('params')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    // { instanceIds } | { herdIds } | { filter }: a changelist's query string, resolved at each fire.
    scope: jsonb('scope').$type<Record<string, unknown>>().notNull(),
    // { cron: [...], timezone } | { at } (lib/features/rules/cron.ts).
    schedule: jsonb('schedule').$type<Record<string, unknown>>().notNull(),
    conditions: jsonb('conditions')
      .$type<Record<string, unknown>[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    logic: text('logic', { enum: ['all', 'any'] })
      .notNull()
      .default('all'),
    retry: jsonb('retry').$type<Record<string, unknown>>(),
    // { schedule }: when its targets are put back as they were before its runs (a companion rule does it).
    reverse: jsonb('reverse').$type<Record<string, unknown>>(),
    // Set on a reverse's companion rule: the rule whose targets it puts back (made, changed and deleted with it).
    reverseOf: integer('reverse_of').references((): AnyPgColumn => rules.id, { onDelete: 'cascade' }),
    waves: jsonb('waves').$type<Record<string, unknown>>(),
    // A fire that fell while no worker ran is run once when one is back within this many seconds, else recorded as missed.
    graceSeconds: integer('grace_seconds').notNull().default(300),
    // Fires on a herd only while one of its maintenance windows is open; its rolling operations wait between waves for one.
    insideWindow: boolean('inside_window').notNull().default(false),
    enabled: boolean('enabled').notNull().default(true),
    // Bumped by every change: the job schedulers' ids carry it, so a changed rule's old ones are removed.
    version: integer('version').notNull().default(1),
    // Fires before this are not looked for when a worker catches up (made, enabled or rescheduled then).
    firesFrom: timestamp('fires_from', { withTimezone: true }).notNull().defaultNow(),
    // The latest due time recorded for its schedule (a fire or a catch-up): an older or equal one arriving
    // late fires nothing. Moved under the row's lock, so that two workers never both record one.
    lastDueAt: timestamp('last_due_at', { withTimezone: true }),
    // Its cron expressions as "<time zone>|<expression>" (whitespace folded): every rule sharing one is
    // fired by one job scheduler, so 10,000 rules due at 02:00 are one job and one batch, not 10,000.
    fireGroups: text('fire_groups')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    // The environments of its targets when it was last saved (typed, when its plan asked for it): a fire
    // skips targets elsewhere until someone saves it again. A rule stored before this was recorded has
    // none: its targets are skipped until it is saved again.
    confirmedEnvironments: integer('confirmed_environments')
      .array()
      .notNull()
      .default(sql`'{}'::int[]`),
    // Its approval, where a policy covers its action (docs/approvals.md): the shape approved (its action,
    // parameters, scope, waves and environments, hashed), by whom, when. A save that changes the shape
    // leaves it unmatched: its fires are skipped until it is approved again.
    approvedShape: text('approved_shape'),
    approvedBy: text('approved_by'),
    approvedAt: timestamp('approved_at', { withTimezone: true }),
    // The approvals given so far to its shape now, when the policies ask for more than one.
    approvalVotes: jsonb('approval_votes').$type<{ shape: string; by: string[] }>(),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('rules_name_key').on(t.name),
    uniqueIndex('rules_reverse_of_key').on(t.reverseOf),
    check('rules_grace_seconds_check', sql`grace_seconds BETWEEN 0 AND 604800`),
    index('rules_fire_groups_idx').using('gin', t.fireGroups),
  ],
);

// A DR drill's figures: one row per drill that got as far as measuring, written by its last step.
// Whether a drill failed is its operation target's status; the scorecard reads both.
export const drDrills = pgTable(
  'dr_drills',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'cascade' }),
    operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
    // The herd's primary before (and after) the drill, and the member in the other site it switched over to.
    primaryLabel: text('primary_label').notNull(),
    candidateLabel: text('candidate_label').notNull(),
    candidateSite: text('candidate_site').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    finishedAt: timestamp('finished_at', { withTimezone: true }).notNull().defaultNow(),
    // From asking for the switchover to the writer's first commit acknowledged by the DR member.
    firstWriteMs: integer('first_write_ms'),
    // The writer's longest time between two acknowledged commits, over both switchovers.
    longestGapMs: integer('longest_gap_ms'),
    acknowledged: integer('acknowledged').notNull(),
    // Acknowledged commits missing on the primary at the end: must be 0.
    lost: integer('lost').notNull(),
  },
  (t) => [index('dr_drills_herd_idx').on(t.herdId, t.id), uniqueIndex('dr_drills_operation_key').on(t.operationId)],
);

// How an environment's herds (or one herd, overriding it) are backed up: the tool, the repository, retention
// and encryption. Applied to a herd by the Configure backups action, never by hand; its secrets (the
// cipher passphrase, S3 keys) are not here but in PGHERD_PG_CONFIG's entry for the environment.
export const backupPolicies = pgTable(
  'backup_policies',
  {
    id: serial('id').primaryKey(),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    // Null: the environment's policy; else this herd's, in place of it.
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'cascade' }),
    tool: backupTool('tool').notNull().default('pgbackrest'),
    repoKind: backupRepoKind('repo_kind').notNull().default('posix'),
    // posix: the backup host (a server of the environment, reached over SSH with its pinned key) and the
    // repository's directory on it. s3: the bucket, its endpoint and region, and a path in it.
    repoServerId: integer('repo_server_id').references(() => servers.id, { onDelete: 'no action' }),
    repoPath: text('repo_path').notNull(),
    s3Bucket: text('s3_bucket').notNull().default(''),
    s3Endpoint: text('s3_endpoint').notNull().default(''),
    s3Region: text('s3_region').notNull().default(''),
    // For an S3-compatible store or a private endpoint: the address to connect to instead of the endpoint's
    // (the store's certificate must name it), its port, and a CA file on the hosts to verify it with.
    s3ConnectHost: text('s3_connect_host').notNull().default(''),
    s3Port: integer('s3_port').notNull().default(443),
    s3CaFile: text('s3_ca_file').notNull().default(''),
    // Full backups kept (older ones, and the WAL only they need, expire after each backup).
    retentionFull: integer('retention_full').notNull().default(2),
    compressType: text('compress_type').notNull().default('zst'),
    // aes-256-cbc with the environment's passphrase (PGHERD_PG_CONFIG backup.cipherPassFile).
    encrypt: boolean('encrypt').notNull().default(true),
    // Backups read the data files from a replica (the primary only for its start and stop).
    fromStandby: boolean('from_standby').notNull().default(true),
    // archive_timeout: the longest a quiet primary keeps written WAL from the archive (the RPO bound).
    archiveTimeoutSeconds: integer('archive_timeout_seconds').notNull().default(60),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('backup_policies_environment_key')
      .on(t.environmentId)
      .where(sql`herd_id IS NULL`),
    uniqueIndex('backup_policies_herd_key')
      .on(t.herdId)
      .where(sql`herd_id IS NOT NULL`),
    check('backup_policies_retention_check', sql`retention_full BETWEEN 1 AND 100`),
    check('backup_policies_s3_port_check', sql`s3_port BETWEEN 1 AND 65535`),
    check('backup_policies_archive_timeout_check', sql`archive_timeout_seconds BETWEEN 10 AND 3600`),
    check('backup_policies_compress_check', sql`compress_type IN ('zst', 'lz4', 'gz', 'none')`),
    check(
      'backup_policies_repo_check',
      sql`(repo_kind = 'posix' AND repo_server_id IS NOT NULL) OR (repo_kind = 's3' AND s3_bucket <> '')`,
    ),
  ],
);

// Where a herd's backups are, as Configure backups last applied it (the stanza and the configuration files on
// each host): what the backup, restore and drill actions run against. One row a herd.
export const herdBackupSetups = pgTable('herd_backup_setups', {
  herdId: integer('herd_id')
    .primaryKey()
    .references(() => herds.id, { onDelete: 'cascade' }),
  policyId: integer('policy_id').references(() => backupPolicies.id, { onDelete: 'set null' }),
  stanza: text('stanza').notNull(),
  // The policy as applied (canonical JSON): a policy edited since is shown as "not applied".
  applied: jsonb('applied').$type<Record<string, unknown>>().notNull(),
  appliedAt: timestamp('applied_at', { withTimezone: true }).notNull().defaultNow(),
  operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
  // What `pgbackrest info` last said of the stanza (ok, or its error), and when.
  infoStatus: text('info_status').notNull().default(''),
  infoReadAt: timestamp('info_read_at', { withTimezone: true }),
});

// A herd's backups as the tool lists them (`pgbackrest info` is the truth; these rows follow it). A backup
// the repository no longer holds (expired by retention, or lost) is marked gone, never deleted.
export const backups = pgTable(
  'backups',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    herdId: integer('herd_id')
      .notNull()
      .references(() => herds.id, { onDelete: 'cascade' }),
    stanza: text('stanza').notNull(),
    label: text('label').notNull(),
    type: backupType('type').notNull(),
    // The backup it depends on (a differential's full, an incremental's previous backup).
    prior: text('prior'),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    stoppedAt: timestamp('stopped_at', { withTimezone: true }).notNull(),
    // The database's size, and what the backup holds in the repository (compressed, only what changed).
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    repoSizeBytes: bigint('repo_size_bytes', { mode: 'number' }).notNull(),
    lsnStart: text('lsn_start').notNull(),
    lsnStop: text('lsn_stop').notNull(),
    // The WAL it needs to be consistent.
    walStart: text('wal_start').notNull(),
    walStop: text('wal_stop').notNull(),
    // The operation that took it (null: taken outside pgherd, found in the repository).
    operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
    goneAt: timestamp('gone_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('backups_herd_label_key').on(t.herdId, t.label), index('backups_herd_stopped_idx').on(t.herdId, t.stoppedAt)],
);

// A restore drill's verdict and figures: one row per drill that got past its first step, written at its end
// whatever happened (a drill that fails says why). The recoverability scorecard reads the latest per herd.
export const restoreDrills = pgTable(
  'restore_drills',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    herdId: integer('herd_id')
      .notNull()
      .references(() => herds.id, { onDelete: 'cascade' }),
    operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    finishedAt: timestamp('finished_at', { withTimezone: true }).notNull().defaultNow(),
    ok: boolean('ok').notNull(),
    // Why it failed, in words (the step and what it found); '' when it passed.
    cause: text('cause').notNull().default(''),
    // From the drill's start to the first write the restored cluster accepted.
    rtoMs: integer('rto_ms'),
    // How old, when the restore began, the newest marker found in the restored cluster was: what a restore then would have lost.
    rpoMs: integer('rpo_ms'),
    // The database's size as restored, and the restore's throughput (bytes a second), for predicting restores.
    restoredBytes: bigint('restored_bytes', { mode: 'number' }),
    restoreMs: integer('restore_ms'),
  },
  (t) => [index('restore_drills_herd_idx').on(t.herdId, t.id), uniqueIndex('restore_drills_operation_key').on(t.operationId, t.herdId)],
);

// A folder a restore (or a drill) claimed on a server and lays a cluster out in: settled when the cluster is
// kept (registered as a herd) or removed by the restore's cleanup. One left unsettled by a target that ended
// without its cleanup (its worker killed) is removed by the next worker's reconcile: no restored copy of a
// herd's data is ever left running untracked.
export const restoreClaims = pgTable(
  'restore_claims',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    targetId: bigint('target_id', { mode: 'number' })
      .notNull()
      .references(() => operationTargets.id, { onDelete: 'cascade' }),
    // Null once its server is gone from the inventory (a launched instance terminated): the claim's record stays.
    serverId: integer('server_id').references(() => servers.id, { onDelete: 'set null' }),
    folder: text('folder').notNull(),
    dataDirectory: text('data_directory').notNull(),
    pgVersion: smallint('pg_version').notNull(),
    settledAt: timestamp('settled_at', { withTimezone: true }),
    settledHow: text('settled_how'),
    // The herd the restored cluster was registered as (kept): what Tear down removes, and only this.
    keptHerdId: integer('kept_herd_id'),
    // A copy made into a new herd (a restore or a drill), not a member of its source (a seeded replica): it
    // shares its source's system identifier, so an agent's report of it is never filed by that identifier.
    isCopy: boolean('is_copy').notNull().default(false),
    // The restored cluster's system identifier, once it answered: nothing is removed from a folder that holds another.
    systemIdentifier: text('system_identifier'),
    // The port it was laid down for: an instance of another herd on that server and port adopted it too.
    port: integer('port'),
    // When what it laid down was removed (by its cleanup, Tear down or a reconcile); null while it is on its server.
    removedAt: timestamp('removed_at', { withTimezone: true }),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('restore_claims_open_idx')
      .on(t.targetId)
      .where(sql`settled_at IS NULL`),
    // The agents' ingest asks it for every reported instance: is a copy there?
    index('restore_claims_place_idx').on(t.serverId, t.dataDirectory),
  ],
);

// An EC2 instance pgherd launched for a target (a restore's or a drill's new server): recorded before the
// launch (its client token: EC2 launches once per token), its id once EC2 gave one. Terminated by the
// target's cleanup unless kept (then Tear down terminates it), or by the next worker's reconcile when the
// target ended without its cleanup: no instance pgherd launched is left running, and paid for, untracked.
export const launchedInstances = pgTable(
  'launched_instances',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    targetId: bigint('target_id', { mode: 'number' })
      .notNull()
      .references(() => operationTargets.id, { onDelete: 'cascade' }),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    region: text('region').notNull(),
    clientToken: text('client_token').notNull().unique(),
    instanceType: text('instance_type').notNull(),
    instanceId: text('instance_id'),
    // Its server row, once registered (gone when the instance is terminated).
    serverId: integer('server_id').references(() => servers.id, { onDelete: 'set null' }),
    // The herd it became part of (a restore kept): what Tear down terminates.
    keptHerdId: integer('kept_herd_id'),
    // The member it became (a replica added): Retire terminates it; deleting the row by hand does not.
    keptInstanceId: bigint('kept_instance_id', { mode: 'number' }),
    // Bought on the spot market (a spot herd's replica): EC2 may take it back with two minutes' notice.
    spot: boolean('spot').notNull().default(false),
    terminatedAt: timestamp('terminated_at', { withTimezone: true }),
    settledHow: text('settled_how'),
    lastError: text('last_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('launched_instances_open_idx')
      .on(t.targetId)
      .where(sql`terminated_at IS NULL`),
  ],
);

// A rule's runs: one row per fire, whatever came of it (an operation, a skip and why, a refusal, a
// miss). Unique per rule and fire: however many workers see a due time, one of them runs it.
export const ruleRuns = pgTable(
  'rule_runs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    ruleId: integer('rule_id')
      .notNull()
      .references(() => rules.id, { onDelete: 'cascade' }),
    // What made it: the schedule, a person (run now), a retry of an earlier run, a worker catching up.
    kind: text('kind', { enum: ['schedule', 'manual', 'retry', 'catch-up', 'reverse'] }).notNull(),
    // "at:<due time in ms>" for a scheduled fire (the same for every worker that sees it), else unique.
    fireKey: text('fire_key').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true }).notNull(),
    firedAt: timestamp('fired_at', { withTimezone: true }).notNull().defaultNow(),
    attempt: integer('attempt').notNull().default(0),
    retryOf: bigint('retry_of', { mode: 'number' }),
    // The rule's version when a run was asked for ahead of its deciding (run now, a retry): a rule saved
    // or disabled since refuses it. Null for a scheduled fire, recorded against the rule as it is.
    ruleVersion: integer('rule_version'),
    // firing: waiting for a worker (run now); deciding: a worker is at it; started: its operation was
    // made (the operation's status is the outcome); skipped, refused, missed, nothing (no target
    // qualified), error (pgherd failed to fire it).
    status: text('status', { enum: ['firing', 'deciding', 'started', 'skipped', 'refused', 'missed', 'nothing', 'error'] })
      .notNull()
      .default('firing'),
    reason: text('reason'),
    operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
    // Each target as the fire saw it: its label, and why it was left out (with the measured values).
    targets: jsonb('targets')
      .$type<{ id: number; label: string; skipped?: string; values?: Record<string, number | null>; before?: Record<string, string> }[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    // Who asked (run now), or null for the schedule.
    requestedBy: text('requested_by'),
    // A worker deciding the run says it is still at it now and then: a run whose decider went silent is
    // closed by another worker's reconcile, one still being decided (however long) is left alone.
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }),
    // When its outcome was written (after its operation's targets were queued): due to decided is how
    // late a rule acts.
    decidedAt: timestamp('decided_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('rule_runs_fire_key').on(t.ruleId, t.fireKey),
    index('rule_runs_rule_idx').on(t.ruleId, t.id),
    // A finished operation's run (its notification, the overlap check's join).
    index('rule_runs_operation_idx')
      .on(t.operationId)
      .where(sql`operation_id IS NOT NULL`),
    // Every worker's reconcile tick: the runs waiting for a worker or being decided.
    index('rule_runs_open_idx')
      .on(t.firedAt)
      .where(sql`status IN ('firing', 'deciding')`),
  ],
);

// The blackout calendar: while one holds, rules do not fire (globally, or on an environment's or a
// herd's targets). Dates are stored as the instants they begin and end in their own time zone.
export const blackouts = pgTable(
  'blackouts',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    reason: text('reason').notNull().default(''),
    startsAt: timestamp('starts_at', { withTimezone: true }).notNull(),
    endsAt: timestamp('ends_at', { withTimezone: true }).notNull(),
    timezone: text('timezone').notNull().default('UTC'),
    environmentId: integer('environment_id').references(() => environments.id, { onDelete: 'cascade' }),
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'cascade' }),
    createdBy: text('created_by').notNull().default(''),
    ...timestamps,
  },
  (t) => [
    index('blackouts_ends_idx').on(t.endsAt),
    check('blackouts_range_check', sql`ends_at > starts_at`),
    check('blackouts_one_scope_check', sql`environment_id IS NULL OR herd_id IS NULL`),
  ],
);

// Maintenance windows: weekly, in a time zone, for every herd, an environment's or one herd. A rule
// marked insideWindow fires on a herd only while one of its windows is open, and a rolling operation it
// started waits between waves while the next wave's herds have none open.
export const maintenanceWindows = pgTable(
  'maintenance_windows',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    // Days of the week it opens on (0 Sunday .. 6 Saturday), at `starts` (HH:MM) in `timezone`, for `durationMinutes`.
    days: integer('days').array().notNull(),
    starts: text('starts').notNull(),
    durationMinutes: integer('duration_minutes').notNull(),
    timezone: text('timezone').notNull().default('UTC'),
    environmentId: integer('environment_id').references(() => environments.id, { onDelete: 'cascade' }),
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'cascade' }),
    createdBy: text('created_by').notNull().default(''),
    ...timestamps,
  },
  () => [
    check('maintenance_windows_one_scope_check', sql`environment_id IS NULL OR herd_id IS NULL`),
    check('maintenance_windows_duration_check', sql`duration_minutes BETWEEN 1 AND 10080`),
  ],
);

// Notifications: webhooks, global or for one rule. What happened is written to an outbox
// (notification_events: by a trigger when an operation finishes, by the rules engine when a run ends
// without one), turned into deliveries by a worker, and each delivery is tried with backoff and kept.
export const webhooks = pgTable(
  'webhooks',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    url: text('url').notNull(),
    // The HMAC key of its signatures: shown once, when it is made.
    secret: text('secret').notNull(),
    // Null: every rule's runs and every operation; else this rule's runs only.
    ruleId: integer('rule_id').references(() => rules.id, { onDelete: 'cascade' }),
    events: text('events').array().notNull(),
    enabled: boolean('enabled').notNull().default(true),
    // A rule's webhook: the rule owner who answers for where its runs are told. Delivered only while that
    // is still the rule's owner: a new owner keeps it (or not) before it hears of their runs.
    keeperId: integer('keeper_id').references(() => users.id, { onDelete: 'set null' }),
    createdBy: text('created_by').notNull().default(''),
    // What a delivery's body looks like: pgherd's JSON (with a Slack-compatible `text`), or Slack's Block
    // Kit (`text` and `blocks`, an approval's Approve and Deny as buttons).
    format: text('format', { enum: ['pgherd', 'slack'] })
      .notNull()
      .default('pgherd'),
    ...timestamps,
  },
  (t) => [index('webhooks_rule_idx').on(t.ruleId), check('webhooks_format_check', sql`${t.format} IN ('pgherd', 'slack')`)],
);

export const notificationEvents = pgTable(
  'notification_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    kind: text('kind', {
      enum: [
        'operation.finished',
        'run.ended',
        'herd.two_primaries',
        'herd.no_primary',
        'herd.restore_unverified',
        'risk.raised',
        'risk.cleared',
        'herd.auto_replaced',
      ],
    }).notNull(),
    operationId: bigint('operation_id', { mode: 'number' }),
    ruleRunId: bigint('rule_run_id', { mode: 'number' }),
    // herd.two_primaries, herd.no_primary: the herd, and what was seen, in words, as the moment it was seen said it
    // (no foreign key: an announcement outlives nothing it names, and is deleted once delivered).
    herdId: integer('herd_id'),
    detail: text('detail'),
    createdAt: timestamps.createdAt,
  },
  // A queue: a worker deletes the events it turns into deliveries, in the same transaction.
);

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    webhookId: integer('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    event: text('event').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status', { enum: ['pending', 'delivered', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    responseStatus: integer('response_status'),
    error: text('error'),
    createdAt: timestamps.createdAt,
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  },
  (t) => [
    index('webhook_deliveries_webhook_idx').on(t.webhookId, t.id),
    index('webhook_deliveries_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`status = 'pending'`),
  ],
);

// Lag history (lib/fleet/lag-history.ts): each instance's lag and state as last observed (by the
// refresher or its agent), sampled every PGHERD_LAG_SAMPLE_MS by one worker; after a day the samples
// are folded into 5-minute buckets (`coarse`, the worst lag of the bucket), after the retention
// (PGHERD_LAG_RETENTION_DAYS, default 7) deleted. The herd is the instance's when sampled. History,
// not references: no foreign keys (no check per sampled row; a deleted instance's samples go with the
// retention, and the charts, which join the instances, no longer show them).
export const lagSamples = pgTable(
  'lag_samples',
  {
    instanceId: bigint('instance_id', { mode: 'number' }).notNull(),
    herdId: integer('herd_id').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    lagBytes: bigint('lag_bytes', { mode: 'number' }),
    lagSeconds: real('lag_seconds'),
    role: instanceRole('role').notNull(),
    state: instanceState('state').notNull(),
    coarse: boolean('coarse').notNull().default(false),
  },
  (t) => [
    primaryKey({ columns: [t.instanceId, t.at] }),
    index('lag_samples_herd_at_idx').on(t.herdId, t.at),
    index('lag_samples_at_idx').on(t.at),
  ],
);

// The fleet by environment, role and state at each sample (the dashboard's "over the last day"),
// kept as long as the lag samples.
export const fleetSamples = pgTable(
  'fleet_samples',
  {
    at: timestamp('at', { withTimezone: true }).notNull(),
    environmentId: integer('environment_id').notNull(),
    role: instanceRole('role').notNull(),
    state: instanceState('state').notNull(),
    instances: integer('instances').notNull(),
  },
  (t) => [primaryKey({ columns: [t.at, t.environmentId, t.role, t.state] }), index('fleet_samples_at_idx').on(t.at)],
);

// Members retired (Retire member, Replace member): the inventory's row is gone (a retired member is no
// member), and this says what it was, what became of its host, and which operation did it.
export const retiredMembers = pgTable(
  'retired_members',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'cascade' }),
    instanceId: bigint('instance_id', { mode: 'number' }).notNull(),
    label: text('label').notNull(),
    hostname: text('hostname').notNull(),
    port: integer('port').notNull(),
    dataDirectory: text('data_directory').notNull(),
    cloudInstanceId: text('cloud_instance_id'),
    // terminated | kept stopped | stopped (not an EC2 instance)
    host: text('host').notNull(),
    operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
    retiredAt: timestamp('retired_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('retired_members_herd_idx').on(t.herdId)],
);

// Spot interruption notices (EC2's two-minute warning), as EventBridge or a host's agent delivered them:
// what pgherd did about each (the evacuation it started), and per zone how often, which a replacement's
// placement reads (a zone that keeps taking spot capacity back is avoided for a while).
export const spotInterruptions = pgTable(
  'spot_interruptions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    cloudInstanceId: text('cloud_instance_id').notNull(),
    region: text('region').notNull().default(''),
    availabilityZone: text('availability_zone').notNull().default(''),
    serverId: integer('server_id').references(() => servers.id, { onDelete: 'set null' }),
    // eventbridge | agent
    source: text('source').notNull(),
    // terminate | stop | hibernate (EC2's instance-action)
    instanceAction: text('instance_action').notNull(),
    // When EC2 says the capacity goes (the notice's time plus two minutes); when pgherd heard of it.
    dueAt: timestamp('due_at', { withTimezone: true }),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
    operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
    // What was done, in words (an evacuation started, or why none).
    outcome: text('outcome').notNull().default(''),
  },
  (t) => [
    index('spot_interruptions_zone_idx').on(t.availabilityZone, t.receivedAt),
    uniqueIndex('spot_interruptions_instance_key').on(t.cloudInstanceId),
  ],
);

// Auto-replace (docs/grow.md): off unless a policy says so, for an environment or one herd (in place of its
// environment's). A member that has not answered for `after_seconds`, whose host EC2 says is stopped,
// terminated or impaired (or whose agent has gone silent), and whose host is proven not to run it, is
// replaced by the system (Replace member); a primary only when `primaries` allows the DR failover first.
// At most `per_hour` replacements an hour in the environment (its own policy's figure), one per herd at a time.
export const autoReplacePolicies = pgTable(
  'auto_replace_policies',
  {
    id: serial('id').primaryKey(),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    // Null: the environment's policy; else this herd's, in place of it (enabled false turns it off there).
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'cascade' }),
    enabled: boolean('enabled').notNull().default(true),
    afterSeconds: integer('after_seconds').notNull().default(300),
    perHour: integer('per_hour').notNull().default(2),
    primaries: boolean('primaries').notNull().default(false),
    ...timestamps,
  },
  (t) => [
    uniqueIndex('auto_replace_policies_environment_key')
      .on(t.environmentId)
      .where(sql`herd_id IS NULL`),
    uniqueIndex('auto_replace_policies_herd_key')
      .on(t.herdId)
      .where(sql`herd_id IS NOT NULL`),
    check('auto_replace_policies_after_check', sql`after_seconds BETWEEN 30 AND 86400`),
    check('auto_replace_policies_per_hour_check', sql`per_hour BETWEEN 1 AND 100`),
  ],
);

// Every decision auto-replace made about a member it found silent, with its evidence: replaced (the
// operation), failed over first (a primary), or held (why not: the host runs it, the budget, a blackout).
// A held decision is written when its reason changes, not every round. The budget counts these rows.
export const autoReplaceDecisions = pgTable(
  'auto_replace_decisions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'set null' }),
    instanceId: bigint('instance_id', { mode: 'number' }).references(() => instances.id, { onDelete: 'set null' }),
    // The member, as the decision named it (the row may be retired since).
    label: text('label').notNull(),
    // replace | failover | held
    verdict: text('verdict').notNull(),
    reason: text('reason').notNull(),
    evidence: jsonb('evidence').$type<Record<string, unknown>>().notNull().default({}),
    operationId: bigint('operation_id', { mode: 'number' }).references(() => operations.id, { onDelete: 'set null' }),
    decidedAt: timestamp('decided_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('auto_replace_decisions_environment_idx').on(t.environmentId, t.decidedAt),
    index('auto_replace_decisions_instance_idx').on(t.instanceId, t.decidedAt),
  ],
);

// Parameter groups: named sets of Postgres settings (postgresql.conf lines, values may be formulas of the
// host's memory and cores), assigned to an environment, a herd or an instance; the most specific one
// wins, a herd's own overrides over its group (lib/fleet/settings/wanted.ts). Every version is kept.
export const parameterGroups = pgTable(
  'parameter_groups',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    settings: text('settings').notNull().default(''),
    version: integer('version').notNull().default(1),
    ...timestamps,
  },
  (t) => [uniqueIndex('parameter_groups_name_key').on(t.name)],
);

export const parameterGroupVersions = pgTable(
  'parameter_group_versions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    // No foreign key: a group deleted keeps its history.
    groupId: integer('group_id').notNull(),
    version: integer('version').notNull(),
    name: text('name').notNull(),
    settings: text('settings').notNull(),
    author: text('author').notNull(),
    // What made it: a save in the console or the API, or a drift accepted (the instance it came from).
    note: text('note').notNull().default(''),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('parameter_group_versions_key').on(t.groupId, t.version)],
);

/** One setting as Postgres reported it (pg_settings): its value in its own unit, and where it came from. */
export interface SettingReading {
  /** pg_settings.setting */
  v: string;
  /** pg_settings.source, when not "default" */
  s?: string;
  /** sourcefile:sourceline, when Postgres says */
  f?: string;
  /** pending_restart */
  p?: true;
}

// An instance's settings each time they were read and differed from the read before (the first read too):
// what ran from when, for "its settings at any past time" and "what changed between two times". The time
// a change took effect is Postgres's own (pg_conf_load_time(), or the postmaster's start).
export const settingSnapshots = pgTable(
  'setting_snapshots',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    // No foreign key: a retired member's history stays.
    instanceId: bigint('instance_id', { mode: 'number' }).notNull(),
    herdId: integer('herd_id').notNull(),
    serverVersionNum: integer('server_version_num').notNull(),
    settings: jsonb('settings').$type<Record<string, SettingReading>>().notNull(),
    // The settings that differ from the snapshot before, with their values then (null: not set then).
    changed: jsonb('changed').$type<Record<string, { from: string | null; to: string | null }>>().notNull(),
    effectiveAt: timestamp('effective_at', { withTimezone: true }).notNull(),
    readAt: timestamp('read_at', { withTimezone: true }).notNull().defaultNow(),
    // The operation that held the herd when the change was read (null: none; a change made outside pgherd).
    operationId: bigint('operation_id', { mode: 'number' }),
  },
  (t) => [index('setting_snapshots_instance_idx').on(t.instanceId, t.effectiveAt)],
);

// What a setting is in a Postgres major (pg_settings' columns that do not change while it runs): read
// with an instance's first settings, used to check a group's values and to compare them with what runs.
export const settingCatalog = pgTable(
  'setting_catalog',
  {
    major: smallint('major').notNull(),
    name: text('name').notNull(),
    vartype: text('vartype').notNull(),
    unit: text('unit'),
    context: text('context').notNull(),
    minVal: text('min_val'),
    maxVal: text('max_val'),
    enumVals: jsonb('enum_vals').$type<string[]>(),
    bootVal: text('boot_val'),
  },
  (t) => [primaryKey({ columns: [t.major, t.name] })],
);

// Object sets: roles, databases, extensions and access rules (pg_hba lines) declared once for the fleet,
// assigned to an environment or a herd (a herd's own lines over its set); lib/fleet/objects/declaration.ts
// reads the text. Global, like parameter groups: only global admins change one. Every version is kept.
export const objectSets = pgTable(
  'object_sets',
  {
    id: serial('id').primaryKey(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    declaration: text('declaration').notNull().default(''),
    version: integer('version').notNull().default(1),
    ...timestamps,
  },
  (t) => [uniqueIndex('object_sets_name_key').on(t.name)],
);

export const objectSetVersions = pgTable(
  'object_set_versions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    // No foreign key: a set deleted keeps its history.
    setId: integer('set_id').notNull(),
    version: integer('version').notNull(),
    name: text('name').notNull(),
    declaration: text('declaration').notNull(),
    author: text('author').notNull(),
    note: text('note').notNull().default(''),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('object_set_versions_key').on(t.setId, t.version)],
);

// Rotate pgherd's credentials (lib/actions/objects/rotate-own-credentials.action.ts): the herds of an
// operation that took the environment's new password and key. When the last of them has, the new ones
// replace the old in the worker's files and the old key leaves the hosts.
export const ownCredentialStages = pgTable(
  'own_credential_stages',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    operationId: bigint('operation_id', { mode: 'number' })
      .notNull()
      .references(() => operations.id, { onDelete: 'cascade' }),
    environment: text('environment').notNull(),
    // The salt of the new password's verifier (not secret): its line in the environment's password file.
    salt: text('salt'),
    // The SHA-256 of Patroni's new REST password (random, 32 bytes): which staged line of its file is this operation's.
    restHash: text('rest_hash'),
    // The salt of PgBouncer's new admin verifier: its line in the environment's PgBouncer password file.
    bouncerSalt: text('bouncer_salt'),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('own_credential_stages_key').on(t.operationId, t.environment)],
);

export const ownCredentialRotations = pgTable(
  'own_credential_rotations',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    operationId: bigint('operation_id', { mode: 'number' })
      .notNull()
      .references(() => operations.id, { onDelete: 'cascade' }),
    herdId: integer('herd_id').notNull(),
    environment: text('environment').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('own_credential_rotations_key').on(t.operationId, t.herdId)],
);

// What a primary has inside (lib/fleet/objects/read-objects.ts): its roles and memberships, databases,
// the extensions of the databases declared, its pg_hba rules, and who connects to it (pgherd, its
// replicas) as it saw them. One row an instance, replaced at each reading.
export const objectReadings = pgTable('object_readings', {
  instanceId: bigint('instance_id', { mode: 'number' })
    .primaryKey()
    .references(() => instances.id, { onDelete: 'cascade' }),
  reading: jsonb('reading').notNull(),
  // The refresh's fingerprint and configuration load time it was read at: due again when either moves.
  fingerprint: text('fingerprint'),
  confLoadedAt: timestamp('conf_loaded_at', { withTimezone: true }),
  readAt: timestamp('read_at', { withTimezone: true }).notNull().defaultNow(),
});

// What the refresh reads for the risks (lib/fleet/risks/read-risks.ts), on its kept session at most every
// PGHERD_RISKS_READ_MS: transaction ID ages, slots, long transactions, the server's certificate, the
// settings a risk looks at. One row an instance, replaced at each reading.
export const riskReadings = pgTable('risk_readings', {
  instanceId: bigint('instance_id', { mode: 'number' })
    .primaryKey()
    .references(() => instances.id, { onDelete: 'cascade' }),
  reading: jsonb('reading').notNull(),
  readAt: timestamp('read_at', { withTimezone: true }).notNull().defaultNow(),
});

// The certificates of what stands beside Postgres (lib/features/risks/certificates.ts): each PgBouncer's
// (its client TLS) and each Patroni member's REST API, as a TLS handshake last showed them. By key
// (`pooler:ID`, `patroni:INSTANCE`); a row whose endpoint is gone is deleted at the next reading.
export const tlsReadings = pgTable('tls_readings', {
  key: text('key').primaryKey(),
  kind: text('kind').notNull(),
  herdId: integer('herd_id')
    .notNull()
    .references(() => herds.id, { onDelete: 'cascade' }),
  instanceId: bigint('instance_id', { mode: 'number' }).references(() => instances.id, { onDelete: 'cascade' }),
  endpoint: text('endpoint').notNull(),
  notAfter: timestamp('not_after', { withTimezone: true }),
  subject: text('subject'),
  /** Why no certificate was read (no TLS there, no answer). */
  error: text('error'),
  readAt: timestamp('read_at', { withTimezone: true }).notNull().defaultNow(),
});

// The fleet's risks (lib/features/risks): each finding the judge keeps, by its key (kind and subject),
// from when it was first found until it clears, with its last measures (the trend). A person may
// acknowledge one: it stops counting until the acknowledgement expires or the measure passes the step
// it was given.
export const risks = pgTable(
  'risks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    key: text('key').notNull(),
    environmentId: integer('environment_id')
      .notNull()
      .references(() => environments.id, { onDelete: 'cascade' }),
    herdId: integer('herd_id').references(() => herds.id, { onDelete: 'cascade' }),
    instanceId: bigint('instance_id', { mode: 'number' }).references(() => instances.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    subject: text('subject').notNull().default(''),
    severity: text('severity', { enum: ['warning', 'critical'] }).notNull(),
    measure: doublePrecision('measure').notNull(),
    unit: text('unit').notNull().default(''),
    detail: text('detail').notNull().default(''),
    // The finding's own facts (the oldest tables, the session, the slot) as the judge read them.
    facts: jsonb('facts')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    since: timestamp('since', { withTimezone: true }).notNull().defaultNow(),
    seenAt: timestamp('seen_at', { withTimezone: true }).notNull().defaultNow(),
    // [[epoch ms, measure], ...], oldest first, at most one an hour (and the last).
    samples: jsonb('samples')
      .$type<[number, number][]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    ackBy: text('ack_by'),
    ackReason: text('ack_reason'),
    ackUntil: timestamp('ack_until', { withTimezone: true }),
    ackMeasure: doublePrecision('ack_measure'),
    ackStep: doublePrecision('ack_step'),
    ackSeverity: text('ack_severity'),
    // Whether it counts now (not acknowledged, or the acknowledgement expired or was outgrown).
    counted: boolean('counted').notNull().default(true),
  },
  (t) => [
    uniqueIndex('risks_key').on(t.key),
    index('risks_environment_idx').on(t.environmentId, t.severity),
    index('risks_herd_idx').on(t.herdId),
    check('risks_severity_check', sql`${t.severity} IN ('warning', 'critical')`),
  ],
);

// What each instance's agent last said of its filesystems (lib/agent/collect.ts diskOf): the data
// directory's and pg_wal's, free (to an unprivileged writer) and in all. One row an instance.
export const diskReadings = pgTable('disk_readings', {
  instanceId: bigint('instance_id', { mode: 'number' })
    .primaryKey()
    .references(() => instances.id, { onDelete: 'cascade' }),
  dataFree: bigint('data_free', { mode: 'number' }).notNull(),
  dataTotal: bigint('data_total', { mode: 'number' }).notNull(),
  walFree: bigint('wal_free', { mode: 'number' }),
  walTotal: bigint('wal_total', { mode: 'number' }),
  /** The data directory's mount, as its agent read it: { device, fsType, mountPoint, volumeId } (what Grow data volume grows). */
  dataMount: jsonb('data_mount').$type<{ device?: string; fsType?: string; mountPoint?: string; volumeId?: string }>(),
  readAt: timestamp('read_at', { withTimezone: true }).notNull().defaultNow(),
});

// The space used on each instance's filesystems, one sample an hour (the first report of the hour), kept a
// week and a day: the growth the days-to-full risk projects (lib/features/risks). History: no foreign key.
export const diskSamples = pgTable(
  'disk_samples',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    instanceId: bigint('instance_id', { mode: 'number' }).notNull(),
    hour: timestamp('hour', { withTimezone: true }).notNull(),
    dataUsed: bigint('data_used', { mode: 'number' }).notNull(),
    walUsed: bigint('wal_used', { mode: 'number' }),
  },
  (t) => [uniqueIndex('disk_samples_key').on(t.instanceId, t.hour), index('disk_samples_hour_idx').on(t.hour)],
);
