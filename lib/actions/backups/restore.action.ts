// Restore to a new herd: the herd's backups and archive restored onto an empty server of its environment,
// to the end of the archive, a time, an LSN, a named restore point, or just before an operation of
// pgherd's; started, promoted, and registered as a herd of its own (never over a running one), with an
// optional expiry after which the worker tears it down (lib/features/backups/expire.ts). The source herd is
// not touched.
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { wholeNumber } from '@/lib/adapters/validation/ids';
import { formatBytes, formatDuration } from '@/lib/adapters/format/units';
import type { Db } from '@/db/client';
import { defineHerdAction, productionWarning, type ActionStep, type Fact } from '@/lib/engine/define-action';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import {
  launchPrice,
  launchStep,
  newLaunchState,
  planLaunch,
  serverToLaunch,
  type LaunchPlan,
  type LaunchState,
} from '@/lib/actions/steps/launch';
import { policyRefusal, prepareBackups, type BackupPrepared } from '@/lib/actions/steps/backup-steps';
import {
  placeFields,
  loadRestoreServer,
  newRestoreState,
  operationStart,
  type Instant,
  recoveryTarget,
  type RecoveryTarget,
  restoreSteps,
  restoreTargetParams,
  oneServer,
  serverRefusal,
  type RestorePlace,
  type RestoreServer,
  type RestoreState,
} from '@/lib/actions/steps/restore-steps';
import { asks } from '@/lib/actions/drivers';

export const restoreParams = z
  .object({
    ...restoreTargetParams,
    /** The new herd's name, in the source's environment. */
    name: z
      .string()
      .trim()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'the new herd\u2019s name: lower-case letters, digits and -'),
    /** Hours after which the worker tears the restored herd down (left out: kept). */
    expiresInHours: wholeNumber(
      z
        .number({ message: 'expiresInHours: a whole number of hours' })
        .int()
        .min(1)
        .max(24 * 90),
    ).optional(),
  })
  .strict()
  .refine(...oneServer);

interface Prepared extends BackupPrepared {
  server: RestoreServer | null;
  /** A new instance to launch (instanceType), or why there can be none. */
  launch: LaunchPlan | Refusal | null;
  operationAt: Map<number, Instant | null>;
  takenNames: Set<string>;
  /** Per herd: the last full backup's size and the last passing drills' throughput (bytes a second), when known. */
  estimates: Map<number, { bytes: number | null; bytesPerSecond: number | null; drills: number }>;
}

/** The last full backup's size, and what the herd's last three passing drills restored a second. */
async function restoreEstimates(db: Db, herdIds: number[]): Promise<Prepared['estimates']> {
  if (!herdIds.length) return new Map();
  const r = await db.execute<{ herd_id: number; bytes: string | null; bps: number | null; drills: number }>(sql`
    SELECT h.id AS herd_id,
           (SELECT b.size_bytes::text FROM backups b WHERE b.herd_id = h.id AND b.type = 'full' AND b.gone_at IS NULL ORDER BY b.stopped_at DESC LIMIT 1) AS bytes,
           (SELECT avg(d.restored_bytes * 1000.0 / d.restore_ms)::float8 FROM (SELECT restored_bytes, restore_ms FROM restore_drills
              WHERE herd_id = h.id AND ok AND restore_ms > 0 AND restored_bytes > 0 ORDER BY id DESC LIMIT 3) d) AS bps,
           (SELECT count(*)::int FROM restore_drills d WHERE d.herd_id = h.id AND d.ok) AS drills
    FROM herds h WHERE h.id = ANY(${sql.param(herdIds)}::int[])`);
  return new Map(
    r.rows.map((x) => [x.herd_id, { bytes: x.bytes === null ? null : Number(x.bytes), bytesPerSecond: x.bps, drills: x.drills }]),
  );
}

/** The confirmation page's prediction, in words. */
function predicted(e: { bytes: number | null; bytesPerSecond: number | null; drills: number } | undefined): string {
  if (!e?.bytes) return 'unknown: the herd has no full backup pgherd knows of';
  if (!e.bytesPerSecond)
    return `unknown: no restore drill of this herd has passed yet (a drill measures it); ${formatBytes(e.bytes)} to restore`;
  return `about ${formatDuration(e.bytes / e.bytesPerSecond)} for ${formatBytes(e.bytes)}, at the ${formatBytes(e.bytesPerSecond)}/s its last drills restored, plus the WAL to replay`;
}

interface State {
  restore: RestoreState;
  launch: LaunchState;
}

