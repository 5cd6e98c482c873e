// A point-in-time restore onto an empty server of the herd's environment, as the restore and the drill
// run it: the server proven empty over SSH (no Postgres answers on the port, the data directory absent or
// empty), pgBackRest's configuration written there, `pgbackrest restore` to the target, the restored
// cluster's own settings (its port, address, socket, no archiving into the source's stanza), started,
// recovered and promoted, then asked for a write. Whatever fails, what the restore laid down is taken
// away again (the Postgres it started stopped, the directories it made removed): nothing is left behind.
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '@/db/client';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { SshCommandError } from '@/lib/adapters/ssh/ssh-errors';
import { idText, MAX_BIG_ID, wholeNumber } from '@/lib/adapters/validation/ids';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { pendingRefusal, unpinnedRefusal, type ActionDeps, type ActionParamField, type ActionStep } from '@/lib/engine/define-action';
import type { StepContext } from '@/lib/engine/pipeline';
import { binDir, binsOf, buildTool } from '@/lib/fleet/drivers';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { instanceClient } from '@/lib/fleet/pg-access';
import { observe } from '@/lib/fleet/observe';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { memberConfig, memberConfigPath, memberDirs, parseInfo, pgbackrest } from '@/lib/fleet/backups/pgbackrest';
import type { HerdPolicy } from '@/lib/fleet/backups/policy';
import { instanceTypeParam } from '@/lib/actions/steps/launch';
import { secretsOf, writeHostFile } from './backup-steps';
import { claimNotOurs, leaveClaim, recordedIdentifier, type ClaimPlace } from './claim-guard';

const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;
const PATH = /^\/[A-Za-z0-9._@+/-]*$/;
const absolutePath = () =>
  z
    .string()
    .trim()
    .max(500)
    .refine((v) => PATH.test(v) && !v.split('/').includes('..') && v !== '/', 'an absolute path (letters, digits and . _ - + @ /, no ..)');

/**
 * A moment written in full, with its zone: "2026-11-25T21:00:00Z", "2026-11-25 22:00:00.5+01:00". Not
 * "March 7", "12/11/2026" or a time without a zone (read in whose?), not a day that does not exist
 * (2026-02-30), not in the future.
 */
export function isoInstant(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-]\d{2}(?::?\d{2})?)$/.exec(v);
  if (!m) return false;
  const [, y, mo, d, h, mi, sec] = m;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d)) return false;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec ?? 0) > 59) return false;
  const at = Date.parse(v.replace(' ', 'T'));
  return !Number.isNaN(at) && at <= Date.now() + 60_000;
}

/** Where a restore goes and to what point: the parameters the restore and the drill share. */
export const restoreTargetParams = {
  /** latest: the end of the archive; time, lsn, name (a restore point), or just before an operation of pgherd's. */
  target: z.enum(['latest', 'time', 'lsn', 'name', 'before-operation']).default('latest'),
  time: z
    .string()
    .trim()
    .refine(
      isoInstant,
      'an ISO 8601 date and time with its zone, such as 2026-11-25T21:00:00Z or 2026-11-25 22:00:00+01:00, not in the future',
    )
    .optional(),
  lsn: z.string().trim().regex(LSN, 'a WAL position such as 0/3000028').optional(),
  restorePoint: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_.-]{1,63}$/, 'the name given to pg_create_restore_point (letters, digits, _ . -)')
    .optional(),
  operationId: idText('operationId', MAX_BIG_ID).optional(),
  /** The empty server to restore onto: a server of the herd's environment (or instanceType: a new one). */
  serverId: idText('serverId').optional(),
  /** A new EC2 instance of this type, launched like the herd's primary, instead of a server of the inventory. */
  instanceType: instanceTypeParam.optional(),
  port: wholeNumber(z.number({ message: 'a whole number' }).int().min(1024, '1024 to 65535').max(65535, '1024 to 65535')).optional(),
  dataDirectory: absolutePath().refine((v) => path.dirname(v) !== '/', {
    message:
      'a data directory inside a folder of its own, such as /var/lib/postgresql/restores/orders-1/data: the restore claims that folder (it must not exist), never /',
  }),
  /** The TLS certificate and key on the new server (left out: the source's paths, as on hosts laid out alike). */
  sslCertFile: absolutePath().optional(),
  sslKeyFile: absolutePath().optional(),
};

/** A restore goes onto a server of the inventory, or a new instance: one of the two. */
export const oneServer: [(p: { serverId?: number; instanceType?: string }) => boolean, { message: string; path: string[] }] = [
  (p) => (p.serverId === undefined) !== (p.instanceType === undefined),
  {
    message: 'give serverId (an empty server of the environment) or instanceType (a new EC2 instance), one of the two',
    path: ['serverId'],
  },
];

