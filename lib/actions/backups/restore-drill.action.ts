// Restore drill: proves a herd can be restored, and measures how long it takes. A marker row is written on
// the primary and archived; the latest backup and the archive are restored onto an empty server of the
// environment (the restore's own steps: the server proven empty, nothing over a running herd); the
// repository is verified (`pgbackrest verify`), the restored cluster checked (`pg_amcheck`) and the marker
// looked for; RTO (start to the first write the restored cluster accepted) and RPO (how old the newest
// marker found was when the restore began) are recorded with the verdict, and the restored cluster is
// taken away whatever happened. A drill that fails says which check failed and what it found.
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { defineHerdAction, productionWarning, type ActionStep, type Fact, type RunContext } from '@/lib/engine/define-action';
import { Refusal, refuse } from '@/lib/fleet/refusal';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { instanceClient } from '@/lib/fleet/pg-access';
import { ownName, ownTable, provenOwnTable, useOwnSchema } from '@/lib/fleet/own-schema';
import { binDir } from '@/lib/fleet/drivers';
import type { HerdPolicy } from '@/lib/fleet/backups/policy';
import { pgbackrest, repositoryOnlyConfig } from '@/lib/fleet/backups/pgbackrest';
import { execNoted } from '@/lib/actions/steps/exec-noted';
import {
  launchPrice,
  launchStep,
  newLaunchState,
  planLaunch,
  serverToLaunch,
  type LaunchPlan,
  type LaunchState,
} from '@/lib/actions/steps/launch';
import {
  policyRefusal,
  prepareBackups,
  secretsOf,
  stanzaRunner,
  writeHostFile,
  type BackupPrepared,
} from '@/lib/actions/steps/backup-steps';
import {
  placeFields,
  loadRestoreServer,
  recoveryTarget,
  type RecoveryTarget,
  newRestoreState,
  restoredEndpoint,
  restoreSteps,
  restoreTargetParams,
  oneServer,
  serverRefusal,
  type RestorePlace,
  type RestoreServer,
  type RestoreState,
} from '@/lib/actions/steps/restore-steps';
import { asks } from '@/lib/actions/drivers';

export const restoreDrillParams = z
  .object({
    /** latest (the default): the end of the archive, proven by a marker written now; time: a point in time. */
    target: z.enum(['latest', 'time']).default('latest'),
    time: restoreTargetParams.time,
    serverId: restoreTargetParams.serverId,
    instanceType: restoreTargetParams.instanceType,
    port: restoreTargetParams.port,
    dataDirectory: restoreTargetParams.dataDirectory,
    sslCertFile: restoreTargetParams.sslCertFile,
    sslKeyFile: restoreTargetParams.sslKeyFile,
  })
  .strict()
  .refine((p) => p.target !== 'time' || p.time, { message: 'a drill to a point in time needs the time', path: ['time'] })
  .refine(...oneServer);

/**
 * The table the drills write their markers to, on the source herd's primary: in pgherd's own schema, since
 * the marker is written (and read back in the restored copy) as pgherd's superuser role, and a table another
 * role made first could run its trigger as that role.
 */
export const MARKER_NAME = 'restore_drill_marker';
export const MARKER_TABLE = ownName(MARKER_NAME);
const MARKER_COLUMNS = 'id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), operation bigint';

interface DrillState {
  restore: RestoreState;
  launch: LaunchState;
  markerAt: Date | null;
  /** When the restore (its first step) began: the RPO is measured from here. */
  restoreFrom: number | null;
  failedAt: string | null;
  cause: string | null;
  recorded: boolean;
  /** Why the drill did not run (its scratch place was not free): no verdict on the herd. */
  notRun: string | null;
  rpoMs: number | null;
  restoredBytes: number | null;
  restoreMs: number | null;
  startedAt: Date;
}

interface Prepared extends BackupPrepared {
  server: RestoreServer | null;
  /** Per herd, a new instance to launch (instanceType), or why there can be none. */
  launches: Map<number, LaunchPlan | Refusal>;
  /** The operation's herds (their ranks give each its own port). */
  herdIds: number[];
}

