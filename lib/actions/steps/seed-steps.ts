// A new replica laid out on an empty server (one of the inventory's, or an instance just launched): the
// folder claimed, seeded from the herd's backup repository (`pgbackrest restore --type=standby`), or
// with pg_basebackup from a replica, or from the primary as the last resort; given its own settings and
// restore_command (WAL it finds neither on its upstream nor in its own pg_wal comes from the
// repository, so it cannot fall off the primary's WAL however long the seed took); started; streaming
// from the primary and caught up; then registered as a member, and the herd's read names pointed at it.
// Whatever fails before the registration, what was laid down is taken away again (claimStep's cleanup).
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { lsnDiff } from '@/lib/adapters/format/lsn';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { replicationUser } from '@/lib/actions/steps/topology-steps';
import { replicationConninfo } from '@/lib/actions/steps/replication-conninfo';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { claimStep, memberConfigStep, restoredEndpoint, socketDirOf, type RestorePlace, type RestoreState } from './restore-steps';
import type { LaunchState } from '@/lib/actions/steps/launch';
import type { ActionStep, RunContext } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { binsOf, buildTool, driverFor } from '@/lib/fleet/drivers';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, shown, type Observed } from '@/lib/fleet/observe';
import { refreshFleet } from '@/lib/fleet/refresher';
import type { HerdPolicy } from '@/lib/fleet/backups/policy';
import { archiveCommand, memberConfigPath, pgbackrest, restoreCommand } from '@/lib/fleet/backups/pgbackrest';

/** Where a new replica's data comes from. */
export type Seed = { kind: 'repository'; stanza: string } | { kind: 'replica'; from: InstanceRef } | { kind: 'primary'; from: InstanceRef };

export interface SeedState {
  restore: RestoreState;
  launch: LaunchState;
  /** The member registered (its id), once it is. */
  instanceId: number | null;
  /** When the seed began and when the replica first streamed caught up (ms since). */
  seedMs: number | null;
  catchUpMs: number | null;
}

export const newSeedState = (restore: RestoreState, launch: LaunchState): SeedState => ({
  restore,
  launch,
  instanceId: null,
  seedMs: null,
  catchUpMs: null,
});

/** The replica's name on its upstream (pg_stat_replication's application_name): its server's, as pgherd's re-pointing names it. */
export const walReceiverName = (hostname: string) => hostname.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 63);

/** What the steps of one new replica share: the herd, its primary, where it goes, how it is seeded, the options. */
interface ReplicaSeed<S extends SeedState> {
  h: HerdRef;
  primary: InstanceRef;
  pl: RestorePlace;
  seed: Seed;
  backups: { policy: HerdPolicy; stanza: string } | null;
  opts: { catchUpBytes: number; register: (x: RunContext<S>, id: number) => Promise<void> | void };
  /** Its server over SSH (filled in by a launch when it runs). */
  srv: { ssh: SshTarget };
  /** Its server and port: the launched instance's hostname once a launch has run, the plan's words before. */
  where: () => string;
}

/** The steps that lay out, seed, start and register a replica of `h` at `pl`. */
export function seedSteps<S extends SeedState>(
  h: HerdRef,
  primary: InstanceRef,
  pl: RestorePlace,
  seed: Seed,
  backups: { policy: HerdPolicy; stanza: string } | null,
  opts: { catchUpBytes: number; register: (x: RunContext<S>, id: number) => Promise<void> | void },
): ActionStep<S>[] {
  const z: ReplicaSeed<S> = {
    h,
    primary,
    pl,
    seed,
    backups,
    opts,
    srv: { ssh: pl.server.ssh },
    where: () => `${pl.server.hostname}:${pl.port}`,
  };
  return [
    claimStep<S>(pl),
    ...(backups ? [memberConfigStep<S>(h, backups.policy, backups.stanza, pl)] : []),
    seedDataStep(z),
    replicaSettingsStep(z),
    startCaughtUpStep(z),
    registerStep(z),
  ];
}