/** The confirmation page's fields for where a restore goes (the restore's and the drill's). */
export function placeFields(server: string, dataDirectory: { example: string; help: string }): ActionParamField[] {
  return [
    { name: 'serverId', label: `${server} (id)`, kind: 'text', emptyLabel: '', help: 'an empty server of the herd\u2019s environment' },
    {
      name: 'instanceType',
      label: 'Or a new EC2 instance',
      kind: 'text',
      emptyLabel: 'm6i.large',
      help: 'instead of a server: launched like the herd\u2019s primary (image, subnet, security groups), priced here, terminated when torn down',
    },
    { name: 'dataDirectory', label: 'Data directory', kind: 'text', emptyLabel: dataDirectory.example, help: dataDirectory.help },
    { name: 'port', label: 'Port', kind: 'text', emptyLabel: 'the herd\u2019s port', help: '' },
    {
      name: 'sslCertFile',
      label: 'TLS certificate',
      kind: 'text',
      emptyLabel: 'the source\u2019s path',
      help: `on the ${server.toLowerCase()}`,
    },
    { name: 'sslKeyFile', label: 'TLS key', kind: 'text', emptyLabel: 'the source\u2019s path', help: `on the ${server.toLowerCase()}` },
  ];
}

/** The point a restore recovers to, as pgBackRest's options and in words. */
export interface RecoveryTarget {
  options: string[];
  words: string;
  /** For the record: what the target was. */
  kind: string;
  value: string | null;
  /** A target in time (a time, just before an operation): a backup must have ended by then. */
  at?: Date;
}

/**
 * A moment as pgherd compares it (`at`, to the millisecond) and as it is given to pgBackRest (`text`, in
 * Postgres's format, to the microsecond: a commit a few microseconds before the moment is kept).
 */
export interface Instant {
  at: Date;
  text: string;
}

/** Just before an operation: the moment its first step on the herd began (no commit of it is at or before that). */
export async function operationStart(db: Db, operationId: number, herdId: number): Promise<Instant | null> {
  const r = await db.execute<{ at: Date | null; text: string | null }>(sql`
    SELECT min(s.started_at) AS at, to_char(min(s.started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS text
    FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id
    WHERE t.operation_id = ${operationId} AND (t.herd_id = ${herdId} OR t.instance_id IN (SELECT id FROM instances WHERE herd_id = ${herdId}))`);
  const x = r.rows[0];
  return x?.at && x.text ? { at: new Date(x.at), text: x.text } : null;
}

/**
 * An ISO 8601 time as typed (isoInstant) in pgBackRest's format, in UTC, every digit of its fraction kept
 * ("2026-11-25 21:00:00.123456+00"): a Date keeps milliseconds only, and zones are whole minutes, so the
 * digits past the third are the same in any zone.
 */
export function pgbackrestTime(iso: string): string {
  const utc = new Date(iso.replace(' ', 'T')).toISOString();
  const fraction = (/:\d{2}\.(\d{1,6})/.exec(iso)?.[1] ?? '').padEnd(6, '0');
  return `${utc.slice(0, 19).replace('T', ' ')}.${utc.slice(20, 23)}${fraction.slice(3)}+00`;
}

export function recoveryTarget(
  p: { target: string; time?: string; lsn?: string; restorePoint?: string; operationId?: number },
  operationAt: Instant | null,
): RecoveryTarget | Refusal {
  const promote = ['--target-action=promote'];
  switch (p.target) {
    case 'latest':
      return { options: ['--type=default'], words: 'the end of the archive (latest)', kind: 'latest', value: null };
    case 'time': {
      if (!p.time) return refuse('params', 'target time needs a time');
      const at = new Date(p.time.replace(' ', 'T'));
      return {
        options: ['--type=time', `--target=${pgbackrestTime(p.time)}`, ...promote],
        words: at.toISOString(),
        kind: 'time',
        value: at.toISOString(),
        at,
      };
    }
    case 'lsn':
      if (!p.lsn) return refuse('params', 'target lsn needs an lsn');
      return { options: ['--type=lsn', `--target=${p.lsn}`, ...promote], words: `LSN ${p.lsn}`, kind: 'lsn', value: p.lsn };
    case 'name':
      if (!p.restorePoint) return refuse('params', 'target name needs restorePoint');
      return {
        options: ['--type=name', `--target=${p.restorePoint}`, ...promote],
        words: `restore point ${p.restorePoint}`,
        kind: 'name',
        value: p.restorePoint,
      };
    case 'before-operation': {
      if (p.operationId === undefined) return refuse('params', 'target before-operation needs operationId');
      if (!operationAt)
        return refuse('not-applicable', `operation #${p.operationId} never ran a step on this herd: there is no "before it" to restore to`);
      return {
        // Exclusive: a transaction that committed at the very moment the operation began is left out with it.
        options: ['--type=time', `--target=${operationAt.text}`, '--target-exclusive', ...promote],
        words: `just before operation #${p.operationId} (its first step began ${operationAt.at.toISOString()})`,
        kind: 'before-operation',
        value: `${p.operationId}@${operationAt.at.toISOString()}`,
        at: operationAt.at,
      };
    }
    default:
      return refuse('params', `unknown target ${p.target}`);
  }
}