/**
 * Where one herd of a drill goes: its own folder beside the one given (`<folder>-<stanza>`), and the port
 * given plus the herd's rank among the operation's herds (by id), so that drills running at once on one
 * scratch server (ticked together, or a rule's) never meet. The same at planning (the plan shows it) and
 * when each target runs (alone: its rank is read from the operation's targets).
 */
export function drillPlace(
  given: { dataDirectory: string; port: number },
  stanza: string,
  rank: number,
): { dataDirectory: string; port: number } {
  return {
    dataDirectory: path.join(`${path.dirname(given.dataDirectory)}-${stanza}`, path.basename(given.dataDirectory)),
    port: given.port + rank,
  };
}

/** A herd's rank among `herdIds` (ascending ids). */
const rankOf = (herdIds: number[], id: number) => Math.max(0, [...new Set(herdIds)].sort((a, b) => a - b).indexOf(id));

/**
 * What `pgbackrest verify --verbose` found for the stanza: 'ok', else its report's lines that are not (the
 * stanza's status, the backups and archive ids with files missing or invalid), in one line.
 */
export function verifyVerdict(report: string, stanza: string): string {
  const text = report.replace(/^\S+ \S+ P\d+ +\w+: /gm, '').replace(/\n\s+/g, '\n');
  const at = text.indexOf(`stanza: ${stanza}\n`);
  if (at < 0) return `no report for stanza ${stanza}: ${text.split('\n').filter(Boolean).slice(-3).join(' | ')}`;
  const lines = text.slice(at).split('\n').slice(1);
  const block: string[] = [];
  for (const l of lines) {
    if (!l || /^stanza: |verify command end/.test(l)) break;
    block.push(l.trim());
  }
  if (block[0] === 'status: ok') return 'ok';
  const clean = (l: string) =>
    /^missing: 0, checksum invalid: 0, size invalid: 0, other: 0$/.test(l) ||
    /status: valid\b/.test(l) ||
    /total WAL checked: (\d+), total valid WAL: \1$/.test(l);
  const bad = block.filter((l) => !clean(l));
  return bad.join(' | ').slice(0, 800) || block.join(' | ');
}

/** Keeps what a failing step said: the drill's verdict names the check and what it found. */
function noting(s: ActionStep<DrillState>): ActionStep<DrillState> {
  return {
    ...s,
    run: async (x) => {
      try {
        await s.run(x);
      } catch (err) {
        x.state.failedAt ??= s.name;
        x.state.cause ??= `${s.name}: ${(err as Error).message.split('\n')[0] ?? ''}`.slice(0, 1000);
        throw err;
      }
    },
  };
}