/** The data laid down: pgbackrest restore --type=standby from the repository, else pg_basebackup from a member. */
function seedDataStep<S extends SeedState>(z: ReplicaSeed<S>): ActionStep<S> {
  const { primary, pl, seed, srv } = z;
  const seedWords =
    seed.kind === 'repository'
      ? `pgbackrest restore --type=standby of stanza ${seed.stanza} (the herd's latest backup, from its repository: nothing is read from the primary)`
      : `pg_basebackup -X stream from ${seed.from.label} (${seed.kind === 'primary' ? 'the primary: it reads the whole database from it' : 'a replica: the primary is not read'})`;
  return {
    name: seed.kind === 'repository' ? 'seed it from the backup repository' : `seed it from ${seed.from.label}`,
    does:
      seed.kind === 'repository'
        ? { kind: 'replica.seed-repository', stanza: seed.stanza, dataDirectory: pl.dataDirectory }
        : { kind: 'replica.seed-basebackup', from: memberArg(seed.from), dataDirectory: pl.dataDirectory },
    says: `${seedWords} into ${pl.dataDirectory}`,
    timeoutMs: 24 * 3600_000,
    // An urgent operation on the herd (a spot evacuation) stops it at once: the claim's cleanup takes away what it laid down.
    preemptible: true,
    run: async (x) => {
      x.state.seedMs = Date.now();
      await execNotedOk(x.deps, srv, x, ['mkdir', '-m', '0700', '--', pl.dataDirectory], 20_000);
      if (seed.kind === 'repository') {
        const conf = memberConfigPath(pl.dataDirectory);
        await execNotedOk(x.deps, srv, x, pgbackrest(conf, seed.stanza, '--type=standby', 'restore'), 24 * 3600_000 - 60_000);
      } else {
        await execNotedOk(
          x.deps,
          srv,
          x,
          // The build the replica will run, where it has the client tools; else the major's own.
          buildTool(
            primary,
            'pg_basebackup',
            '-d',
            await replicationConninfo(x.deps, srv, x, seed.from, { user: replicationUser() }),
            '-D',
            pl.dataDirectory,
            '-X',
            'stream',
            '-c',
            'fast',
            '--no-password',
          ),
          24 * 3600_000 - 60_000,
        );
      }
      x.state.seedMs = Date.now() - x.state.seedMs;
      x.note({ stdout: `seeded in ${x.state.seedMs} ms` });
    },
  };
}

/** Its own settings (port, address, socket directory, primary_conninfo, restore_command when the herd has backups, TLS) and standby.signal. */
function replicaSettingsStep<S extends SeedState>(z: ReplicaSeed<S>): ActionStep<S> {
  const { primary, pl, backups, srv } = z;
  return {
    name: 'give it its own settings',
    does: {
      kind: 'replica.settings',
      port: pl.port,
      address: pl.server.address,
      upstream: memberArg(primary),
      restoreCommand: !!backups,
      ssl: [pl.sslCertFile ?? null, pl.sslKeyFile ?? null],
    },
    says: `set its port ${pl.port}, listen address ${pl.server.address}, socket directory, primary_conninfo to ${primary.label} (user ${replicationUser()}, the server's certificate verified where its environment has a CA)${backups ? `, restore_command and archive_command through the repository (stanza ${backups.stanza})` : ', no restore_command (the herd has no backups configured)'}${pl.sslCertFile ? ', its TLS certificate' : ''}; standby.signal`,
    timeoutMs: 30_000,
    run: async (x) => {
      const lines = [
        '# pgherd: a replica added to the herd (Add replica).',
        `port = ${pl.port}`,
        `listen_addresses = '${pl.server.address}'`,
        `unix_socket_directories = '${socketDirOf(pl)}'`,
        `cluster_name = '${pl.clusterName}'`,
        `hot_standby = on`,
        `primary_conninfo = '${(
          await replicationConninfo(x.deps, srv, x, primary, {
            user: replicationUser(),
            application_name: walReceiverName(pl.server.hostname),
          })
        )
          .replace(/\\/g, '\\\\')
          .replace(/'/g, "''")}'`,
        `primary_slot_name = ''`,
        ...(backups
          ? [
              `restore_command = '${restoreCommand(pl.dataDirectory, backups.stanza).replace(/'/g, "''")}'`,
              `archive_command = '${archiveCommand(pl.dataDirectory, backups.stanza).replace(/'/g, "''")}'`,
            ]
          : [`restore_command = ''`]),
        ...(pl.sslCertFile ? [`ssl_cert_file = '${pl.sslCertFile}'`] : []),
        ...(pl.sslKeyFile ? [`ssl_key_file = '${pl.sslKeyFile}'`] : []),
        '',
      ].join('\n');
      await execNotedOk(
        x.deps,
        srv,
        x,
        // Its socket directory too: made with pgBackRest's folders where the herd has backups, not otherwise.
        [
          'sh',
          '-c',
          'mkdir -p -m 0700 -- "$2" && cat >> "$1/postgresql.auto.conf" && : > "$1/standby.signal"',
          'pgherd-settings',
          pl.dataDirectory,
          socketDirOf(pl),
        ],
        20_000,
        { stdin: lines },
      );
    },
  };
}