/**
 * A restore to a time needs a backup that ended by then: pgBackRest would otherwise restore its latest
 * backup and Postgres stop in recovery, saying only that the target is before its consistent point. Asked
 * of the repository (`pgbackrest info`, the truth), before anything is laid down; a target older than
 * what retention keeps is named as such.
 */
async function reachesBack(
  deps: ActionDeps,
  x: StepContext,
  srv: { ssh: SshTarget },
  conf: string,
  stanza: string,
  at: Date,
  retentionFull: number,
): Promise<void> {
  const r = await execNotedOk(deps, srv, x, pgbackrest(conf, stanza, '--output=json', 'info'), 120_000);
  const kept = parseInfo(r.stdout, stanza).backups.filter((b) => !b.error);
  if (!kept.length) throw new Error(`the repository holds no backup of stanza ${stanza}: take one (Back up) first`);
  if (kept.some((b) => b.stoppedAt.getTime() <= at.getTime())) return;
  const oldest = kept.reduce((a, b) => (a.stoppedAt < b.stoppedAt ? a : b));
  const fulls = kept.filter((b) => b.type === 'full').length;
  throw new Error(
    `no backup kept in stanza ${stanza} ended by ${at.toISOString()}: the oldest, ${oldest.label}, ended at ${oldest.stoppedAt.toISOString()}; ` +
      (fulls >= retentionFull
        ? `the policy keeps ${String(retentionFull)} full backup${retentionFull === 1 ? '' : 's'} (retention), and those older have expired with the WAL only they needed`
        : 'the repository holds nothing older'),
  );
}

/** A repository that does not decrypt is said as such (pgBackRest says it as a failed read of an info file). */
function repositoryError(err: unknown, environment: string): unknown {
  if (err instanceof SshCommandError && /CryptoError|cipher|decrypt/i.test(err.stderr))
    return new Error(
      `the repository does not decrypt with ${environment}'s passphrase (PGHERD_PG_CONFIG backup.cipherPassFile): it was changed since the repository was made, or is another environment's (${err.stderr.trim().split('\n').slice(-2).join(' | ')})`,
    );
  return err;
}

/** The empty server a restore goes to, as the inventory has it. */
export interface RestoreServer {
  id: number;
  hostname: string;
  address: string;
  environmentId: number;
  environment: string;
  approval: string | null;
  ssh: SshTarget;
  /** Instances the inventory has on it (a server of a herd is not empty). */
  instances: number;
}

export async function loadRestoreServer(db: Db, id: number | undefined): Promise<RestoreServer | null> {
  if (id === undefined) return null;
  const r = await db.execute<{
    id: number;
    hostname: string;
    address: string;
    environment_id: number;
    environment: string;
    approval: string | null;
    ssh_port: number;
    ssh_user: string;
    fingerprint: string | null;
    instances: number;
  }>(sql`
    SELECT s.id, s.hostname, s.address, s.environment_id, e.name AS environment, s.approval, s.ssh_port, s.ssh_user,
           s.ssh_host_key_fingerprint AS fingerprint, (SELECT count(*) FROM instances i WHERE i.server_id = s.id)::int AS instances
    FROM servers s JOIN environments e ON e.id = s.environment_id WHERE s.id = ${id}`);
  const x = r.rows[0];
  if (!x) return null;
  return {
    id: x.id,
    hostname: x.hostname,
    address: x.address || x.hostname,
    environmentId: x.environment_id,
    environment: x.environment,
    approval: x.approval,
    instances: x.instances,
    ssh: {
      host: x.address || x.hostname,
      port: x.ssh_port,
      username: x.ssh_user,
      hostKeyFingerprint: x.fingerprint,
      serverId: x.id,
      environment: x.environment,
    },
  };
}

/** Why a restore may not go to this server, or undefined. */
/** A server id that is not one of the herd's environment, as every plan answers it. */
export const notThisEnvironment = (serverId: number | undefined) =>
  refuse('not-applicable', `server ${String(serverId)} is not a server of this environment`);

export function serverRefusal(h: HerdRef, s: RestoreServer | null | undefined, serverId: number | undefined): Refusal | undefined {
  // One answer for a server that is gone and one of another environment, naming neither: a plan is no
  // way to learn another environment's servers.
  if (!s || s.environmentId !== h.environmentId) return notThisEnvironment(serverId);
  if (s.instances > 0)
    return refuse(
      'not-applicable',
      `${s.hostname} holds ${s.instances} instance(s) of pgherd's inventory: a restore goes onto an empty server, never over a running herd`,
    );
  return pendingRefusal([{ name: s.hostname, approval: s.approval }]) ?? unpinnedRefusal({}, [{ name: s.hostname, ssh: s.ssh }]);
}

