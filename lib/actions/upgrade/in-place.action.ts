// A major upgrade in place, for a herd with no spare server for blue/green: pg_upgrade --link on the
// primary's host, the replicas copied afresh from the upgraded primary. A backup through the herd's
// backup policy first: once the new cluster has started, the old one cannot be started again (--link
// shares the relation files), and the backup is the way back. Before anything stops, the new cluster is
// made beside the old one with the old one's settings carried over and read by the new build, and
// `pg_upgrade --check` runs against the live primary. Then the herd is down: the replicas and the
// primary stop, pg_upgrade links the files, the directories swap (the data directory's path stays the
// inventory's, its backup configuration's and its service's), and the new build starts; the downtime is
// measured from the primary's stop to the new primary answering. Stopped before the new build starts,
// everything is put back as it was. After: the repository's stanza is upgraded and a backup taken, each
// replica is copied afresh with the new build's pg_basebackup and streams, and the statistics are rebuilt
// (pg_upgrade carries none).
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { herds, instances } from '@/db/schema';
import {
  defineHerdAction,
  flagParam,
  productionWarning,
  type ActionPlan,
  type ActionStep,
  type Fact,
  type RunContext,
} from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { binsOf, driverFor, pgCtl } from '@/lib/fleet/drivers';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved, type Observed } from '@/lib/fleet/observe';
import { withInstance } from '@/lib/fleet/pg-access';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { pgbackrest } from '@/lib/fleet/backups/pgbackrest';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { hostSaysRunning, proveDirectoryServed } from '@/lib/actions/steps/data-directory';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import { replicationConninfo } from '@/lib/actions/steps/replication-conninfo';
import { OWN_FILES, replicationUser } from '@/lib/actions/steps/topology-steps';
import { prepareBackups, type BackupPrepared } from '@/lib/actions/steps/backup-steps';
import { backupSteps } from '@/lib/actions/steps/take-backup';
import { asks } from '@/lib/actions/drivers';
import { newestEverywhere, prepareUpgrade, versionText, type Build } from './minor.action';

export const upgradeInPlaceParams = z
  .object({
    /** The major to go to, "17" (its newest build on every member's host), or a release, "17.12". */
    toVersion: z
      .string()
      .trim()
      .regex(/^\d{2,3}(\.\d{1,4})?$/, 'a major such as 17, or a release such as 17.12'),
    /** For a herd pgherd does not back up: no backup before, the operator's own is the way back. */
    withoutBackup: flagParam(),
  })
  .strict();

/**
 * The first pgBackRest release that knows each major, as its release notes say: an older one on the
 * repository's host or the primary's cannot upgrade the stanza, and the herd's archiving would stop at
 * the upgrade.
 */
export const PGBACKREST_SINCE: Record<number, string> = { 13: '2.30', 14: '2.34', 15: '2.41', 16: '2.47', 17: '2.53', 18: '2.56' };

/** Whether pgBackRest `version` ("2.45") knows `major`; unknown majors (19 and later): no. */
export function pgbackrestKnows(version: string, major: number): boolean {
  const since = PGBACKREST_SINCE[major];
  if (!since) return major < 13;
  const [a = 0, b = 0] = version.split('.').map(Number);
  const [c = 0, d = 0] = since.split('.').map(Number);
  return a > c || (a === c && b >= d);
}

/** Where the new cluster is made beside the old one, and where the old one is kept after the swap. */
export const newDirectoryOf = (dataDirectory: string, major: number) => `${dataDirectory.replace(/\/+$/, '')}.pgherd-${major}`;
export const oldDirectoryOf = (dataDirectory: string, major: number) => `${dataDirectory.replace(/\/+$/, '')}.pgherd-old-${major}`;

/** A Unix socket's path is at most 107 bytes on Linux: pg_upgrade's own servers listen in the new directory. */
const SOCKET_PATH_MAX = 107;

/**
 * What a data directory holds that is PostgreSQL's own (made by initdb, pg_upgrade or the server): never
 * carried over. Everything else at its top (settings, certificates and keys, included files) is.
 */
const POSTGRES_OWN = [
  'PG_VERSION',
  'base',
  'global',
  'pg_commit_ts',
  'pg_dynshmem',
  'pg_logical',
  'pg_multixact',
  'pg_notify',
  'pg_replslot',
  'pg_serial',
  'pg_snapshots',
  'pg_stat',
  'pg_stat_tmp',
  'pg_subtrans',
  'pg_tblspc',
  'pg_twophase',
  'pg_wal',
  'pg_xact',
  'postmaster.opts',
  'postmaster.pid',
  'current_logfiles',
  'pg_upgrade_output.d',
  'standby.signal',
  'recovery.signal',
  'backup_label',
  'backup_label.old',
  'tablespace_map',
  'log',
  'pg_log',
  'pg_ctl.log',
];

/** The settings files a primary's new cluster takes from the old one. */
const SETTINGS = ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf', 'postgresql.auto.conf'];

// Run as `sh -c CARRY pgherd-carry FROM TO SETTINGS OWN...`: the settings files named (space-separated) overwrite TO's; every
// other top-level entry of FROM that is not PostgreSQL's own (OWN) nor in TO already is copied, modes kept.
const CARRY = [
  'set -e; from=$1; to=$2; settings=$3; shift 3',
  'for f in $settings; do if [ -e "$from/$f" ]; then cp -p "$from/$f" "$to/$f"; echo "$f"; fi; done',
  'for p in "$from"/* "$from"/.[!.]*; do',
  '  [ -e "$p" ] || [ -L "$p" ] || continue; n=${p##*/}; skip=',
  '  for o in "$@"; do [ "$n" = "$o" ] && skip=1; done',
  '  [ -n "$skip" ] || [ -e "$to/$n" ] || [ -L "$to/$n" ] && continue',
  '  cp -pR "$p" "$to/$n"; echo "$n"',
  'done',
].join('\n');