/** Started with pg_ctl, then waited for until it streams from the primary, caught up; a replica that stops says its log. */
function startCaughtUpStep<S extends SeedState>(z: ReplicaSeed<S>): ActionStep<S> {
  const { primary, pl, opts, srv, where } = z;
  const bins = binsOf(primary);
  const control = { pgVersion: primary.pgVersion, dataDirectory: pl.dataDirectory, binDir: primary.binDir };
  return {
    name: 'start it and wait until it streams, caught up',
    does: { kind: 'replica.start', server: pl.server.id, dataDirectory: pl.dataDirectory, port: pl.port, upstream: memberArg(primary) },
    says: `start it (pg_ctl from ${bins}); wait until it streams from ${primary.label} and has replayed what the primary had written by then (within ${opts.catchUpBytes} bytes)`,
    timeoutMs: 24 * 3600_000,
    // Stopped for an urgent operation, the claim's cleanup stops it again and takes it away.
    preemptible: true,
    run: async (x) => {
      x.state.restore.started = true;
      const started = Date.now();
      const log = path.join(pl.dataDirectory, 'pg_ctl.log');
      const logSays = async () => {
        const r = await execNoted(x.deps, srv, x, ['tail', '-n', '200', '--', log], 20_000);
        const said = r.stdout.split('\n').filter((l) => /\b(FATAL|PANIC):/.test(l));
        return said.slice(-2).join(' | ') || r.stdout.trim().split('\n').slice(-2).join(' | ');
      };
      const start = await execNoted(x.deps, srv, x, driverFor('pg_ctl').start(control), 180_000);
      if (start.code !== 0) throw new Error(`the new replica did not start: ${await logSays()}`);
      const up = Date.now() - started;
      let streaming = 0;
      const o = await caughtUp(
        pl,
        primary,
        opts.catchUpBytes,
        x.signal,
        async () => {
          const st = await execNoted(x.deps, srv, x, [`${bins}/pg_ctl`, '-D', pl.dataDirectory, 'status'], 20_000);
          return st.code === 0 ? null : `the new replica stopped: ${await logSays()}`;
        },
        () => (streaming = Date.now() - started),
      );
      x.state.catchUpMs = Date.now() - started;
      x.note({
        stdout: `${where()} accepted connections ${up} ms after pg_ctl start, streamed from ${primary.label} after ${streaming} ms, caught up (replayed ${shown(o.lsn)}) after ${x.state.catchUpMs} ms; system ${shown(o.systemIdentifier)}`,
      });
    },
  };
}