/** What the restore's steps share as they run. */
export interface RestoreState {
  /** Set once the data directory was found absent or empty: from then on, the restore's to take away. */
  claimed: boolean;
  started: boolean;
  /** Set once the restored cluster is kept (registered as a herd): the cleanup then leaves it. */
  kept: boolean;
  /** Its row in restore_claims (settled when kept or removed). */
  claimId: number | null;
  startedAt: number | null;
  /** When the restored cluster first accepted a write (ms since startedAt): the RTO. */
  rtoMs: number | null;
  systemIdentifier: string | null;
}

export const newRestoreState = (): RestoreState => ({
  claimed: false,
  started: false,
  kept: false,
  claimId: null,
  startedAt: null,
  rtoMs: null,
  systemIdentifier: null,
});

/** Where the restored cluster runs: what the steps and the registration use. */
export interface RestorePlace {
  server: RestoreServer;
  port: number;
  dataDirectory: string;
  pgVersion: number;
  /** The build it runs from (a replica: its primary's); absent: its major's (PGHERD_PG_BIN_TEMPLATE). */
  binDir?: string;
  sslCertFile?: string;
  sslKeyFile?: string;
  /** Its cluster_name (what its processes and logs are called). */
  clusterName: string;
}

/** The restored cluster as pgherd connects to it. */
export const restoredEndpoint = (pl: RestorePlace) => ({
  host: pl.server.address,
  port: pl.port,
  serverEnvironment: pl.server.environment,
});

export const socketDirOf = (pl: RestorePlace) => path.join(path.dirname(pl.dataDirectory), 'run');

/**
 * Proves the server empty (nothing answers on the port) and claims the data directory's folder by making
 * it; its cleanup stops what was started there and removes the folder, unless what was laid down is kept.
 */
export function claimStep<S extends { restore: RestoreState }>(pl: RestorePlace, copy = false): ActionStep<S> {
  const srv = { ssh: pl.server.ssh };
  const home = path.dirname(pl.dataDirectory);
  return {
    name: `check that ${pl.server.hostname} is empty`,
    does: { kind: 'restore.check-empty', server: pl.server.id, port: pl.port, dataDirectory: pl.dataDirectory },
    says: `ask ${pl.server.hostname} over SSH: nothing answers on port ${pl.port} (pg_isready); then claim ${path.dirname(pl.dataDirectory)} by making it (it must not exist); else refuse and change nothing`,
    timeoutMs: 30_000,
    run: async (x) => {
      x.state.restore.startedAt = Date.now();
      const ready = await execNoted(
        x.deps,
        srv,
        x,
        buildTool({ ...pl, binDir: pl.binDir ?? '' }, 'pg_isready', '-h', pl.server.address, '-p', String(pl.port), '-t', '3'),
      );
      // 2: no answer (nothing listens); 0 or 1: a server answers or starts there.
      if (ready.code !== 2)
        throw refuse(
          'not-applicable',
          ready.code === 0 || ready.code === 1
            ? `a Postgres answers on ${pl.server.address}:${pl.port}: a restore never goes over a running server; nothing was changed`
            : `pg_isready on ${pl.server.hostname} could not tell (exit ${String(ready.code)}): nothing was changed`,
        );
      // The claim: the data directory's folder is made now, by this restore alone (mkdir, not mkdir -p:
      // it fails if the folder exists), and everything the restore lays down goes inside it. Two restores
      // aimed at one place cannot both claim it, and what the cleanup removes is only ever what this restore
      // made.
      const claim = await execNoted(x.deps, srv, x, [
        'sh',
        '-c',
        'mkdir -p -- "$(dirname -- "$1")" && mkdir -m 0750 -- "$1"',
        'pgherd-claim',
        home,
      ]);
      if (claim.code !== 0)
        throw refuse(
          'not-applicable',
          `${home} on ${pl.server.hostname} exists already (${claim.stderr.trim().split('\n').pop() ?? ''}): a restore makes its own folder, and the data directory inside it; nothing was changed`,
        );
      x.state.restore.claimed = true;
      // Recorded at once: should this worker die before the cleanup, the next one's reconcile removes it.
      if (x.deps.targetId !== undefined) {
        const r = await x.deps.db.execute<{ id: number }>(sql`
            INSERT INTO restore_claims (target_id, server_id, folder, data_directory, pg_version, is_copy, port)
            VALUES (${x.deps.targetId}, ${pl.server.id}, ${home}, ${pl.dataDirectory}, ${pl.pgVersion}, ${copy}, ${pl.port}) RETURNING id`);
        x.state.restore.claimId = r.rows[0]?.id ?? null;
      }
    },
    always: {
      name: 'take the restore away unless it is kept',
      does: { kind: 'restore.cleanup', server: pl.server.id, dataDirectory: pl.dataDirectory },
      says: `unless the restored cluster is kept: stop it and remove ${path.dirname(pl.dataDirectory)}`,
      timeoutMs: 180_000,
      givesBack: true,
      run: async (x) => {
        if (!x.state.restore.claimed || x.state.restore.kept) return;
        await removeRestored(x.deps, x, pl, {
          claimId: x.state.restore.claimId,
          serverId: pl.server.id,
          hostname: pl.server.hostname,
          dataDirectory: pl.dataDirectory,
          pgVersion: pl.pgVersion,
          ssh: pl.server.ssh,
          keptHerdId: null,
        });
        if (x.state.restore.claimId !== null)
          await x.deps.db.execute(
            sql`UPDATE restore_claims SET settled_at = now(), settled_how = 'removed by its cleanup' WHERE id = ${x.state.restore.claimId}`,
          );
      },
    },
  };
}