/** What pg_upgrade needs of the old cluster, read from it (a new cluster must match it). */
interface OldFacts {
  superuser: string;
  encoding: string;
  collate: string;
  ctype: string;
  provider: string;
  icuLocale: string | null;
  checksums: boolean;
  systemIdentifier: string;
}

interface InPlaceState {
  old?: OldFacts;
  /** The replicas this upgrade stopped: started again on the old build when the new one never started. */
  stoppedReplicas: number[];
  primaryStopped: boolean;
  /** pg_upgrade ran (its --link renames the old cluster's global/pg_control to pg_control.old). */
  upgraded: boolean;
  swapped: boolean;
  /** pg_ctl start was sent to the new build: from here the old cluster is not started again (the backup is the way back). */
  newStarted: boolean;
  downAt?: number;
  downtimeMs?: number;
}

/** What the steps of one herd's upgrade share. */
interface InPlace {
  h: HerdRef;
  primary: InstanceRef;
  replicas: InstanceRef[];
  from: { binDir: string; num: number; major: number };
  to: Build;
  major: number;
  newDir: string;
  oldDir: string;
  /** The herd's backups; null: it has none (withoutBackup). */
  backups: { runner: Parameters<typeof execNoted>[1] & { config: (stanza: string) => string }; stanza: string } | null;
  backupBefore: ActionStep<InPlaceState>[];
  backupAfter: ActionStep<InPlaceState>[];
}

interface Prepared {
  builds: Map<number, Build[]>;
  held: Map<number, string>;
  backups: BackupPrepared;
}

/** The member as it runs once upgraded: the new build, its major. */
const onNew = (m: InstanceRef, z: InPlace): InstanceRef => ({
  ...m,
  binDir: z.to.binDir,
  pgVersion: z.major,
  serverVersionNum: z.to.versionNum,
});

/** The build the herd goes to: a later major, on every member's host at the same directory; or why not. */
function targetOf(h: HerdRef, params: z.output<typeof upgradeInPlaceParams>, p: Prepared, primary: InstanceRef, num: number) {
  const fromMajor = Math.floor(num / 10000);
  const [majorText = '', minorText] = params.toVersion.split('.');
  const major = Number(majorText);
  if (major <= fromMajor)
    return refuse(
      'not-applicable',
      `${params.toVersion} is not a later major than the herd's ${fromMajor}: another release of ${fromMajor} is upgrade-minor; pgherd does not go back a major in place (restore the backup taken before)`,
    );
  const serverIds = h.members.map((m) => m.serverId);
  const wanted = minorText === undefined ? newestEverywhere(p.builds, serverIds, major) : major * 10000 + Number(minorText);
  if (wanted === null)
    return refuse('not-applicable', `no build of ${major} is reported on every member's host (the agents report the builds installed)`);
  const missing = h.members.filter((m) => !(p.builds.get(m.serverId) ?? []).some((b) => b.versionNum === wanted));
  if (missing.length)
    return refuse(
      'not-applicable',
      `no ${versionText(wanted)} build on ${missing.map((m) => m.hostname).join(', ')}: install it there first`,
    );
  const to = (p.builds.get(primary.serverId) ?? []).find((b) => b.versionNum === wanted) as Build;
  const other = h.members.find((m) => (p.builds.get(m.serverId) ?? []).find((b) => b.versionNum === wanted)?.binDir !== to.binDir);
  if (other)
    return refuse(
      'not-applicable',
      `${other.hostname} has ${versionText(wanted)} at another directory than ${primary.hostname} (${to.binDir}): install it at the same place on every member's host`,
    );
  return { to, major, fromMajor, wanted };
}