async function prepare(herds: HerdRef[], params: z.output<typeof restoreParams>, db: Db): Promise<Prepared> {
  // Its new herd's name and its place are the operation's: two herds would claim one name and one folder.
  if (herds.length > 1)
    throw refuse(
      'params',
      `a restore takes one herd (its new name, server and data directory are the operation's); ${herds.length} were given`,
    );
  const base = await prepareBackups(herds, db);
  const operationAt = new Map<number, Instant | null>();
  if (params.operationId !== undefined) for (const h of herds) operationAt.set(h.id, await operationStart(db, params.operationId, h.id));
  const taken = await db.execute<{ key: string }>(sql`
    SELECT e.id || '/' || h.name AS key FROM herds h JOIN environments e ON e.id = h.environment_id WHERE h.name = ${params.name}`);
  return {
    ...base,
    server: await loadRestoreServer(db, params.serverId),
    launch: params.instanceType && herds[0] ? await planLaunch(db, herds[0], params.instanceType) : null,
    operationAt,
    takenNames: new Set(taken.rows.map((r) => r.key)),
    estimates: await restoreEstimates(
      db,
      herds.map((h) => h.id),
    ),
  };
}

export const restoreAction = defineHerdAction({
  name: 'restore',
  control: asks('backups'),
  label: 'Restore to a new herd',
  // A new herd on a server of the environment, from the environment's backups: an admin's act.
  permission: 'admin',
  dangerous: true,
  // When to restore, and to what, is a person's decision (a drill is the scheduled kind).
  schedulable: false,
  runsAsConfirmed: true,
  params: {
    schema: restoreParams,
    fields: [
      {
        name: 'name',
        label: 'New herd',
        kind: 'text',
        emptyLabel: 'billing-restored',
        help: 'the restored herd\u2019s name, in the same environment',
      },
      {
        name: 'target',
        label: 'Restore to',
        kind: 'text',
        emptyLabel: 'latest',
        help: 'latest, time, lsn, name (a restore point) or before-operation',
      },
      {
        name: 'time',
        label: 'Time',
        kind: 'text',
        emptyLabel: '2026-11-25T21:00:00Z',
        help: 'with target time: the last transaction committed at or before it is the last one kept',
      },
      { name: 'lsn', label: 'LSN', kind: 'text', emptyLabel: '0/3000028', help: 'with target lsn' },
      {
        name: 'restorePoint',
        label: 'Restore point',
        kind: 'text',
        emptyLabel: '',
        help: 'with target name: a pg_create_restore_point name',
      },
      {
        name: 'operationId',
        label: 'Operation',
        kind: 'text',
        emptyLabel: '',
        help: 'with target before-operation: the operation to restore to just before',
      },
      ...placeFields('Server', {
        example: '/var/lib/postgresql/restores/orders-1/data',
        help: 'its folder (orders-1 here) must not exist: the restore makes it, and lays everything down inside it',
      }),
      {
        name: 'expiresInHours',
        label: 'Expires after (hours)',
        kind: 'text',
        emptyLabel: 'kept',
        help: 'then the worker tears it down (Tear down a restored herd, as the system)',
      },
    ],
  },
  state: (): State => ({ restore: newRestoreState(), launch: newLaunchState() }),
  prepare,
  plan: (h, { params, prepared }) => {
    const p = prepared.policies.get(h.id);
    const why = policyRefusal(h, p);
    if (why || !p) return why ?? refuse('not-applicable', 'no backup policy');
    const setup = prepared.setups.get(h.id);
    if (!setup) return refuse('not-applicable', `${h.label} is not configured for backups: there is nothing to restore from`);
    const launch = prepared.launch;
    if (launch instanceof Refusal) return launch;
    // A new instance: a server the launch step fills in (the later steps read it when they run).
    const server = launch ? serverToLaunch(launch) : prepared.server;
    const bad = launch ? undefined : serverRefusal(h, server, params.serverId);
    if (bad || !server) return bad ?? refuse('gone', 'no server');
    if (prepared.takenNames.has(`${h.environmentId}/${params.name}`))
      return refuse('not-applicable', `${h.environment} has a herd named ${params.name} already`);
    const target = recoveryTarget(params, prepared.operationAt.get(h.id) ?? null);
    if (!('options' in target)) return target;
    const source = h.members.find((m) => m.role === 'primary') ?? h.members[0];
    if (!source) return refuse('not-applicable', 'the herd has no members: pgherd does not know its version or port');
    const r: NewHerd = {
      h,
      params,
      launch,
      server,
      target,
      place: {
        server,
        port: params.port ?? source.port,
        dataDirectory: params.dataDirectory,
        pgVersion: source.pgVersion,
        sslCertFile: params.sslCertFile,
        sslKeyFile: params.sslKeyFile,
        clusterName: params.name,
      },
      expiresAt: params.expiresInHours ? `torn down ${params.expiresInHours} h after it is ready` : 'kept until torn down',
    };
    return {
      steps: [
        ...(launch
          ? [launchStep<State>(launch, server, (s) => s.launch, { kind: 'restore', name: `${h.environment}-${params.name}` })]
          : []),
        ...restoreSteps<State>(h, p, setup.stanza, r.place, target),
        registerHerdStep(r),
      ],
      facts: restoreFacts(r, setup.stanza, prepared.estimates.get(h.id)),
      // A type with no price is counted as unpriced in the plan's total, never left out.
      ...(launch ? { cost: { nowPerHour: 0, afterPerHour: launch.perHour } } : {}),
      warnings: [
        ...productionWarning(h),
        'the source herd is not touched; the new herd starts with no replicas, no DNS names and no backups of its own',
      ],
    };
  },
});