/** Registered as a member in the inventory (the claim and the launch settled as kept in the same transaction), then the caller's own registration. */
function registerStep<S extends SeedState>(z: ReplicaSeed<S>): ActionStep<S> {
  const { h, primary, pl, seed, opts, where } = z;
  return {
    name: 'register it as a member of the herd',
    does: { kind: 'replica.register', herd: h.id, server: pl.server.id, port: pl.port, dataDirectory: pl.dataDirectory },
    says: `register ${where()} in the inventory: a replica of ${h.label} streaming from ${primary.label}`,
    timeoutMs: 30_000,
    run: async (x) => {
      const id = await x.deps.db.transaction(async (tx) => {
        const r = await tx.execute<{ id: number }>(sql`
          INSERT INTO instances (herd_id, server_id, port, data_directory, pg_version, bin_dir, role, observed_role, state,
                                 upstream_instance_id, last_observed_at)
          SELECT ${h.id}, ${pl.server.id}, ${pl.port}, ${pl.dataDirectory}, ${primary.pgVersion}, ${primary.binDir}, 'replica', 'replica',
                 'running', ${primary.id}, now()
          RETURNING id`);
        const instanceId = r.rows[0]?.id;
        if (instanceId === undefined) throw new Error('the new member was not inserted');
        if (x.state.restore.claimId !== null)
          await tx.execute(
            sql`UPDATE restore_claims SET settled_at = now(), settled_how = ${`kept as instance ${String(instanceId)}, a replica of ${h.label}`} WHERE id = ${x.state.restore.claimId}`,
          );
        if (x.state.launch.rowId !== null)
          await tx.execute(
            sql`UPDATE launched_instances SET kept_instance_id = ${instanceId}, settled_how = ${`kept as instance ${String(instanceId)}, a replica of ${h.label}`} WHERE id = ${x.state.launch.rowId}`,
          );
        return instanceId;
      });
      x.state.restore.kept = true;
      x.state.launch.kept = true;
      x.state.instanceId = id;
      // With the herd's other members: the refresher finds its upstream among those it reads.
      await refreshFleet(x.deps.db, { ids: [...h.members.map((m) => m.id), id], timeoutMs: 3000 });
      await opts.register(x, id);
      x.deps.outcome?.(
        `${where()} (instance ${id}) streams from ${primary.label}: seeded by ${seed.kind === 'repository' ? 'the repository' : seed.from.label} in ${Math.round((x.state.seedMs ?? 0) / 100) / 10} s, caught up ${Math.round((x.state.catchUpMs ?? 0) / 100) / 10} s after its start`,
      );
    },
  };
}

/**
 * Waits until the new replica streams from the primary and has replayed what the primary had written
 * when it first streamed (less `bytes`). `stopped` is asked (once a second at most) meanwhile: a replica
 * that stopped (a WAL segment nowhere to be found, a setting it refuses) never will.
 */
async function caughtUp(
  pl: RestorePlace,
  primary: InstanceRef,
  bytes: number,
  signal: AbortSignal,
  stopped: () => Promise<string | null>,
  onStreaming: () => void = () => {},
): Promise<Observed> {
  const e = restoredEndpoint(pl);
  let target: string | null = null;
  let last = 'not asked yet';
  let askedAt = 0;
  while (!signal.aborted) {
    const o = await observe(e, 3000);
    const w = o.walReceiver;
    // A certificate that does not name the server will not by waiting.
    if (!o.reachable && /altnames|ERR_TLS_CERT_ALTNAME_INVALID|Hostname\/IP does not match/i.test(o.error ?? ''))
      throw new Error(
        `the new replica's certificate does not name ${pl.server.address} (${shown(o.error)}): give the server's own TLS files (sslCertFile, sslKeyFile), or launchTls in PGHERD_AWS_ENVIRONMENTS`,
      );
    if (!o.reachable) last = shown(o.error) as string;
    else if (o.inRecovery !== true) throw new Error(`${pl.server.hostname}:${pl.port} answers as a primary, not a replica`);
    else if (w?.status !== 'streaming' || w.senderHost !== primary.host || w.senderPort !== primary.port)
      last = w
        ? `WAL receiver ${w.status} from ${shown(w.senderHost)}:${shown(w.senderPort)}, replayed ${shown(o.lsn)}`
        : `replaying from the archive, at ${shown(o.lsn)}`;
    else {
      if (target === null) {
        onStreaming();
        const p = await observe(primary, 3000);
        if (!p.reachable || !p.lsn) throw new Error(`${primary.label} does not answer (${shown(p.error)})`);
        target = p.lsn;
      }
      const behind = lsnDiff(target, o.lsn) ?? Number.POSITIVE_INFINITY;
      if (behind <= bytes) return o;
      last = `streaming, replayed ${shown(o.lsn)}, ${behind} bytes short of ${target}`;
    }
    if (Date.now() - askedAt > 1000) {
      askedAt = Date.now();
      const why = await stopped();
      if (why) throw new Error(why);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`stopped waiting for the new replica (${last})`);
}