function planInPlace(h: HerdRef, params: z.output<typeof upgradeInPlaceParams>, p: Prepared): ActionPlan<InPlaceState> | Refusal {
  const held = p.held.get(h.id);
  if (held) return refuse('not-applicable', held);
  const packaged = h.members.map((m) => driverFor(m.controlDriver).packaged).find(Boolean);
  if (packaged)
    return refuse(
      'not-applicable',
      `${packaged}: Debian's pg_upgradecluster upgrades those clusters; pgherd runs pg_upgrade for pg_ctl herds`,
    );
  const primaries = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (primaries.length !== 1)
    return refuse('topology', primaries.length ? `the herd has ${primaries.length} running primaries` : 'the herd has no running primary');
  const primary = primaries[0] as InstanceRef;
  const away = h.members.filter((m) => m.state !== 'running');
  if (away.length)
    return refuse(
      'not-applicable',
      `${away.map((m) => `${m.label} is ${m.state}`).join('; ')}: start it, or take it out of the herd; the upgrade moves every member`,
    );
  const num = primary.serverVersionNum;
  if (!num) return refuse('not-applicable', `${primary.label}: its version is not known yet (never observed); refresh it first`);
  const target = targetOf(h, params, p, primary, num);
  if (target instanceof Refusal) return target;
  const { to, major, fromMajor, wanted } = target;
  const newDir = newDirectoryOf(primary.dataDirectory, major);
  if (`${newDir}/.s.PGSQL.50432`.length > SOCKET_PATH_MAX)
    return refuse(
      'not-applicable',
      `${newDir}: pg_upgrade's servers listen there, and the socket's path would be longer than ${SOCKET_PATH_MAX} bytes`,
    );
  const backups = backupsOf(h, p.backups, params.withoutBackup ?? false);
  if (backups instanceof Refusal) return backups;
  const z: InPlace = {
    h,
    primary,
    replicas: h.members.filter((m) => m.id !== primary.id).sort((a, b) => a.id - b.id),
    from: { binDir: binsOf(primary), num, major: fromMajor },
    to,
    major,
    newDir,
    oldDir: oldDirectoryOf(primary.dataDirectory, fromMajor),
    backups: backups.runner && backups.stanza ? { runner: backups.runner, stanza: backups.stanza } : null,
    backupBefore: backups.before,
    backupAfter: backups.after,
  };
  return {
    steps: [
      checkStep(z),
      ...z.backupBefore,
      newClusterStep(z),
      upgradeCheckStep(z),
      stopReplicasStep(z),
      stopPrimaryStep(z),
      pgUpgradeStep(z),
      swapStep(z),
      startNewStep(z),
      ...(z.backups ? [stanzaUpgradeStep(z, z.backups)] : []),
      analyzeStep(z),
      ...z.replicas.flatMap((r) => reseedSteps(z, r)),
      ...z.backupAfter,
      refreshStep<InPlaceState>(primary),
    ],
    facts: facts(z),
    warnings: [
      ...productionWarning(h),
      `the herd takes no writes and no reads from ${primary.label}'s stop until it answers on ${versionText(wanted)} (with --link, seconds: the relation files are linked, not copied)`,
      ...(z.replicas.length
        ? [
            `the replicas serve nothing from their stop until each is copied afresh from the upgraded primary and streams (a copy of the whole database each)`,
          ]
        : []),
      z.backups
        ? 'once the new build has started, the old cluster cannot be started again: the backup taken before is the way back'
        : 'no backup is taken (without a backup): once the new build has started, the old cluster cannot be started again, and your own backup is the only way back',
      'the planner has no statistics until the ANALYZE at the end (pg_upgrade carries none): queries may be slow meanwhile',
    ],
    before: { serverVersion: versionText(num) },
    state: (): InPlaceState => ({ stoppedReplicas: [], primaryStopped: false, upgraded: false, swapped: false, newStarted: false }),
  };
}

/**
 * The herd's backups as the upgrade uses them: the backup before and after, where pgBackRest runs; none
 * when the operator says so for a herd pgherd does not back up; or why there is no way back.
 */
function backupsOf(h: HerdRef, prepared: BackupPrepared, without: boolean) {
  const setup = prepared.setups.get(h.id);
  if (without) {
    if (setup)
      return refuse(
        'not-applicable',
        `the herd's WAL is archived to pgBackRest's stanza ${setup.stanza}: the upgrade must upgrade the stanza with it (or archiving stops), so it takes its backups too; leave "without a backup" off`,
      );
    return { before: [], after: [], runner: null, stanza: null };
  }
  const before = backupSteps<InPlaceState>(h, prepared, 'incr', 'before the upgrade: ');
  if (before instanceof Refusal)
    return refuse(
      before.code,
      `${before.reason}. An upgrade in place takes a backup right before it, the way back once the new build has started; for a herd backed up otherwise, tick "without a backup"`,
    );
  const after = backupSteps<InPlaceState>(h, prepared, 'full', 'after the upgrade: ');
  if (after instanceof Refusal) return after;
  return { before: before.steps, after: after.steps, runner: before.runner, stanza: before.stanza };
}

function facts(z: InPlace): Fact[] {
  return [
    { label: 'From', value: `${versionText(z.from.num)} (${z.from.binDir})` },
    { label: 'To', value: `${versionText(z.to.versionNum)} (${z.to.binDir})` },
    {
      label: 'Primary',
      value: `${z.primary.label}: pg_upgrade --link into ${z.newDir}, then it takes the path ${z.primary.dataDirectory}`,
    },
    { label: 'Old cluster kept at', value: `${z.oldDir} (remove it once the upgrade is proven: it shares the relation files)` },
    {
      label: 'Replicas',
      value: z.replicas.length ? z.replicas.map((r) => r.label).join(', ') + ': copied afresh from the upgraded primary' : 'none',
    },
    {
      label: 'Backups',
      value: z.backups
        ? `stanza ${z.backups.stanza}: one before (the way back), the stanza upgraded, a full one after`
        : 'none taken (without a backup): your own is the way back',
    },
    {
      label: 'If it stops before the new build starts',
      value: 'the old primary and the replicas start again on the build they ran, as they were',
    },
  ];
}

const pgUpgradeBin = (z: InPlace) => `${z.to.binDir}/pg_upgrade`;