/** What the steps and facts of one restore to a new herd share: the source, the new herd's name and place, the target. */
interface NewHerd {
  h: HerdRef;
  params: z.output<typeof restoreParams>;
  launch: LaunchPlan | null;
  server: RestoreServer;
  target: RecoveryTarget;
  place: RestorePlace;
  /** When the new herd goes, in words. */
  expiresAt: string;
}

/** Registers the restored cluster as a herd of its own; its claim and its new instance become the herd's. */
function registerHerdStep({ h, params, server, target, place, expiresAt }: NewHerd): ActionStep<State> {
  return {
    name: 'register the new herd',
    does: {
      kind: 'restore.register',
      environment: h.environmentId,
      name: params.name,
      server: server.id,
      port: place.port,
      expires: params.expiresInHours ?? null,
    },
    says: `register ${h.environment}/${params.name} in the inventory: its primary ${server.hostname}:${place.port}, restored from ${h.label} to ${target.words}; ${expiresAt}`,
    timeoutMs: 30_000,
    run: async (x) => {
      const db = x.deps.db;
      const id = await db.transaction(async (tx) => {
        const r = await tx.execute<{ id: number }>(sql`
                INSERT INTO herds (environment_id, name, description, default_port, default_data_directory, pg_version, control_driver,
                                   restored_from_herd_id, restored_to, expires_at)
                VALUES (${h.environmentId}, ${params.name}, ${`Restored from ${h.label} to ${target.words} by operation #${x.deps.operation?.id ?? '?'}`},
                        ${place.port}, ${place.dataDirectory}, ${place.pgVersion}, 'pg_ctl', ${h.id}, ${target.words},
                        ${params.expiresInHours ? sql`now() + make_interval(hours => ${params.expiresInHours})` : null})
                RETURNING id`);
        const herdId = r.rows[0]?.id;
        if (herdId === undefined) throw new Error('the new herd was not inserted');
        await tx.execute(sql`
                INSERT INTO instances (herd_id, server_id, port, data_directory, pg_version, role, observed_role, state, last_observed_at)
                VALUES (${herdId}, ${server.id}, ${place.port}, ${place.dataDirectory}, ${place.pgVersion}, 'primary', 'primary', 'running', now())`);
        if (x.state.restore.claimId !== null)
          await tx.execute(
            sql`UPDATE restore_claims SET settled_at = now(), settled_how = ${`kept as herd ${String(herdId)}`}, kept_herd_id = ${herdId} WHERE id = ${x.state.restore.claimId}`,
          );
        // Its new instance is the herd's now: Tear down terminates it.
        if (x.state.launch.rowId !== null)
          await tx.execute(
            sql`UPDATE launched_instances SET kept_herd_id = ${herdId}, settled_how = ${`kept for herd ${String(herdId)}`} WHERE id = ${x.state.launch.rowId}`,
          );
        return herdId;
      });
      x.state.restore.kept = true;
      x.state.launch.kept = true;
      x.deps.outcome?.(
        `${h.environment}/${params.name} (herd ${id}) on ${server.hostname}:${place.port}, restored to ${target.words}; ready in ${Math.round((x.state.restore.rtoMs ?? 0) / 100) / 10} s`,
      );
    },
  };
}

/** The confirmation page's facts: from where, to what, onto which server, the new instance, the new herd, how long. */
function restoreFacts(
  { h, params, launch, server, target, place, expiresAt }: NewHerd,
  stanza: string,
  estimate: Parameters<typeof predicted>[0],
): Fact[] {
  return [
    { label: 'Restored from', value: `${h.label} (stanza ${stanza})` },
    { label: 'To', value: target.words },
    { label: 'Onto', value: `${server.hostname}:${place.port} ${place.dataDirectory}` },
    ...(launch
      ? [
          {
            label: 'New instance',
            value: `${launch.instanceType} like ${launch.like.hostname}, in ${launch.template.subnetId} (${launch.template.availabilityZone}): ${launchPrice(launch, params.expiresInHours)}, until torn down`,
          },
        ]
      : []),
    { label: 'New herd', value: `${h.environment}/${params.name}, ${expiresAt}` },
    { label: 'Expected duration', value: predicted(estimate) },
  ];
}
