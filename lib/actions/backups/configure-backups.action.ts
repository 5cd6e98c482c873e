// Configure backups: applies the herd's backup policy. pgBackRest's configuration is written on every member
// and on the backup host, the stanza is created, archive_command and archive_timeout are set on every
// member (the replicas too, so that whichever becomes primary archives), and `pgbackrest check` proves a
// segment reaches the repository. Nothing is configured by hand; applying it again rewrites the same files.
import { sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { defineHerdAction, productionWarning, type ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { instanceClient } from '@/lib/fleet/pg-access';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { appliedForm, repositoryWords, type HerdPolicy } from '@/lib/fleet/backups/policy';
import { refreshFleet } from '@/lib/fleet/refresher';
import {
  archiveCommand,
  memberConfig,
  memberConfigPath,
  memberDirs,
  pgbackrest,
  repoConfig,
  repoConfigPath,
  repoDirs,
  stanzaOf,
} from '@/lib/fleet/backups/pgbackrest';
import type { BackupMember } from '@/lib/fleet/backups/tool';
import { execNotedOk } from '@/lib/actions/steps/exec-noted';
import {
  policyRefusal,
  prepareBackups,
  readListing,
  recordListing,
  secretsOf,
  stanzaRunner,
  writeHostFile,
  type BackupPrepared,
} from '@/lib/actions/steps/backup-steps';
import { asks, driverOf, lacking } from '@/lib/actions/drivers';

interface MemberSettings {
  socketDirectory: string;
  archiveMode: string;
  inRecovery: boolean;
  systemIdentifier: string;
}

interface ConfigureState {
  read: Map<number, MemberSettings>;
  archiveModeOff: string[];
}

/** What Configure backups reads of a member before writing anything. */
async function readMember(m: InstanceRef): Promise<MemberSettings> {
  const c = instanceClient(m, { connectionTimeoutMillis: 3000, statement_timeout: 3000, application_name: 'pgherd' });
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query<{ sockets: string; mode: string; rec: boolean; sysid: string }>(
      `SELECT current_setting('unix_socket_directories') AS sockets, current_setting('archive_mode') AS mode,
              pg_is_in_recovery() AS rec, (SELECT system_identifier::text FROM pg_control_system()) AS sysid`,
    );
    const row = r.rows[0];
    if (!row) throw new Error('the query returned no row');
    const socketDirectory = (row.sockets.split(',')[0] ?? '').trim();
    return {
      socketDirectory: socketDirectory || '/var/run/postgresql',
      archiveMode: row.mode,
      inRecovery: row.rec,
      systemIdentifier: row.sysid,
    };
  } finally {
    await c.end().catch(() => {});
  }
}

const asMember = (m: InstanceRef, s: MemberSettings): BackupMember => ({
  label: m.label,
  host: m.host,
  sshPort: m.ssh.port,
  sshUser: m.ssh.username,
  port: m.port,
  dataDirectory: m.dataDirectory,
  socketDirectory: s.socketDirectory,
});

function settingsOf(x: { state: ConfigureState }, m: InstanceRef): MemberSettings {
  const s = x.state.read.get(m.id);
  if (!s) throw new Error(`${m.label} was not read`);
  return s;
}

interface ConfigurePrepared extends BackupPrepared {
  /** Each stanza name the herds would have, and the herd whose backups already use it. */
  stanzaHolders: Map<string, number>;
}

async function stanzaHolders(db: Db, stanzas: string[]): Promise<Map<string, number>> {
  const r = await db.execute<{ stanza: string; herd_id: number }>(
    sql`SELECT stanza, herd_id FROM herd_backup_setups WHERE stanza = ANY(${sql.param(stanzas)}::text[])`,
  );
  return new Map(r.rows.map((x) => [x.stanza, x.herd_id]));
}

export const configureBackupsAction = defineHerdAction({
  name: 'configure-backups',
  control: asks('backups'),
  label: 'Configure backups',
  // Where a herd's WAL goes and who holds its keys: an admin's decision, like the policy itself.
  permission: 'admin',
  dangerous: false,
  runsAsConfirmed: true,
  state: (): ConfigureState => ({ read: new Map(), archiveModeOff: [] }),
  prepare: async (herds, _params, db): Promise<ConfigurePrepared> => ({
    ...(await prepareBackups(herds, db)),
    stanzaHolders: await stanzaHolders(
      db,
      herds.map((h) => stanzaOf(h.environment, h.name)),
    ),
  }),
  plan: (h: HerdRef, { prepared }) => {
    const p = prepared.policies.get(h.id);
    const why = policyRefusal(h, p);
    if (why || !p) return why ?? refuse('not-applicable', 'no backup policy');
    if (!h.members.length) return refuse('not-applicable', 'the herd has no members');
    const bad = h.members.find((m) => !m.dataDirectory.startsWith('/'));
    if (bad) return refuse('not-applicable', `${bad.label} has no data directory in the inventory: pgBackRest needs it`);
    const stanza = stanzaOf(h.environment, h.name);
    // `<environment>-<herd>` is ambiguous (prod + eu-orders, prod-eu + orders): a stanza already another
    // herd's would mix two herds' WAL and backups in one. That herd is not named (it may be another environment's).
    const holder = prepared.stanzaHolders.get(stanza);
    if (holder !== undefined && holder !== h.id)
      return refuse('not-applicable', `stanza ${stanza} is another herd's already: rename this herd to configure its backups`);
    try {
      for (const m of h.members) archiveCommand(m.dataDirectory, stanza);
    } catch (err) {
      return refuse('not-applicable', (err as Error).message);
    }
    const primary = h.members.find((m) => m.role === 'primary' && m.state === 'running');
    const runner = stanzaRunner(p, primary);
    if (!runner) return refuse('topology', 'the herd has no running primary to reach the S3 repository from');
    const c: Configure = { h, p, stanza, primary, runner, policy: appliedForm(p.policy), where: repositoryWords(p.policy) };
    const d = driverOf(h);
    if (d instanceof Refusal) return d;
    const archiving = d.archiving
      ? d.archiving<ConfigureState>(h, {
          stanza,
          timeoutSeconds: p.policy.archiveTimeoutSeconds,
          modeOff: (x, m) => settingsOf(x, m).archiveMode === 'off',
        })
      : lacking(d, 'backups');
    if (archiving instanceof Refusal) return archiving;
    return {
      steps: [
        // The driver's own preflight first (Patroni answering as the herd's): nothing is written anywhere before it.
        ...archiving.before,
        readMembersStep(h),
        ...h.members.map((m) => memberConfigStep(c, m)),
        ...repoConfigSteps(c),
        stanzaCreateStep(c),
        archiving.set,
        checkStep(c),
        recordSetupStep(c),
      ],
      facts: [
        { label: 'Policy', value: `${p.scope === 'herd' ? 'the herd\u2019s own' : `${h.environment}'s`} (#${p.policyId})` },
        { label: 'Repository', value: c.where },
        { label: 'Stanza', value: stanza },
      ],
      warnings: productionWarning(h),
    };
  },
});

/** What the steps of one herd's backup configuration share: the herd, its policy, the stanza, where pgBackRest reaches the repository from. */
interface Configure {
  h: HerdRef;
  p: HerdPolicy;
  stanza: string;
  /** The running primary, if there is one (an S3 repository is reached from it). */
  primary: InstanceRef | undefined;
  runner: NonNullable<ReturnType<typeof stanzaRunner>>;
  /** The policy as applied (what the record and the steps' `does` hold). */
  policy: ReturnType<typeof appliedForm>;
  /** The repository, in words. */
  where: string;
}

/** Reads every member's socket directory and archive_mode; every member must answer and be the herd's. */
function readMembersStep(h: HerdRef): ActionStep<ConfigureState> {
  return {
    name: 'read every member',
    does: { kind: 'backup.read-members', members: h.members.map(memberArg) },
    says: `read each member's socket directory and archive_mode; every member must answer and be the herd's`,
    timeoutMs: 20_000,
    run: async (x) => {
      for (const m of h.members) {
        let s: MemberSettings;
        try {
          s = await readMember(m);
        } catch (err) {
          throw refuse(
            'unreachable',
            `${m.label} does not answer (${(err as Error).message}): every member gets the configuration; nothing was changed`,
          );
        }
        if (h.systemIdentifier && s.systemIdentifier !== h.systemIdentifier)
          throw refuse(
            'identity',
            `${m.label} runs system ${s.systemIdentifier}, not the herd's ${h.systemIdentifier}; nothing was changed`,
          );
        x.state.read.set(m.id, s);
        if (s.archiveMode === 'off') x.state.archiveModeOff.push(m.label);
      }
      x.note({
        stdout: h.members
          .map((m) => `${m.label}: socket ${settingsOf(x, m).socketDirectory}, archive_mode ${settingsOf(x, m).archiveMode}`)
          .join('\n'),
      });
    },
  };
}

/** Writes pgBackRest's configuration on member `m`: the stanza, the repository, every member as read. */
function memberConfigStep({ h, p, stanza, policy, where }: Configure, m: InstanceRef): ActionStep<ConfigureState> {
  return {
    name: `write pgBackRest's configuration on ${m.label}`,
    does: { kind: 'backup.write-member-config', instance: memberArg(m), file: memberConfigPath(m.dataDirectory), stanza, policy },
    says: `write ${memberConfigPath(m.dataDirectory)} on ${m.label} (stanza ${stanza}, repository ${where})`,
    timeoutMs: 40_000,
    run: async (x) =>
      writeHostFile(
        x.deps,
        m,
        x,
        memberConfigPath(m.dataDirectory),
        memberConfig(
          p.policy,
          stanza,
          asMember(m, settingsOf(x, m)),
          secretsOf(h),
          h.members.map((o) => asMember(o, settingsOf(x, o))),
        ),
        memberDirs(m.dataDirectory),
      ),
  };
}

/** With a backup host (a posix repository): its configuration written there. */
function repoConfigSteps({ h, p, stanza, runner, policy }: Configure): ActionStep<ConfigureState>[] {
  const host = p.policy.repoHost;
  return p.policy.repoKind === 'posix' && host
    ? [
        {
          name: 'write the backup host\u2019s configuration',
          does: { kind: 'backup.write-repo-config', host: host.hostname, file: repoConfigPath(p.policy, stanza), stanza, policy },
          says: `write ${repoConfigPath(p.policy, stanza)} on ${host.hostname} (retention ${p.policy.retentionFull} full, ${p.policy.compressType}, ${p.policy.encrypt ? 'encrypted' : 'not encrypted'}${p.policy.fromStandby ? ', backups from a replica' : ''})`,
          timeoutMs: 40_000,
          run: async (x) =>
            writeHostFile(
              x.deps,
              runner,
              x,
              repoConfigPath(p.policy, stanza),
              repoConfig(
                p.policy,
                stanza,
                h.members.map((m) => asMember(m, settingsOf(x, m))),
                secretsOf(h),
              ),
              repoDirs(p.policy, stanza),
            ),
        },
      ]
    : [];
}

/** Creates (or upgrades) the stanza in the repository. */
function stanzaCreateStep({ stanza, runner, where }: Configure): ActionStep<ConfigureState> {
  return {
    name: 'create the stanza',
    does: { kind: 'backup.stanza-create', stanza, repository: where },
    says: `create (or upgrade) stanza ${stanza} in the repository`,
    timeoutMs: 120_000,
    run: async (x) => {
      await execNotedOk(x.deps, runner, x, pgbackrest(runner.config(stanza), stanza, 'stanza-create'), 110_000);
    },
  };
}

/** pgbackrest check: a segment switched on the primary must reach the repository (skipped while its archive_mode is off). */
function checkStep({ stanza, primary, runner }: Configure): ActionStep<ConfigureState> {
  return {
    name: 'check that WAL reaches the repository',
    does: { kind: 'backup.check', stanza },
    says: `pgbackrest check: a WAL segment is switched on the primary and must reach the repository`,
    timeoutMs: 150_000,
    run: async (x) => {
      if (primary && x.state.archiveModeOff.includes(primary.label))
        return void x.note({
          stdout: `skipped: archive_mode is off on ${primary.label}; archiving starts at its next restart (shown as pending restart)`,
        });
      await execNotedOk(x.deps, runner, x, pgbackrest(runner.config(stanza), stanza, 'check'), 140_000);
    },
  };
}

/** Records the herd's setup (unless another herd took the stanza meanwhile) and the repository's listing. */
function recordSetupStep({ h, p, stanza, runner, policy, where }: Configure): ActionStep<ConfigureState> {
  return {
    name: 'record the setup',
    does: { kind: 'backup.record-setup', herd: h.id, stanza, policy },
    says: `record that ${h.label} is backed up to ${where} as stanza ${stanza}, and read the repository's listing`,
    timeoutMs: 60_000,
    run: async (x) => {
      const recorded = await x.deps.db.execute(sql`
              INSERT INTO herd_backup_setups (herd_id, policy_id, stanza, applied, applied_at, operation_id)
              SELECT ${h.id}, ${p.policyId}, ${stanza}, ${JSON.stringify(policy)}::jsonb, now(), ${x.deps.operation?.id ?? null}
              WHERE NOT EXISTS (SELECT 1 FROM herd_backup_setups WHERE stanza = ${stanza} AND herd_id <> ${h.id})
              ON CONFLICT (herd_id) DO UPDATE SET policy_id = excluded.policy_id, stanza = excluded.stanza, applied = excluded.applied,
                applied_at = excluded.applied_at, operation_id = excluded.operation_id
              RETURNING herd_id`);
      // Another herd took the stanza since the plan: not recorded as this herd's.
      if (!recorded.rows.length) throw refuse('stale', `stanza ${stanza} became another herd's meanwhile: nothing recorded`);
      const listing = await readListing(x.deps, runner, x, stanza);
      await recordListing(x.deps.db, h.id, stanza, listing, null);
      // The members observed now: the changelist's Backups column says what the archive is after this.
      await refreshFleet(x.deps.db, { ids: h.members.map((m) => m.id), timeoutMs: 3000 });
      x.deps.outcome?.(`stanza ${stanza} in ${where}: ${listing.status.message}; ${listing.backups.length} backup(s) listed`);
    },
  };
}