/** The target build's programs on each host, the primary's directory served and no leftover of an earlier try; the old cluster's facts. */
function checkStep(z: InPlace): ActionStep<InPlaceState> {
  const { primary } = z;
  return {
    name: 'check the build and the primary',
    does: {
      kind: 'pg.upgrade-in-place.check',
      primary: memberArg(primary),
      toBinDir: z.to.binDir,
      toVersionNum: z.to.versionNum,
      newDirectory: z.newDir,
      oldDirectory: z.oldDir,
    },
    says: `check that ${z.to.binDir} holds pg_upgrade, initdb and postgres ${versionText(z.to.versionNum)} on ${primary.hostname} and pg_basebackup on each replica's host, that ${primary.label} answers as the primary from ${primary.dataDirectory}, and that neither ${z.newDir} nor ${z.oldDir} exists`,
    timeoutMs: 60_000,
    run: async (x) => {
      const o = await observe(primary, 3000);
      if (!o.reachable || o.inRecovery !== false)
        throw refuse('topology', `${primary.label} does not answer as the primary; nothing was changed`);
      if (o.serverVersionNum !== z.from.num)
        throw refuse(
          'not-applicable',
          `${primary.label} runs ${versionText(o.serverVersionNum ?? 0)}, not ${versionText(z.from.num)} as planned; plan it again`,
        );
      await proveDirectoryServed(x.deps, primary, x, o);
      const version = await execNotedOk(x.deps, primary, x, [`${z.to.binDir}/postgres`, '--version'], 15_000);
      if (!version.stdout.includes(` ${versionText(z.to.versionNum)}`))
        throw refuse(
          'not-applicable',
          `${z.to.binDir}/postgres says ${version.stdout.trim()}, not ${versionText(z.to.versionNum)}; nothing was changed`,
        );
      for (const [host, programs] of [
        [primary, ['pg_upgrade', 'initdb', 'pg_ctl', 'vacuumdb']],
        ...z.replicas.map((r) => [r, ['pg_basebackup', 'pg_ctl']] as const),
      ] as const) {
        const r = await execNoted(
          x.deps,
          host,
          x,
          ['sh', '-c', 'for p in "$@"; do [ -x "$p" ] || echo "$p"; done', 'pgherd-check', ...programs.map((p) => `${z.to.binDir}/${p}`)],
          15_000,
        );
        if (r.code !== 0 || r.stdout.trim())
          throw refuse(
            'not-applicable',
            `${host.hostname} lacks ${r.stdout.trim().split('\n').join(', ') || r.stderr.trim()}: install the whole ${versionText(z.to.versionNum)} build (server and client) there; nothing was changed`,
          );
      }
      if (z.backups) await pgbackrestCheck(z, z.backups.runner, x);
      for (const r of z.replicas) {
        const aside = asideOf(r, z);
        const there = await execNoted(x.deps, r, x, ['sh', '-c', '[ -e "$1" ] && echo "$1"; exit 0', 'pgherd-check', aside], 15_000);
        if (there.stdout.trim())
          throw refuse('not-applicable', `${aside} exists already on ${r.hostname}: move it away first; nothing was changed`);
      }
      const left = await execNoted(
        x.deps,
        primary,
        x,
        ['sh', '-c', 'for p in "$@"; do [ -e "$p" ] && echo "$p"; done; exit 0', 'pgherd-check', z.newDir, z.oldDir],
        15_000,
      );
      if (left.stdout.trim())
        throw refuse(
          'not-applicable',
          `${left.stdout.trim().split('\n').join(' and ')} exists already (an earlier upgrade's?): move it away first; nothing was changed`,
        );
      x.state.old = await oldFacts(primary);
      x.note({
        stdout: `${primary.label}: ${versionText(z.from.num)}, system ${x.state.old.systemIdentifier}, superuser ${x.state.old.superuser}, ${x.state.old.encoding}, ${x.state.old.collate}, data checksums ${x.state.old.checksums ? 'on' : 'off'}`,
      });
    },
  };
}

/** pgBackRest on the repository's host and the primary's knows the target major: else its stanza could not follow. */
async function pgbackrestCheck(z: InPlace, runner: Parameters<typeof execNoted>[1], x: RunContext<InPlaceState>): Promise<void> {
  for (const host of [runner, z.primary]) {
    const r = await execNoted(x.deps, host, x, ['pgbackrest', 'version'], 15_000);
    const version = /pgBackRest (\d+\.\d+)/.exec(r.stdout)?.[1];
    if (r.code !== 0 || !version)
      throw refuse(
        'not-applicable',
        `pgbackrest version on ${host.ssh.host} said ${r.stderr.trim() || r.stdout.trim() || `exit ${String(r.code)}`}; nothing was changed`,
      );
    const since = PGBACKREST_SINCE[z.major];
    if (!pgbackrestKnows(version, z.major))
      throw refuse(
        'not-applicable',
        `pgBackRest ${version} on ${host.ssh.host} does not know PostgreSQL ${z.major} (${since ? `${since} and later do` : 'no release pgherd knows does'}): upgrade it on the repository's host and every member's first, or the herd's archiving would stop at the upgrade; nothing was changed`,
      );
  }
}

async function oldFacts(primary: InstanceRef): Promise<OldFacts> {
  return withInstance(primary, { connectionTimeoutMillis: 5000, application_name: 'pgherd' }, async (c) => {
    const icu =
      (primary.serverVersionNum ?? 0) >= 170000 ? 'datlocale' : (primary.serverVersionNum ?? 0) >= 150000 ? 'daticulocale' : 'NULL';
    const provider = (primary.serverVersionNum ?? 0) >= 150000 ? 'datlocprovider::text' : "'c'";
    const r = await c.query<Omit<OldFacts, 'checksums'> & { checksums: string }>(`
      SELECT (SELECT rolname FROM pg_roles WHERE oid = 10) AS superuser,
        pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate, d.datctype AS ctype,
        ${provider} AS provider, ${icu} AS "icuLocale",
        current_setting('data_checksums') AS checksums,
        (SELECT system_identifier::text FROM pg_control_system()) AS "systemIdentifier"
      FROM pg_database d WHERE d.datname = 'template0'`);
    const row = r.rows[0];
    if (!row) throw new Error(`${primary.label} has no template0`);
    return { ...row, checksums: row.checksums === 'on' };
  });
}