/** pgBackRest's configuration for the stanza, written on the new server (its own paths). */
export function memberConfigStep<S>(h: HerdRef, p: HerdPolicy, stanza: string, pl: RestorePlace): ActionStep<S> {
  const where = `${pl.server.hostname}:${pl.port} (${pl.dataDirectory})`;
  const conf = memberConfigPath(pl.dataDirectory);
  const srv = { ssh: pl.server.ssh };
  return {
    name: `write pgBackRest's configuration on ${pl.server.hostname}`,
    does: { kind: 'backup.write-member-config', server: pl.server.id, file: conf, stanza },
    says: `write ${conf} on ${pl.server.hostname} (stanza ${stanza})`,
    timeoutMs: 40_000,
    run: async (x) =>
      writeHostFile(
        x.deps,
        srv,
        x,
        conf,
        memberConfig(
          p.policy,
          stanza,
          {
            label: where,
            host: pl.server.address,
            sshPort: pl.server.ssh.port,
            sshUser: pl.server.ssh.username,
            port: pl.port,
            dataDirectory: pl.dataDirectory,
            socketDirectory: socketDirOf(pl),
          },
          secretsOf(h),
        ),
        [...memberDirs(pl.dataDirectory), socketDirOf(pl)],
      ),
  };
}

/**
 * The timeline the source herd's primary writes: Postgres asked now, else as last observed. A restore
 * recovers along it, never along "the latest timeline in the archive": a restored copy shares the
 * source's system identifier, and a superuser of one, on a host that reaches the repository, can push
 * its own timeline's history and WAL into the source's stanza. Recovery along the source's timeline
 * ignores every timeline that is not its ancestry.
 */
async function sourceTimeline(h: HerdRef): Promise<number> {
  const p = h.members.find((m) => m.role === 'primary');
  if (p) {
    const o = await observe(p, 3000);
    if (o.reachable && o.inRecovery === false && o.timeline !== undefined) return o.timeline;
    if (p.timeline !== null) return p.timeline;
  }
  throw refuse(
    'not-applicable',
    `${h.label}'s timeline is not known (no primary answers, none was observed): a restore follows the source's own timeline, never the archive's latest`,
  );
}

/** What the restore's steps share: the source herd, its policy and stanza, where the restore goes, the point it recovers to. */
interface Restore {
  h: HerdRef;
  p: HerdPolicy;
  stanza: string;
  pl: RestorePlace;
  target: RecoveryTarget;
  /** pgBackRest's configuration on the server, which the cut-off removes. */
  conf: string;
  srv: { ssh: SshTarget };
  /** The folder the restore claims: everything it lays down is inside. */
  home: string;
}

/** The restore's steps: prove the server empty, restore, configure, start, first write; and the cleanup. */
export function restoreSteps<S extends { restore: RestoreState }>(
  h: HerdRef,
  p: HerdPolicy,
  stanza: string,
  pl: RestorePlace,
  target: RecoveryTarget,
): ActionStep<S>[] {
  const z: Restore = {
    h,
    p,
    stanza,
    pl,
    target,
    conf: memberConfigPath(pl.dataDirectory),
    srv: { ssh: pl.server.ssh },
    home: path.dirname(pl.dataDirectory),
  };
  return [
    claimStep<S>(pl, true),
    memberConfigStep<S>(h, p, stanza, pl),
    pgbackrestRestoreStep<S>(z),
    restoredSettingsStep<S>(z),
    firstWriteStep<S>(z),
    cutOffStep<S>(z),
  ];
}