async function onPrimary<T>(primary: InstanceRef, f: (c: ReturnType<typeof instanceClient>) => Promise<T>): Promise<T> {
  const c = instanceClient(primary, { connectionTimeoutMillis: 3000, statement_timeout: 10_000, application_name: 'pgherd-drill' });
  c.on('error', () => {});
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Writes the drill's figures and verdict (once: the last step, or the cleanup of a drill cut short). */
/** The urgent target that asked this one to stop, or null. */
async function preemptedBy(db: Db, targetId: number | undefined): Promise<number | null> {
  if (targetId === undefined) return null;
  const r = await db.execute<{ by: number | null }>(sql`SELECT preempted_by::float8 AS by FROM operation_targets WHERE id = ${targetId}`);
  return r.rows[0]?.by ?? null;
}

async function record(db: Db, h: HerdRef, x: RunContext<DrillState>, ok: boolean) {
  if (x.state.recorded) return;
  x.state.recorded = true;
  const s = x.state;
  await db.execute(sql`
    INSERT INTO restore_drills (herd_id, operation_id, started_at, ok, cause, rto_ms, rpo_ms, restored_bytes, restore_ms)
    VALUES (${h.id}, ${x.deps.operation?.id ?? null}, ${s.startedAt}, ${ok}, ${ok ? '' : (s.cause ?? 'the drill stopped before it ended')},
            ${s.restore.rtoMs}, ${s.rpoMs}, ${s.restoredBytes}, ${s.restoreMs})
    ON CONFLICT (operation_id, herd_id) DO NOTHING`);
}

/** Per herd, its new instance's launch (or why there can be none); empty without a type. */
async function launchesFor(db: Db, herds: HerdRef[], type: string | undefined): Promise<Map<number, LaunchPlan | Refusal>> {
  if (!type) return new Map();
  return new Map(await Promise.all(herds.map(async (h) => [h.id, await planLaunch(db, h, type)] as const)));
}

/**
 * The drill's new instance: launched per herd and terminated when the drill ends. An instance that cannot
 * be had (no capacity, a host key its console does not show) says nothing of the herd's backups: the drill
 * did not run, and no verdict is recorded.
 */
function launchForDrill(l: LaunchPlan, server: RestoreServer, h: { name: string; environment: string }): ActionStep<DrillState> {
  const step = launchStep<DrillState>(l, server, (s) => s.launch, { kind: 'drill', name: `${h.environment}-${h.name}-drill` });
  return {
    ...step,
    run: async (x) => {
      try {
        await step.run(x);
      } catch (err) {
        x.state.notRun = `its new instance could not be had: ${(err as Error).message}`;
        throw err;
      }
    },
  };
}

export const restoreDrillAction = defineHerdAction({
  name: 'restore-drill',
  control: asks('backups'),
  label: 'Restore drill',
  // The drill lays a herd out on a scratch server: an admin says which.
  permission: 'admin',
  dangerous: false,
  params: {
    schema: restoreDrillParams,
    fields: [
      { name: 'target', label: 'Restore to', kind: 'text', emptyLabel: 'latest', help: 'latest (proven by a marker written now) or time' },
      {
        name: 'time',
        label: 'Point in time',
        kind: 'text',
        emptyLabel: '2026-11-25T21:00:00Z',
        help: 'with time: the drill restores to it; a backup kept must have ended by then',
      },
      ...placeFields('Scratch server', {
        example: '/var/lib/postgresql/drills/drill/data',
        help: 'its folder must not exist; each herd gets <folder>-<stanza> and the port plus its rank among the herds; removed after the drill',
      }),
    ],
  },
  state: (): DrillState => ({
    restore: newRestoreState(),
    launch: newLaunchState(),
    markerAt: null,
    restoreFrom: null,
    failedAt: null,
    cause: null,
    recorded: false,
    notRun: null,
    rpoMs: null,
    restoredBytes: null,
    restoreMs: null,
    startedAt: new Date(),
  }),
  prepare: async (herds, params, db): Promise<Prepared> => ({
    ...(await prepareBackups(herds, db)),
    server: await loadRestoreServer(db, params.serverId),
    launches: await launchesFor(db, herds, params.instanceType),
    herdIds: herds.map((h) => h.id),
  }),
  plan: (h, { params, prepared }) => {
    const p = prepared.policies.get(h.id);
    const why = policyRefusal(h, p);
    if (why || !p) return why ?? refuse('not-applicable', 'no backup policy');
    const setup = prepared.setups.get(h.id);
    if (!setup) return refuse('not-applicable', `${h.label} is not configured for backups: there is nothing to drill`);
    const launch = prepared.launches.get(h.id) ?? null;
    if (launch instanceof Refusal) return launch;
    // A new instance per herd: a server the launch step fills in (the later steps read it when they run).
    const server = launch ? serverToLaunch(launch) : prepared.server;
    const bad = launch ? undefined : serverRefusal(h, server, params.serverId);
    if (bad || !server) return bad ?? refuse('gone', 'no server');
    const primary = h.members.find((m) => m.role === 'primary' && m.state === 'running');
    if (!primary) return refuse('topology', 'the herd has no running primary to write the drill\u2019s marker on');
    const runner = stanzaRunner(p, primary);
    if (!runner) return refuse('topology', 'no host to verify the repository from');
    const stanza = setup.stanza;
    const basePort = params.port ?? primary.port;
    const place = scratchPlace(h, params, primary, server, stanza, basePort, rankOf(prepared.herdIds, h.id));
    if (place instanceof Refusal) return place;
    const target = recoveryTarget(params, null);
    if (target instanceof Refusal) return target;
    const restore = restoreSteps<DrillState>(h, p, stanza, place, target);
    const [checkEmpty, ...restRestore] = restore;
    if (!checkEmpty) return refuse('not-applicable', 'no restore steps');
    const d: Drill = { h, p, params, primary, runner, stanza, basePort, place, target };
    // Registered first, so it runs last: a drill that fails anywhere is recorded with its cause.
    const recordFailure = recordFailureStep(h);
    return {
      steps: [
        // The instance first: one that cannot be had leaves the herd untouched (no marker written on its primary).
        ...(launch ? [launchForDrill(launch, server, h)] : []),
        noting(target.at ? drillToTimeStep(d, target.at, recordFailure) : markerStep(d, recordFailure)),
        noting(scratchFreeStep(d, checkEmpty)),
        ...restRestore.map(noting),
        noting(verifyStep(d)),
        noting(checkRestoredStep(d)),
        recordDrillStep(h),
      ],
      facts: drillFacts(d, launch),
      // A type with no price is counted as unpriced in the plan's total, never left out.
      ...(launch ? { cost: { nowPerHour: 0, afterPerHour: launch.perHour } } : {}),
      warnings: productionWarning(h),
    };
  },
});

type DrillParams = z.output<typeof restoreDrillParams>;

/** What the steps of one herd's drill share: the herd, its policy and primary, where the repository is read, the scratch place, the target. */
interface Drill {
  h: HerdRef;
  p: HerdPolicy;
  params: DrillParams;
  /** Where the marker is written. */
  primary: InstanceRef;
  /** Where the repository is verified from. */
  runner: NonNullable<ReturnType<typeof stanzaRunner>>;
  stanza: string;
  /** The port given (else the primary's): each herd's is this plus its rank. */
  basePort: number;
  /** Where the restored cluster runs: its port set again from the operation's targets when the drill runs alone. */
  place: RestorePlace;
  target: RecoveryTarget;
}

/** The herd's scratch place on the server (its own folder and port), or why its port would be out of range. */
function scratchPlace(
  h: HerdRef,
  params: DrillParams,
  primary: InstanceRef,
  server: RestoreServer,
  stanza: string,
  basePort: number,
  rank: number,
): RestorePlace | Refusal {
  const at_ = drillPlace({ dataDirectory: params.dataDirectory, port: basePort }, stanza, rank);
  if (at_.port > 65535)
    return refuse('params', `its drill would listen on port ${at_.port} (the port given plus its place in the list): give a lower port`);
  return {
    server,
    port: at_.port,
    dataDirectory: at_.dataDirectory,
    pgVersion: primary.pgVersion,
    sslCertFile: params.sslCertFile,
    sslKeyFile: params.sslKeyFile,
    clusterName: `${h.name}-drill`,
  };
}

/** Records a drill that failed, with its cause (or says it did not run): once, whatever happened. */
function recordFailureStep(h: HerdRef): ActionStep<DrillState> {
  return {
    name: 'record a drill that failed',
    does: { kind: 'drill.record-failure', herd: h.id },
    says: 'a drill that fails is recorded with its cause',
    timeoutMs: 30_000,
    givesBack: true,
    run: async (x) => {
      if (x.state.recorded) return;
      if (x.state.notRun !== null) return void x.deps.outcome?.(`drill not run: ${x.state.notRun}`);
      // Stopped by an urgent operation on the herd (lib/engine/preempt.ts): it says nothing of the
      // herd's backups, so no verdict is recorded; the drill can be planned again.
      const by = await preemptedBy(x.deps.db, x.deps.targetId);
      if (by !== null)
        return void x.deps.outcome?.(`drill not run to its end: preempted by the urgent target ${String(by)}; no verdict recorded`);
      await record(x.deps.db, h, x, false);
      x.deps.outcome?.(`drill failed: ${x.state.cause ?? 'it stopped before it ended'}`);
    },
  };
}

/** A drill to a point in time writes no marker: it says where it restores to. */
function drillToTimeStep({ target }: Drill, at: Date, recordFailure: ActionStep<DrillState>): ActionStep<DrillState> {
  return {
    name: `drill to ${target.words}`,
    does: { kind: 'drill.to-time', at: at.toISOString() },
    says: `restore the herd as it was at ${target.words} (a backup kept must have ended by then), and check that it recovered to it`,
    timeoutMs: 10_000,
    run: (x) => {
      x.note({ stdout: `drill to ${target.words}` });
      return Promise.resolve();
    },
    always: recordFailure,
  };
}

/** Writes a marker row on the primary, switches the WAL segment and waits until the archive has it. */
function markerStep({ p, primary }: Drill, recordFailure: ActionStep<DrillState>): ActionStep<DrillState> {
  const timeout = p.policy.archiveTimeoutSeconds;
  return {
    name: 'write the marker and archive it',
    does: { kind: 'drill.marker', instance: primary.id, table: MARKER_TABLE },
    says: `write a marker row on ${primary.label} (${MARKER_TABLE}), switch the WAL segment and wait for the archive to take it (up to ${2 * timeout + 30} s)`,
    timeoutMs: (2 * timeout + 60) * 1000,
    run: async (x) => {
      const r = await onPrimary(primary, async (c) => {
        // search_path pinned, schema and table proven pgherd's own plain table before the write.
        await ownTable(c, MARKER_NAME, MARKER_COLUMNS);
        const m = await c.query<{ at: Date }>(`INSERT INTO ${MARKER_TABLE} (operation) VALUES ($1) RETURNING at`, [
          x.deps.operation?.id ?? null,
        ]);
        const w = await c.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal');
        return { at: m.rows[0]?.at ?? null, wal: w.rows[0]?.wal ?? '' };
      });
      x.state.markerAt = r.at;
      const deadline = Date.now() + (2 * timeout + 30) * 1000;
      for (;;) {
        const archived = await onPrimary(primary, async (c) => {
          const a = await c.query<{ ok: boolean }>('SELECT coalesce(last_archived_wal >= $1, false) AS ok FROM pg_stat_archiver', [r.wal]);
          return a.rows[0]?.ok === true;
        });
        if (archived) break;
        if (Date.now() > deadline || x.signal.aborted)
          throw new Error(`${r.wal}, which holds the marker, was not archived within ${2 * timeout + 30} s: archiving fails or lags`);
        await new Promise((res) => setTimeout(res, 250));
      }
      x.note({ stdout: `marker written at ${r.at?.toISOString() ?? '?'}; ${r.wal} archived` });
    },
    always: recordFailure,
  };
}

/**
 * The restore's first step (the scratch place proven free), the drill's port set from its rank among the
 * operation's herds first; a place that is not free means the drill did not run.
 */
function scratchFreeStep({ h, params, stanza, basePort, place }: Drill, checkEmpty: ActionStep<DrillState>): ActionStep<DrillState> {
  return {
    ...checkEmpty,
    run: async (x) => {
      x.state.restoreFrom = Date.now();
      // Run alone, the target's port is its rank among the operation's herds, as the plan showed.
      if (x.deps.operation) {
        const r = await x.deps.db.execute<{ herd_id: number }>(
          sql`SELECT herd_id FROM operation_targets WHERE operation_id = ${x.deps.operation.id} AND herd_id IS NOT NULL`,
        );
        place.port = drillPlace(
          { dataDirectory: params.dataDirectory, port: basePort },
          stanza,
          rankOf(
            r.rows.map((t) => t.herd_id),
            h.id,
          ),
        ).port;
      }
      try {
        await checkEmpty.run(x);
      } catch (err) {
        // The scratch place is not free (a folder there, something on the port): the drill did not run,
        // which says nothing of the herd's backups. No verdict is recorded for it.
        if (err instanceof Refusal) x.state.notRun = err.message;
        throw err;
      }
    },
  };
}

/** pgbackrest verify with the repository's configuration written afresh: every backup and archived segment read back. */
function verifyStep({ h, p, runner, stanza }: Drill): ActionStep<DrillState> {
  return {
    name: 'verify the repository',
    does: { kind: 'drill.verify', stanza },
    says: `pgbackrest verify, with the repository's configuration written afresh from the policy and ${h.environment}'s passphrase as pgherd holds them now: every backup's files and every archived WAL segment of stanza ${stanza} read back and checked`,
    timeoutMs: 6 * 3600_000,
    run: async (x) => {
      const home = path.join(runner.config(stanza).replace(/\/[^/]+$/, ''), 'drill', stanza);
      const conf = path.join(home, 'pgbackrest.conf');
      await writeHostFile(x.deps, runner, x, conf, repositoryOnlyConfig(p.policy, stanza, home, secretsOf(h)), [
        path.join(home, 'log'),
        path.join(home, 'lock'),
      ]);
      try {
        // verify exits 0 whatever it finds (pgBackRest 2.45): its verdict is the stanza's status in its report.
        const r = await execNoted(
          x.deps,
          runner,
          x,
          pgbackrest(conf, stanza, '--log-level-console=info', '--verbose', 'verify'),
          6 * 3600_000 - 60_000,
        );
        const said = `${r.stdout}\n${r.stderr}`.trim();
        const verdict = verifyVerdict(said, stanza);
        if (r.code !== 0 || verdict !== 'ok') {
          throw new Error(
            /CryptoError|cipher|decrypt|is or was the repo encrypted/i.test(said)
              ? `the repository does not decrypt with ${h.environment}'s passphrase as pgherd holds it now (PGHERD_PG_CONFIG backup.cipherPassFile): it was changed since the repository was made, or is another environment's; the next Configure backups would leave the herd's WAL with nowhere to go (${said.split('\n').slice(-2).join(' | ')})`
              : `the repository does not verify: ${verdict}`,
          );
        }
      } finally {
        await execNoted(x.deps, runner, x, ['rm', '-f', '--', conf], 20_000).catch(() => {});
      }
    },
  };
}

/** pg_amcheck on the restored cluster, then what it recovered to: the time and no further, or the marker. */
function checkRestoredStep({ place, target }: Drill): ActionStep<DrillState> {
  const at = target.at;
  return {
    name: 'check the restored cluster',
    does: { kind: 'drill.amcheck', server: place.server.id, port: place.port },
    says: `pg_amcheck on the restored cluster (every database; amcheck installed where missing), and ${at ? `check that it recovered to ${target.words} and no further` : 'look for the marker'}`,
    timeoutMs: 6 * 3600_000,
    run: async (x) => {
      const socket = path.join(path.dirname(place.dataDirectory), 'run');
      const r = await execNoted(
        x.deps,
        { ssh: place.server.ssh },
        x,
        [`${binDir(place.pgVersion)}/pg_amcheck`, '-h', socket, '-p', String(place.port), '-U', 'postgres', '--all', '--install-missing'],
        6 * 3600_000 - 60_000,
      );
      if (r.code !== 0) throw new Error(`pg_amcheck found corruption: ${(r.stdout || r.stderr).trim().split('\n').slice(0, 3).join(' ')}`);
      const c = instanceClient(restoredEndpoint(place), {
        connectionTimeoutMillis: 3000,
        statement_timeout: 10_000,
        application_name: 'pgherd-drill',
      });
      c.on('error', () => {});
      await c.connect();
      try {
        await checkRecovered(c, x, at);
      } catch (err) {
        if ((err as { code?: string }).code === '42P01')
          throw new Error(`the marker table is not in the restored cluster: the archive does not hold the WAL up to it`);
        throw err;
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}

/** In the restored cluster: recovered to the time `at` and no further, else the marker there; the RPO and size recorded. */
async function checkRecovered(c: ReturnType<typeof instanceClient>, x: RunContext<DrillState>, at: Date | undefined): Promise<void> {
  if (at) {
    // To a time: the last transaction replayed is at or before it (none after), and the RPO is how far before.
    const t = await c.query<{ replayed: Date | null; bytes: string }>(
      `SELECT pg_last_xact_replay_timestamp() AS replayed, (SELECT sum(pg_database_size(oid))::text FROM pg_database) AS bytes`,
    );
    const replayed = t.rows[0]?.replayed ?? null;
    x.state.restoredBytes = Number(t.rows[0]?.bytes ?? 0);
    if (replayed && replayed.getTime() > at.getTime())
      throw new Error(`the restored cluster replayed a transaction of ${replayed.toISOString()}, after ${at.toISOString()}`);
    x.state.rpoMs = replayed ? at.getTime() - replayed.getTime() : null;
    return;
  }
  // The copy holds whatever the source held: the marker's schema and table are proven pgherd's own
  // there too before pgherd's superuser reads them (a view or a rule would run as the reader).
  await useOwnSchema(c, false).catch((err: unknown) => {
    if (err instanceof Refusal && /does not exist/.test(err.message))
      throw new Error(`the marker table is not in the restored cluster: the archive does not hold the WAL up to it`);
    throw err;
  });
  if (!(await provenOwnTable(c, MARKER_NAME)))
    throw new Error(`the marker table is not in the restored cluster: the archive does not hold the WAL up to it`);
  const m = await c.query<{ at: Date | null; bytes: string }>(
    `SELECT (SELECT max(at) FROM ${MARKER_TABLE}) AS at, (SELECT sum(pg_database_size(oid))::text FROM pg_database) AS bytes`,
  );
  const newest = m.rows[0]?.at ?? null;
  x.state.restoredBytes = Number(m.rows[0]?.bytes ?? 0);
  if (!newest || !x.state.markerAt || newest.getTime() < x.state.markerAt.getTime())
    throw new Error(
      `the marker written at ${x.state.markerAt?.toISOString() ?? '?'} is not in the restored cluster (newest found: ${newest?.toISOString() ?? 'none'}): the archive does not hold the WAL up to it`,
    );
  x.state.rpoMs = Math.max(0, (x.state.restoreFrom ?? Date.now()) - newest.getTime());
}

/** Records the drill's verdict, RTO and RPO; the restored cluster is then taken away. */
function recordDrillStep(h: HerdRef): ActionStep<DrillState> {
  return {
    name: 'record the drill',
    does: { kind: 'drill.record', herd: h.id },
    says: 'record the verdict, RTO and RPO (the restored cluster is then taken away)',
    timeoutMs: 30_000,
    run: async (x) => {
      x.state.restoreMs = x.state.restore.rtoMs;
      await record(x.deps.db, h, x, true);
      x.deps.outcome?.(
        `restore proven: RTO ${((x.state.restore.rtoMs ?? 0) / 1000).toFixed(1)} s, RPO ${((x.state.rpoMs ?? 0) / 1000).toFixed(1)} s`,
      );
    },
  };
}

/** The confirmation page's facts: what is restored, onto where, and the new instance when there is one. */
function drillFacts({ stanza, place, target }: Drill, launch: LaunchPlan | null): Fact[] {
  return [
    {
      label: 'Restores',
      value: target.at
        ? `stanza ${stanza}: a backup that ended by ${target.words}, and the archive up to then`
        : `stanza ${stanza}: the latest backup and the archive`,
    },
    { label: 'Onto', value: `${place.server.hostname}:${place.port} ${place.dataDirectory} (taken away afterwards)` },
    ...(launch
      ? [
          {
            label: 'New instance',
            value: `${launch.instanceType} like ${launch.like.hostname}, in ${launch.template.subnetId} (${launch.template.availabilityZone}): ${launchPrice(launch)}, terminated when the drill ends`,
          },
        ]
      : []),
  ];
}