/** initdb of the new build beside the old directory, matching it; the old settings carried over and read by the new build. */
function newClusterStep(z: InPlace): ActionStep<InPlaceState> {
  const { primary } = z;
  return {
    name: `make the ${z.major} cluster`,
    does: { kind: 'pg.upgrade-in-place.initdb', primary: memberArg(primary), newDirectory: z.newDir, toBinDir: z.to.binDir },
    says: `initdb ${z.newDir} with ${z.to.binDir} (the old cluster's superuser, encoding, locale and data checksums); carry over ${primary.dataDirectory}'s settings, certificates and other files of its own; have the new build read the settings (postgres -C)`,
    timeoutMs: 300_000,
    run: async (x) => {
      const f = x.state.old;
      if (!f) throw new Error('the old cluster was not read');
      const locale =
        f.provider === 'i'
          ? ['--locale-provider=icu', `--icu-locale=${f.icuLocale ?? ''}`, `--lc-collate=${f.collate}`, `--lc-ctype=${f.ctype}`]
          : [`--lc-collate=${f.collate}`, `--lc-ctype=${f.ctype}`];
      const checksums = f.checksums ? ['--data-checksums'] : z.major >= 18 ? ['--no-data-checksums'] : [];
      await execNotedOk(
        x.deps,
        primary,
        x,
        [`${z.to.binDir}/initdb`, '-D', z.newDir, '-U', f.superuser, '-E', f.encoding, ...locale, ...checksums],
        240_000,
      );
      const carried = await execNotedOk(
        x.deps,
        primary,
        x,
        ['sh', '-c', CARRY, 'pgherd-carry', primary.dataDirectory, z.newDir, SETTINGS.join(' '), ...POSTGRES_OWN],
        60_000,
      );
      // A setting the new major does not know (or no longer takes) would stop the new cluster after the downtime began: read now.
      const read = await execNoted(x.deps, primary, x, [`${z.to.binDir}/postgres`, '-D', z.newDir, '-C', 'server_version_num'], 30_000);
      if (read.code !== 0)
        throw refuse(
          'not-applicable',
          `${versionText(z.to.versionNum)} does not take ${primary.label}'s settings as they are: ${read.stderr.trim().split('\n').slice(-2).join(' ')}; change them on the primary first (nothing was stopped)`,
        );
      x.note({ stdout: `carried over: ${carried.stdout.trim().split('\n').filter(Boolean).join(', ') || 'nothing'}` });
    },
    always: {
      name: `remove the ${z.major} cluster unless it was used`,
      does: { kind: 'pg.upgrade-in-place.remove-unused', newDirectory: z.newDir },
      says: `remove ${z.newDir} unless pg_upgrade ran into it`,
      timeoutMs: 120_000,
      whileHeld: true,
      run: async (x) => {
        if (x.state.upgraded) return void x.note({ stdout: 'kept: pg_upgrade ran' });
        await execNoted(x.deps, primary, x, ['rm', '-rf', '--', z.newDir], 110_000);
      },
    },
  };
}

/** pg_upgrade's own arguments, for --check and the run. */
function pgUpgradeArgs(z: InPlace, f: OldFacts, from: string): string[] {
  return [
    pgUpgradeBin(z),
    '-b',
    z.from.binDir,
    '-B',
    z.to.binDir,
    '-d',
    from,
    '-D',
    z.newDir,
    '-U',
    f.superuser,
    '-s',
    z.newDir,
    '--link',
    // Neither server pg_upgrade starts archives: the new one's WAL is no stanza's yet.
    '-o',
    '-c archive_mode=off',
    '-O',
    '-c archive_mode=off',
  ];
}

function upgradeCheckStep(z: InPlace): ActionStep<InPlaceState> {
  const { primary } = z;
  return {
    name: 'pg_upgrade --check',
    does: { kind: 'pg.upgrade-in-place.check-upgrade', primary: memberArg(primary), newDirectory: z.newDir },
    says: `${pgUpgradeBin(z)} --check --link against ${primary.label} as it runs: every incompatibility it finds refuses the upgrade with nothing stopped`,
    timeoutMs: 600_000,
    run: async (x) => {
      const f = x.state.old;
      if (!f) throw new Error('the old cluster was not read');
      const r = await execNoted(x.deps, primary, x, [...pgUpgradeArgs(z, f, primary.dataDirectory), '--check'], 580_000);
      if (r.code !== 0) {
        const said = r.stdout.split('\n').filter((l) => /fatal|failure|error|could not|your installation/i.test(l));
        throw refuse(
          'not-applicable',
          `pg_upgrade --check failed: ${said.join(' ').trim() || r.stderr.trim() || `exit ${String(r.code)}`}; nothing was stopped`,
        );
      }
    },
  };
}

/** Each replica stopped (it cannot follow a new cluster); started again on the old build should the new one never start. */
function stopReplicasStep(z: InPlace): ActionStep<InPlaceState> {
  return {
    name: 'stop the replicas',
    does: { kind: 'pg.upgrade-in-place.stop-replicas', replicas: z.replicas.map(memberArg) },
    says: z.replicas.length ? `pg_ctl stop -m fast on ${z.replicas.map((r) => r.label).join(', ')}` : 'none: the herd has no replica',
    timeoutMs: 300_000,
    run: async (x) => {
      for (const r of z.replicas) {
        const o = await observe(r, 3000);
        if (o.reachable && o.inRecovery === false) throw refuse('topology', `${r.label} answers as a primary; nothing more was stopped`);
        if (o.reachable) await proveDirectoryServed(x.deps, r, x, o);
        else if (!(await hostSaysRunning(x.deps, r, x))) continue;
        x.state.stoppedReplicas.push(r.id);
        await execNotedOk(x.deps, r, x, pgCtl.stop(r, 'fast'), 150_000);
      }
    },
    always: {
      name: 'the replicas started again unless the new build started',
      does: { kind: 'pg.upgrade-in-place.restart-replicas', replicas: z.replicas.map(memberArg) },
      says: `start ${z.replicas.map((r) => r.label).join(', ') || 'the replicas'} again on ${z.from.binDir} unless the new primary was started`,
      timeoutMs: 300_000,
      whileHeld: true,
      run: async (x) => {
        if (x.state.newStarted)
          return void x.note({ stdout: 'left stopped: the new build ran on the primary; each is copied afresh from it' });
        for (const r of z.replicas.filter((m) => x.state.stoppedReplicas.includes(m.id)))
          await execNotedOk(x.deps, r, x, pgCtl.start(r), 150_000);
      },
    },
  };
}