/** pgbackrest restore into the data directory, to the target; a target in time first proven reachable by a backup kept. */
function pgbackrestRestoreStep<S extends { restore: RestoreState }>(z: Restore): ActionStep<S> {
  const { h, p, stanza, pl, target, conf, srv } = z;
  return {
    name: `restore to ${target.words}`,
    does: { kind: 'restore.pgbackrest', stanza, dataDirectory: pl.dataDirectory, target: target.options },
    says: `pgbackrest restore of stanza ${stanza} into ${pl.dataDirectory}, recovering to ${target.words}`,
    timeoutMs: 6 * 3600_000,
    // An urgent operation on the herd (a spot evacuation, a DR failover) stops it at once: the claim's cleanup takes it away.
    preemptible: true,
    run: async (x) => {
      try {
        if (target.at) await reachesBack(x.deps, x, srv, conf, stanza, target.at, p.policy.retentionFull);
        await execNotedOk(x.deps, srv, x, ['mkdir', '-m', '0700', '--', pl.dataDirectory], 20_000);
        await execNotedOk(x.deps, srv, x, pgbackrest(conf, stanza, ...target.options, 'restore'), 6 * 3600_000 - 60_000);
      } catch (err) {
        throw repositoryError(err, h.environment);
      }
    },
  };
}

/** The restored cluster's own settings: its port, address, socket, no archiving, the source's timeline, cut off from what the source talks to. */
function restoredSettingsStep<S extends { restore: RestoreState }>(z: Restore): ActionStep<S> {
  const { h, pl, srv } = z;
  return {
    name: 'give the restored cluster its own settings',
    does: { kind: 'restore.settings', port: pl.port, address: pl.server.address, ssl: [pl.sslCertFile ?? null, pl.sslKeyFile ?? null] },
    says: `set its port ${pl.port}, listen address ${pl.server.address}, socket directory, no archiving (it is a new herd, never the source's stanza)${pl.sslCertFile ? ', its TLS certificate' : ''}; recovering along ${h.label}'s own timeline (never another one found in the archive); cut off from what the source talks to: max_logical_replication_workers = 0 (no subscription connects to its publisher) and pg_cron left out of shared_preload_libraries (none of its jobs runs)`,
    timeoutMs: 20_000,
    run: async (x) => {
      const timeline = await sourceTimeline(h);
      const preload = await execNotedOk(
        x.deps,
        srv,
        x,
        [`${binDir(pl.pgVersion)}/postgres`, '-D', pl.dataDirectory, '-C', 'shared_preload_libraries'],
        20_000,
      );
      const lines = [
        '# pgherd: the restored cluster on its own server (a new herd).',
        `port = ${pl.port}`,
        `listen_addresses = '${pl.server.address}'`,
        `unix_socket_directories = '${socketDirOf(pl)}'`,
        `cluster_name = '${pl.clusterName}'`,
        `archive_mode = 'off'`,
        `archive_command = ''`,
        `recovery_target_timeline = '${String(timeline)}'`,
        // A copy must not act as the source: a subscription would connect to its publisher and take the
        // source's slot (the source's subscriber then misses changes), pg_cron would run the source's jobs.
        'max_logical_replication_workers = 0',
        `shared_preload_libraries = '${withoutPgCron(preload.stdout)}'`,
        ...(pl.sslCertFile ? [`ssl_cert_file = '${pl.sslCertFile}'`] : []),
        ...(pl.sslKeyFile ? [`ssl_key_file = '${pl.sslKeyFile}'`] : []),
        '',
      ].join('\n');
      await execNotedOk(x.deps, srv, x, ['sh', '-c', 'cat >> "$1/postgresql.auto.conf"', 'pgherd-settings', pl.dataDirectory], 20_000, {
        stdin: lines,
      });
    },
  };
}

/** Started, recovered and promoted; its first accepted write ends the restore's time (RTO). */
function firstWriteStep<S extends { restore: RestoreState }>(z: Restore): ActionStep<S> {
  const { pl, srv, home } = z;
  return {
    name: 'start it and wait for its first write',
    does: { kind: 'restore.start', server: pl.server.id, dataDirectory: pl.dataDirectory, port: pl.port },
    says: `start it (pg_ctl), let it recover and promote, and write to it: the first accepted write ends the restore's time (RTO)`,
    timeoutMs: 6 * 3600_000,
    preemptible: true,
    run: async (x) => {
      x.state.restore.started = true;
      // What its log said last (its FATAL or PANIC lines): the cleanup removes the log with the folder.
      const logSays = async () => {
        const log = await execNoted(x.deps, srv, x, ['tail', '-n', '200', '--', path.join(home, 'postgresql.log')], 20_000);
        const said = log.stdout.split('\n').filter((l) => /\b(FATAL|PANIC):/.test(l));
        return said.slice(-2).join(' | ') || log.stdout.trim().split('\n').slice(-2).join(' | ');
      };
      const start = await execNoted(
        x.deps,
        srv,
        x,
        [`${binDir(pl.pgVersion)}/pg_ctl`, '-D', pl.dataDirectory, '-l', path.join(home, 'postgresql.log'), '-w', '-t', '3600', 'start'],
        3600_000,
      );
      if (start.code !== 0) throw new Error(`the restored cluster did not start: ${await logSays()}`);
      const first = await firstWrite(pl, x.signal, async () => {
        // Asked when it does not take a write yet: a cluster that stopped (a recovery target it cannot
        // reach, a setting it refuses) never will; say what its log said instead of waiting for hours.
        const st = await execNoted(x.deps, srv, x, [`${binDir(pl.pgVersion)}/pg_ctl`, '-D', pl.dataDirectory, 'status'], 20_000);
        if (st.code === 0) return null;
        return `the restored cluster stopped: ${await logSays()}`;
      });
      x.state.restore.rtoMs = Date.now() - (x.state.restore.startedAt ?? Date.now());
      x.state.restore.systemIdentifier = first.systemIdentifier;
      // What Tear down and the reconcile check the folder still holds before they remove anything.
      if (x.state.restore.claimId !== null)
        await x.deps.db.execute(
          sql`UPDATE restore_claims SET system_identifier = ${first.systemIdentifier} WHERE id = ${x.state.restore.claimId}`,
        );
      x.note({
        stdout: `first write accepted after ${x.state.restore.rtoMs} ms; system ${first.systemIdentifier}, timeline ${first.timeline}`,
      });
    },
  };
}

/** Its subscriptions disabled and let go of their slots, and the source's pgBackRest configuration removed. */
function cutOffStep<S extends { restore: RestoreState }>(z: Restore): ActionStep<S> {
  const { pl, conf, srv } = z;
  return {
    name: 'cut the copy off from the source’s publishers',
    does: { kind: 'restore.cut-off', server: pl.server.id, port: pl.port },
    says: `disable every subscription the copy holds and set its slot to none (never dropped: the publisher's slot stays the source's), before the copy is anyone's; remove ${conf} (the source's stanza and repository: nothing on the copy's host names them any more)`,
    timeoutMs: 120_000,
    run: async (x) => {
      const done = await cutOffSubscriptions(pl);
      await execNotedOk(x.deps, srv, x, ['rm', '-f', '--', conf], 20_000);
      x.note({ stdout: done.length ? done.join('\n') : 'no subscription' });
    },
  };
}

/** shared_preload_libraries as Postgres reported it, without pg_cron (its jobs are the source's). */
export function withoutPgCron(value: string): string {
  const kept = value
    .trim()
    .split(',')
    .map((l) => l.trim().replace(/^"(.*)"$/, '$1'))
    // Whatever path or suffix it is written with ($libdir/pg_cron, /usr/lib/.../pg_cron.so): its file's name decides.
    .filter((l) => l !== '' && path.basename(l).replace(/\.(so|dylib|dll)$/, '') !== 'pg_cron');
  for (const l of kept)
    if (!/^[A-Za-z0-9_.$/-]+$/.test(l))
      throw new Error(`shared_preload_libraries holds ${JSON.stringify(l)}: not a library name pgherd writes back`);
  return kept.join(',');
}

/**
 * The restored cluster's subscriptions, in every database, disabled and their slots set to none (never
 * dropped: DROP SUBSCRIPTION would drop the publisher's slot the source uses). It started with
 * max_logical_replication_workers = 0, so none ran before this; it keeps that setting, so none runs after
 * until an admin decides otherwise. Returns what it did, in words.
 */
export async function cutOffSubscriptions(pl: RestorePlace): Promise<string[]> {
  const done: string[] = [];
  // pg_subscription is shared: every database that holds one is found from here, including one that
  // refuses connections (opened for the moment it takes, then closed again).
  const dbs = await onRestored(
    pl,
    'postgres',
    async (c) =>
      (
        await c.query<{ datname: string; allow: boolean }>(
          `SELECT d.datname, d.datallowconn AS allow FROM pg_catalog.pg_database d
          WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_subscription s WHERE s.subdbid = d.oid) ORDER BY d.datname`,
        )
      ).rows,
  );
  const closed = dbs.filter((d) => !d.allow).map((d) => d.datname);
  const allow = (on: boolean) =>
    onRestored(pl, 'postgres', async (c) => {
      for (const d of closed) await c.query(`ALTER DATABASE ${c.escapeIdentifier(d)} ALLOW_CONNECTIONS ${on ? 'true' : 'false'}`);
    });
  await allow(true);
  try {
    await cutOffIn(
      pl,
      dbs.map((d) => d.datname),
      done,
    );
  } finally {
    await allow(false);
  }
  // Proven: none is left enabled or holding a slot, in any database.
  const left = await onRestored(pl, 'postgres', async (c) =>
    (
      await c.query<{ n: string }>(
        `SELECT s.subname AS n FROM pg_catalog.pg_subscription s WHERE s.subenabled OR s.subslotname IS NOT NULL`,
      )
    ).rows.map((r) => r.n),
  );
  if (left.length) throw new Error(`subscriptions still enabled or holding a slot on the copy: ${left.join(', ')}`);
  return done;
}