function stopPrimaryStep(z: InPlace): ActionStep<InPlaceState> {
  const { primary } = z;
  return {
    name: `stop ${primary.hostname}`,
    does: { kind: 'pg.upgrade-in-place.stop-primary', primary: memberArg(primary) },
    says: `pg_ctl stop -m fast on ${primary.label}: the downtime starts`,
    timeoutMs: 160_000,
    run: async (x) => {
      x.state.downAt = Date.now();
      x.state.primaryStopped = true;
      await execNotedOk(x.deps, primary, x, pgCtl.stop(primary, 'fast'), 150_000);
    },
    always: {
      name: `${primary.hostname} put back unless the new build started`,
      does: { kind: 'pg.upgrade-in-place.put-back', primary: memberArg(primary), newDirectory: z.newDir, oldDirectory: z.oldDir },
      says: `unless the new build was started: the directories swapped back, the old cluster's global/pg_control given back (pg_upgrade --link renames it), ${primary.label} started on ${z.from.binDir}`,
      timeoutMs: 300_000,
      whileHeld: true,
      run: async (x) => {
        if (!x.state.primaryStopped) return;
        const d = primary.dataDirectory;
        const newAt = x.state.swapped ? d : z.newDir;
        // A new cluster that ran (its state is no longer "shut down", as pg_upgrade leaves it) has written to the files it
        // shares with the old one: the old one is not started again.
        if (!x.state.newStarted && x.state.swapped && (await newClusterRan(x, z, newAt))) x.state.newStarted = true;
        if (x.state.newStarted) {
          const o = await observe(primary, 3000);
          if (o.reachable && o.serverVersionNum === z.to.versionNum)
            return void x.note({ stdout: 'the new build runs: nothing to put back' });
          await x.deps.db
            .update(instances)
            .set({ binDir: z.to.binDir, pgVersion: z.major, state: 'stopped', updatedAt: sql`now()` })
            .where(eq(instances.id, primary.id));
          x.note({
            stderr: `the new build ran on ${d} and does not answer: the old cluster is not started again (it shares its files); start the new one by hand, or restore the backup taken before`,
          });
          return;
        }
        // A postmaster left on the new cluster (pg_upgrade's own, its pg_upgrade killed) is stopped first: the old
        // cluster never runs beside it on the shared files.
        if (x.state.upgraded) {
          const stop = 'if [ -e "$1/postmaster.pid" ]; then exec "$2/pg_ctl" -D "$1" -m fast -w -t 120 stop; fi';
          await execNotedOk(x.deps, primary, x, ['sh', '-c', stop, 'pgherd-stop-new', newAt, z.to.binDir], 150_000);
        }
        const script = [
          'set -e; d=$1; new=$2; old=$3',
          'if [ -e "$old/global/pg_control.old" ] || [ -e "$old/PG_VERSION" ]; then if [ -e "$d" ]; then mv "$d" "$new"; fi; mv "$old" "$d"; fi',
          'if [ -e "$d/global/pg_control.old" ] && [ ! -e "$d/global/pg_control" ]; then mv "$d/global/pg_control.old" "$d/global/pg_control"; fi',
        ].join('\n');
        if (x.state.swapped || x.state.upgraded)
          await execNotedOk(x.deps, primary, x, ['sh', '-c', script, 'pgherd-put-back', d, z.newDir, z.oldDir], 60_000);
        await execNotedOk(x.deps, primary, x, pgCtl.start(primary), 150_000);
        if (x.state.upgraded) {
          // pg_upgrade's own logs say why it failed: kept beside the data directory, the rest of its directory removed.
          const logs = `${d.replace(/\/+$/, '')}.pgherd-upgrade-logs-${String(Date.now())}`;
          await execNoted(
            x.deps,
            primary,
            x,
            [
              'sh',
              '-c',
              'if [ -d "$1/pg_upgrade_output.d" ]; then mv "$1/pg_upgrade_output.d" "$2"; echo "$2"; fi',
              'pgherd-keep-logs',
              z.newDir,
              logs,
            ],
            60_000,
          );
          await execNoted(x.deps, primary, x, ['rm', '-rf', '--', z.newDir], 110_000);
        }
        x.deps.outcome?.(`put back: ${primary.label} runs ${versionText(z.from.num)} again`);
      },
    },
  };
}

/** Whether the new cluster at `at` ever ran: its pg_control says otherwise than "shut down" (as pg_upgrade leaves it). */
async function newClusterRan(x: RunContext<InPlaceState>, z: InPlace, at: string): Promise<boolean> {
  const r = await execNoted(x.deps, z.primary, x, ['env', 'LC_ALL=C', `${z.to.binDir}/pg_controldata`, '-D', at], 30_000);
  if (r.code !== 0) return true;
  return !/^Database cluster state:\s*shut down$/m.test(r.stdout);
}

function pgUpgradeStep(z: InPlace): ActionStep<InPlaceState> {
  const { primary } = z;
  return {
    name: 'pg_upgrade --link',
    does: { kind: 'pg.upgrade-in-place.pg-upgrade', primary: memberArg(primary), newDirectory: z.newDir, toBinDir: z.to.binDir },
    says: `${pgUpgradeBin(z)} --link from ${primary.dataDirectory} into ${z.newDir}`,
    timeoutMs: 3_600_000,
    run: async (x) => {
      const f = x.state.old;
      if (!f) throw new Error('the old cluster was not read');
      x.state.upgraded = true;
      const r = await execNoted(x.deps, primary, x, pgUpgradeArgs(z, f, primary.dataDirectory), 3_500_000);
      if (r.code !== 0)
        throw new Error(
          `pg_upgrade failed (exit ${String(r.code)}): ${r.stdout.trim().split('\n').slice(-6).join(' ')} ${r.stderr.trim()}`,
        );
    },
  };
}

/** The old directory kept aside, the new one at the data directory's path (hard links follow a rename). */
function swapStep(z: InPlace): ActionStep<InPlaceState> {
  const d = z.primary.dataDirectory;
  return {
    name: 'swap the directories',
    does: { kind: 'pg.upgrade-in-place.swap', primary: memberArg(z.primary), newDirectory: z.newDir, oldDirectory: z.oldDir },
    says: `mv ${d} ${z.oldDir}; mv ${z.newDir} ${d}`,
    timeoutMs: 60_000,
    run: async (x) => {
      x.state.swapped = true;
      await execNotedOk(
        x.deps,
        z.primary,
        x,
        ['sh', '-c', 'set -e; mv "$1" "$3"; mv "$2" "$1"', 'pgherd-swap', d, z.newDir, z.oldDir],
        50_000,
      );
    },
  };
}

function startNewStep(z: InPlace): ActionStep<InPlaceState> {
  const { primary } = z;
  const now = onNew(primary, z);
  return {
    name: `start ${primary.hostname} on ${versionText(z.to.versionNum)}`,
    does: { kind: 'pg.upgrade-in-place.start', primary: memberArg(primary), toBinDir: z.to.binDir },
    says: `pg_ctl start from ${z.to.binDir}; the downtime ends when it answers as the primary on ${versionText(z.to.versionNum)}; the inventory records its build, its major and the herd's new system identifier`,
    timeoutMs: 300_000,
    run: async (x) => {
      const started = await execNoted(x.deps, primary, x, pgCtl.start(now), 150_000);
      // A start that failed before the server ran (its port taken, say) leaves the new cluster as pg_upgrade did: put back.
      x.state.newStarted = started.code === 0 || (await newClusterRan(x, z, primary.dataDirectory));
      if (started.code !== 0)
        throw new Error(
          `pg_ctl start on ${versionText(z.to.versionNum)} failed: ${started.stderr.trim() || started.stdout.trim()}${x.state.newStarted ? '' : ' (it never ran: the old cluster is put back)'}`,
        );
      const o: Observed = await waitObserved(
        primary,
        `answering as the primary on ${versionText(z.to.versionNum)}`,
        (w) => w.reachable && w.inRecovery === false && w.serverVersionNum === z.to.versionNum,
        { timeoutMs: 120_000, signal: x.signal, everyMs: 50 },
      );
      x.state.downtimeMs = Date.now() - (x.state.downAt ?? Date.now());
      await x.deps.db.transaction(async (tx) => {
        await tx
          .update(instances)
          .set({ binDir: z.to.binDir, pgVersion: z.major, serverVersionNum: z.to.versionNum, updatedAt: sql`now()` })
          .where(eq(instances.id, primary.id));
        await tx
          .update(herds)
          .set({ pgVersion: z.major, systemIdentifier: o.systemIdentifier ?? null })
          .where(eq(herds.id, z.h.id));
      });
      x.note({ stdout: `${versionText(z.to.versionNum)}, system ${o.systemIdentifier ?? '?'}; down for ${x.state.downtimeMs} ms` });
      x.deps.outcome?.(`${primary.label} on ${versionText(z.to.versionNum)}; down for ${(x.state.downtimeMs / 1000).toFixed(1)} s`);
    },
  };
}

/** pgBackRest is told of the new cluster (its version and system identifier): its archiving works again. */
function stanzaUpgradeStep(z: InPlace, { runner, stanza }: NonNullable<InPlace['backups']>): ActionStep<InPlaceState> {
  return {
    name: 'upgrade the stanza',
    does: { kind: 'backup.stanza-upgrade', stanza },
    says: `pgbackrest stanza-upgrade of ${stanza}: the repository takes the ${z.major} cluster's WAL and backups`,
    timeoutMs: 300_000,
    run: async (x) => {
      await execNotedOk(x.deps, runner, x, pgbackrest(runner.config(stanza), stanza, 'stanza-upgrade'), 280_000);
    },
  };
}

/** Where a replica's old copy goes while it is copied afresh. */
const asideOf = (r: InstanceRef, z: InPlace) => `${r.dataDirectory.replace(/\/+$/, '')}.pgherd-old-${z.from.major}`;

/** A replica copied afresh with the new build, its own settings kept, started on the new build, streaming. */
function reseedSteps(z: InPlace, r: InstanceRef): ActionStep<InPlaceState>[] {
  return [copyAfreshStep(z, r), startReplicaStep(z, r)];
}