async function cutOffIn(pl: RestorePlace, dbs: string[], done: string[]): Promise<void> {
  for (const db of dbs)
    await onRestored(pl, db, async (c) => {
      const subs = await c.query<{ subname: string; enabled: boolean; slot: string | null }>(
        `SELECT subname, subenabled AS enabled, subslotname AS slot FROM pg_catalog.pg_subscription
          WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) ORDER BY subname`,
      );
      for (const sub of subs.rows) {
        const name = c.escapeIdentifier(sub.subname);
        if (sub.enabled) await c.query(`ALTER SUBSCRIPTION ${name} DISABLE`);
        if (sub.slot !== null) await c.query(`ALTER SUBSCRIPTION ${name} SET (slot_name = NONE)`);
        done.push(`${db}.${sub.subname}: disabled, slot ${sub.slot ?? '(none)'} let go (not dropped on the publisher)`);
      }
    });
}

async function onRestored<T>(pl: RestorePlace, database: string, f: (c: ReturnType<typeof instanceClient>) => Promise<T>): Promise<T> {
  const c = instanceClient(restoredEndpoint(pl), {
    database,
    connectionTimeoutMillis: 3000,
    statement_timeout: 10_000,
    application_name: 'pgherd',
  });
  c.on('error', () => {});
  await c.connect();
  try {
    await c.query('SET search_path = pg_catalog, pg_temp');
    return await f(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Waits until the restored cluster is out of recovery and takes a write; says what it is. `stopped` is
 * asked (once a second at most) while it does not: a reason it never will ends the wait. A certificate
 * that does not name the server is said at once: it will not change by waiting.
 */
async function firstWrite(
  pl: RestorePlace,
  signal: AbortSignal,
  stopped: () => Promise<string | null>,
): Promise<{ systemIdentifier: string; timeline: number }> {
  let last = '';
  let askedAt = 0;
  while (!signal.aborted) {
    const c = instanceClient(restoredEndpoint(pl), { connectionTimeoutMillis: 3000, statement_timeout: 5000, application_name: 'pgherd' });
    c.on('error', () => {});
    try {
      await c.connect();
      const r = await c.query<{ rec: boolean; sysid: string; tli: number }>(
        `SELECT pg_is_in_recovery() AS rec, (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
                (SELECT timeline_id FROM pg_control_checkpoint()) AS tli`,
      );
      const row = r.rows[0];
      if (row && !row.rec) {
        // A write of its own: a temporary table is enough to prove the cluster accepts writes.
        await c.query(
          'CREATE TEMPORARY TABLE pgherd_first_write (at timestamptz DEFAULT now()); INSERT INTO pgherd_first_write DEFAULT VALUES',
        );
        return { systemIdentifier: row.sysid, timeline: row.tli };
      }
      last = 'still recovering';
    } catch (err) {
      last = (err as Error).message;
      if ((err as { code?: string }).code === 'ERR_TLS_CERT_ALTNAME_INVALID')
        throw new Error(
          `the restored cluster's certificate does not name ${pl.server.address} (${last}): give the server's own TLS files (sslCertFile, sslKeyFile)`,
        );
    } finally {
      await c.end().catch(() => {});
    }
    if (Date.now() - askedAt > 1000) {
      askedAt = Date.now();
      const why = await stopped();
      if (why) throw new Error(why);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the restored cluster did not take a write (${last})`);
}

/**
 * Stops the restored cluster (if it runs) and removes what the restore laid down on its server, once `claim`
 * is proven still the restore's (claim-guard.ts); else the claim is left as found and this refuses.
 */
export async function removeRestored(
  deps: ActionDeps,
  x: StepContext,
  pl: Pick<RestorePlace, 'dataDirectory' | 'pgVersion' | 'binDir'> & { server: { ssh: SshTarget } },
  claim: ClaimPlace,
): Promise<void> {
  const why = await claimNotOurs(deps, x, claim, await recordedIdentifier(deps.db, claim.claimId));
  if (why) {
    if (claim.claimId !== null) await leaveClaim(deps.db, claim.claimId, why);
    throw refuse('not-applicable', `${why}: pgherd removes only what is still its restore's; nothing was stopped or removed`);
  }
  const srv = { ssh: pl.server.ssh };
  const bins = binsOf({ ...pl, binDir: pl.binDir ?? '' });
  const st = await execNoted(deps, srv, x, [`${bins}/pg_ctl`, '-D', pl.dataDirectory, 'status'], 20_000);
  if (st.code === 0)
    await execNotedOk(deps, srv, x, [`${bins}/pg_ctl`, '-D', pl.dataDirectory, '-m', 'immediate', '-w', '-t', '60', 'stop'], 90_000);
  // The folder the restore made (its claim), with everything it laid down inside.
  await execNotedOk(deps, srv, x, ['rm', '-rf', '--', path.dirname(pl.dataDirectory)], 120_000);
  if (claim.claimId !== null) await deps.db.execute(sql`UPDATE restore_claims SET removed_at = now() WHERE id = ${claim.claimId}`);
}