function copyAfreshStep(z: InPlace, r: InstanceRef): ActionStep<InPlaceState> {
  const aside = asideOf(r, z);
  return {
    name: `${r.hostname}: copy afresh`,
    does: { kind: 'pg.upgrade-in-place.reseed', replica: memberArg(r), source: memberArg(z.primary), toBinDir: z.to.binDir },
    says: `move ${r.dataDirectory} to ${aside}, ${z.to.binDir}/pg_basebackup -X stream -R from ${z.primary.label}, its own ${OWN_FILES.join(', ')} and other files of its own (certificates, keys) carried over`,
    timeoutMs: 86_400_000,
    run: async (x) => {
      if (await hostSaysRunning(x.deps, r, x))
        throw refuse('not-applicable', `a server runs on ${r.dataDirectory} again: it is not touched`);
      // From here until it streams, the inventory says what it is: to be rebuilt, on the new build.
      await x.deps.db
        .update(instances)
        .set({
          binDir: z.to.binDir,
          pgVersion: z.major,
          serverVersionNum: z.to.versionNum,
          state: 'needs_rebuild',
          updatedAt: sql`now()`,
        })
        .where(eq(instances.id, r.id));
      await execNotedOk(
        x.deps,
        r,
        x,
        [
          'sh',
          '-c',
          'set -e; if [ -e "$2" ]; then echo "$2 exists: not touched" >&2; exit 1; fi; mv "$1" "$2"',
          'pgherd-aside',
          r.dataDirectory,
          aside,
        ],
        600_000,
      );
      const conn = await replicationConninfo(x.deps, r, x, z.primary, { user: replicationUser() });
      await execNotedOk(
        x.deps,
        r,
        x,
        [`${z.to.binDir}/pg_basebackup`, '-d', conn, '-D', r.dataDirectory, '-X', 'stream', '-R', '-c', 'fast'],
        86_300_000,
      );
      // Its own settings (not postgresql.auto.conf: pg_basebackup -R wrote its primary_conninfo there) and every other
      // file of its own (certificates, keys) that the copy did not bring.
      await execNotedOk(
        x.deps,
        r,
        x,
        ['sh', '-c', CARRY, 'pgherd-carry', aside, r.dataDirectory, OWN_FILES.join(' '), ...POSTGRES_OWN],
        60_000,
      );
    },
  };
}

function startReplicaStep(z: InPlace, r: InstanceRef): ActionStep<InPlaceState> {
  const now = onNew(r, z);
  const aside = asideOf(r, z);
  return {
    name: `${r.hostname}: start on ${versionText(z.to.versionNum)}`,
    does: { kind: 'pg.upgrade-in-place.start-replica', replica: memberArg(r), toBinDir: z.to.binDir },
    says: `pg_ctl start from ${z.to.binDir}, wait until it streams from ${z.primary.label}, then remove ${aside}`,
    timeoutMs: 300_000,
    run: async (x) => {
      await execNotedOk(x.deps, r, x, pgCtl.start(now), 150_000);
      await waitObserved(
        r,
        `streaming from ${z.primary.label} on ${versionText(z.to.versionNum)}`,
        (o) => o.reachable && o.inRecovery === true && o.serverVersionNum === z.to.versionNum && o.walReceiver?.status === 'streaming',
        { timeoutMs: 120_000, signal: x.signal },
      );
      await x.deps.db
        .update(instances)
        .set({
          state: 'running',
          upstreamInstanceId: z.primary.id,
          updatedAt: sql`now()`,
        })
        .where(eq(instances.id, r.id));
      await execNoted(x.deps, r, x, ['rm', '-rf', '--', aside], 600_000);
      x.note({ stdout: `${r.label} streams from ${z.primary.label} on ${versionText(z.to.versionNum)}` });
    },
  };
}

/** pg_upgrade carries no planner statistics: vacuumdb --analyze-in-stages, on the primary's socket. */
function analyzeStep(z: InPlace): ActionStep<InPlaceState> {
  const { primary } = z;
  return {
    name: 'rebuild the statistics',
    does: { kind: 'pg.analyze-in-stages', primary: memberArg(primary) },
    says: `${z.to.binDir}/vacuumdb --all --analyze-in-stages on ${primary.label} (pg_upgrade carries no statistics)`,
    timeoutMs: 86_400_000,
    run: async (x) => {
      const f = x.state.old;
      const sockets = await withInstance(
        onNew(primary, z),
        { connectionTimeoutMillis: 5000, application_name: 'pgherd' },
        async (c) => (await c.query<{ s: string }>("SELECT current_setting('unix_socket_directories') AS s")).rows[0]?.s ?? '',
      );
      const socket = sockets.split(',')[0]?.trim();
      if (!socket) throw new Error(`${primary.label} listens on no Unix socket: run ANALYZE in each database by hand`);
      await execNotedOk(
        x.deps,
        primary,
        x,
        [
          `${z.to.binDir}/vacuumdb`,
          '-h',
          socket,
          '-p',
          String(primary.port),
          '-U',
          f?.superuser ?? 'postgres',
          '--all',
          '--analyze-in-stages',
        ],
        86_300_000,
      );
      x.deps.outcome?.(
        `${primary.label} and ${z.replicas.length} replica(s) on ${versionText(z.to.versionNum)}; down for ${((x.state.downtimeMs ?? 0) / 1000).toFixed(1)} s; the old cluster is at ${z.oldDir}`,
      );
    },
  };
}

export const upgradeInPlaceAction = defineHerdAction<typeof upgradeInPlaceParams, InPlaceState, Prepared>({
  name: 'upgrade-in-place',
  control: asks('upgrade-in-place'),
  label: 'Upgrade to another major in place (pg_upgrade)',
  permission: 'admin',
  dangerous: true,
  runsAsConfirmed: true,
  params: {
    schema: upgradeInPlaceParams,
    fields: [
      {
        name: 'toVersion',
        label: 'Major',
        kind: 'text',
        emptyLabel: '17',
        help: "A later major, such as 17 (its newest build on every member's host), or a release, 17.12.",
      },
      {
        name: 'withoutBackup',
        label: 'Without a backup',
        kind: 'flag',
        emptyLabel: 'a backup through the herd\u2019s policy first: the way back',
        help: 'Only for a herd pgherd does not back up: your own backup is then the only way back once the new build has started.',
      },
    ],
  },
  prepare: async (hs, _params, db): Promise<Prepared> => ({ ...(await prepareUpgrade(db, hs)), backups: await prepareBackups(hs, db) }),
  plan: (h, { params, prepared }) => planInPlace(h, params, prepared),
});
