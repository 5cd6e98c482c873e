// Backups against the real pgBackRest, Postgres and OpenSSH of a lab of its own: Configure backups applies
// the environment's policy (configuration on every member and on the backup host, the stanza, archive_command),
// WAL reaches the repository and the archive's health is observed, backups are taken from a replica and
// recorded as `pgbackrest info` lists them, and a policy that points a herd's WAL at another environment's
// backup host is refused with nothing changed. The repository's passphrase is in no step's record.
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DescribeInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import {
  agentConflicts,
  backupPolicies,
  backups,
  herdBackupSetups,
  herds,
  instances,
  launchedInstances,
  operationSteps,
  operationTargets,
  restoreDrills,
  servers,
  webhookDeliveries,
  webhooks,
} from '@/db/schema';
import { startLab, stopLab, PROJECT_ROOT, type LabInfo } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { run as runAsLab, labIdentity } from '@/lib/lab/proc';
import { runOperation, startTestWorker, submitPlanned, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { refreshFleet } from '@/lib/fleet/refresher';
import { waitFor } from '@/lib/testing/wait';
import { fleetHealth } from '@/lib/features/agents/health';
import { changeList } from '@/lib/features/admin/list-query';
import { getAdmin } from '@/lib/features/admin/registry';
import { parseListParams } from '@/lib/features/admin/list-params';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { ingestReport } from '@/lib/features/agents/ingest';
import { collectInstance } from '@/lib/agent/collect';
import type { InstanceReport, Report } from '@/lib/agent/report';
import { configureBackupsAction } from './configure-backups.action';
import { backupAction } from './backup.action';
import { restoreAction } from './restore.action';
import { MARKER_TABLE, restoreDrillAction } from './restore-drill.action';
import { tearDownRestoredAction } from './tear-down.action';
import { expireRestoredHerds } from '@/lib/features/backups/expire';
import { judgeRecoverability } from '@/lib/features/backups/lapse';
import { startWebhookReceiver } from '@/lib/testing/webhook-receiver';
import { settleRestoreClaims } from './settle-claims';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { recoverabilityScorecard, unverifiedByEnvironment } from '@/lib/features/backups/scorecard';
import { defineHerdAction } from '@/lib/engine/define-action';
import { registerAction } from '@/lib/actions/registry';
import { memberConfigPath, repoConfigPath } from '@/lib/fleet/backups/pgbackrest';
import { ec2Client } from '@/lib/adapters/aws/config';
import { launchInstance, launchTemplateOf } from '@/lib/adapters/aws/ec2-launch';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';
import { labAwsEnvironments } from '@/lib/lab/aws';
import { priceList } from '@/lib/fleet/cloud/prices';
import { asks } from '@/lib/actions/drivers';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'backups-test.json');
const agentReport = (list: InstanceReport[]): Report => ({
  format: 1,
  agentVersion: 'test',
  hostname: 'scratch',
  observedAt: new Date().toISOString(),
  intervalSeconds: 60,
  instances: list,
});
const PREFIX = 't-backups';
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker;
let herdId: number;

const members = () => lab.instances.filter((i) => i.environment === 'bk' && i.herd === 'alpha');
const primary = () => members().find((i) => i.role === 'primary')!;
/** A file's modification time moved on, as an edit would (PGHERD_PG_CONFIG is read again when it changes). */
const touch = (file: string) => {
  const t = new Date(statSync(file).mtimeMs + 2000);
  utimesSync(file, t, t);
};
const cipherPass = () => readFileSync(path.join(path.dirname(lab.pgAccess!.configFile), 'bk.backup-cipher'), 'utf8').trim();

beforeAll(async () => {
  lab = await startLab({
    // moto for the S3 repository (behind the lab's TLS front).
    ldap: false,
    file: LAB_FILE,
    fleet: { environments: ['bk', 'other'], herds: ['alpha'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.15' },
    pgbouncer: [],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  herdId = (
    await db.execute<{ id: number }>(
      sql`SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = 'bk' AND h.name = 'alpha'`,
    )
  ).rows[0]!.id;
  worker = await startTestWorker(lab, PREFIX, 2);
  await query(primary().dsn, 'CREATE TABLE marker (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
}, 180_000);

afterAll(async () => {
  await ifAssigned(worker)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
}, 60_000);

describe('Configure backups', () => {
  it('refuses a policy whose backup host is another environment\u2019s, and changes nothing', async () => {
    const [own] = await db
      .select()
      .from(backupPolicies)
      .where(sql`environment_id = (SELECT id FROM environments WHERE name = 'bk')`);
    const other = lab.backup!.hosts.find((h) => h.environment === 'other')!;
    const [otherServer] = await db.select().from(servers).where(eq(servers.hostname, other.server));
    await db.update(backupPolicies).set({ repoServerId: otherServer!.id }).where(eq(backupPolicies.id, own!.id));
    try {
      const plan = await planOperation(db, SYSTEM_ACCESS, configureBackupsAction, [herdId]);
      expect(plan.targets[0]!.refused).toContain(
        `the policy's backup host (server ${String(otherServer!.id)}) is not a server of bk: a herd's backups stay in its environment`,
      );
      expect(plan.targets[0]!.refused).not.toMatch(/backup-other|other,/);
    } finally {
      await db.update(backupPolicies).set({ repoServerId: own!.repoServerId }).where(eq(backupPolicies.id, own!.id));
    }
    const [cmd] = await query<{ archive_command: string }>(primary().dsn, 'SHOW archive_command');
    expect(cmd!.archive_command).toBe('');
    expect(await db.select().from(herdBackupSetups)).toEqual([]);
  });

  it('configures every member and the backup host; WAL reaches the repository', async () => {
    const r = await runOperation(db, worker.queue, configureBackupsAction, { herdIds: [herdId] });
    expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    for (const m of members()) {
      const [cmd] = await query<{ archive_command: string }>(m.dsn, 'SHOW archive_command');
      expect(cmd!.archive_command).toContain(`--stanza=bk-alpha archive-push %p`);
      // The member's configuration holds the repository's host, not its passphrase; both files are 0600.
      expect(statSync(memberConfigPath(m.dataDirectory)).mode & 0o777).toBe(0o600);
    }
    const host = lab.backup!.hosts.find((h) => h.environment === 'bk')!;
    const repoConf = repoConfigPath({ repoPath: host.repoPath }, 'bk-alpha');
    expect(statSync(repoConf).mode & 0o777).toBe(0o600);
    expect(readFileSync(repoConf, 'utf8')).toContain(`repo1-cipher-pass=${cipherPass()}`);
    const [setup] = await db.select().from(herdBackupSetups).where(eq(herdBackupSetups.herdId, herdId));
    // A stanza created a moment ago holds no backup yet: pgBackRest says so.
    expect(setup).toMatchObject({ stanza: 'bk-alpha', infoStatus: 'no valid backups' });

    // A segment switched now is archived, and the observation says so.
    const [before] = await query<{ n: string }>(primary().dsn, 'SELECT archived_count::text AS n FROM pg_stat_archiver');
    await query(primary().dsn, 'INSERT INTO marker (n) VALUES (1)');
    await query(primary().dsn, 'SELECT pg_switch_wal()');
    await waitFor('the switched segment archived', async () => {
      const [now] = await query<{ n: string }>(primary().dsn, 'SELECT archived_count::text AS n FROM pg_stat_archiver');
      return Number(now!.n) > Number(before!.n) ? true : undefined;
    });
    await refreshFleet(db);
    const [p] = await db
      .select()
      .from(instances)
      .where(sql`herd_id = ${herdId} AND role = 'primary'`);
    expect(p!.archivedCount).toBeGreaterThan(0);
    expect(p!.lastArchivedWal).toMatch(/^[0-9A-F]{24}$/);
    expect(p!.archiveFailedCount).toBe(0);
    const replicas = await db
      .select()
      .from(instances)
      .where(sql`herd_id = ${herdId} AND role = 'replica'`);
    expect(replicas.map((x) => x.archivedCount)).toEqual([null]);

    // The passphrase is in no step's record (command, output, errors).
    const leaked = await db.execute(sql`
      SELECT s.name FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id
      WHERE t.operation_id = ${r.op.id} AND (s.command || s.stdout_tail || s.stderr_tail || row_to_json(t)::text) LIKE ${`%${cipherPass()}%`}`);
    expect(r.steps.length).toBeGreaterThan(5);
    expect(leaked.rows).toEqual([]);
  });
});

describe('Back up', () => {
  it('takes a full backup from the replica, then an incremental, recorded as pgbackrest info lists them', async () => {
    const full = await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' });
    expect(full.op.status, JSON.stringify(full.steps.map((s) => [s.name, s.status, s.stderrTail]))).toBe('succeeded');
    await query(primary().dsn, 'INSERT INTO marker (n) SELECT g FROM generate_series(2, 5000) g');
    const incr = await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'incr' });
    expect(incr.op.status).toBe('succeeded');

    const rows = await db.select().from(backups).where(eq(backups.herdId, herdId)).orderBy(backups.startedAt);
    expect(rows.map((b) => b.type)).toEqual(['full', 'incr']);
    expect(rows[0]!.operationId).toBe(full.op.id);
    expect(rows[1]!.operationId).toBe(incr.op.id);
    expect(rows[1]!.prior).toBe(rows[0]!.label);
    expect(rows[0]!.sizeBytes).toBeGreaterThan(1_000_000);

    // The truth: the repository's own listing, read on the backup host as the lab user.
    const host = lab.backup!.hosts.find((h) => h.environment === 'bk')!;
    const info = await runAsLab(labIdentity(), [
      'pgbackrest',
      `--config=${repoConfigPath({ repoPath: host.repoPath }, 'bk-alpha')}`,
      '--stanza=bk-alpha',
      '--output=json',
      'info',
    ]);
    const labels = [...info.stdout.matchAll(/"label":"([^"]+)"/g)].map((m) => m[1]);
    expect(rows.map((b) => b.label)).toEqual(labels);
    // Read from the replica: pgBackRest's log on the backup host says which host it copied from.
    const log = readFileSync(path.join(host.repoPath, 'pgherd', 'log', 'bk-alpha-backup.log'), 'utf8');
    const replica = members().find((i) => i.role === 'replica')!;
    expect(log).toContain(`backup-standby`);
    expect(log).toContain(replica.address);
  });

  it('the herds changelist shows the backups and offers a facet by standing', async () => {
    const herdsModel = getAdmin('herds')!;
    const list = await changeList(db, herdsModel, parseListParams(herdsModel, { backups: 'ok' }, SYSTEM_ACCESS));
    expect(list.rows.map((r) => r.name)).toEqual(['alpha']);
    expect(String(list.rows[0]!.backups)).toMatch(/^full \d+ min ago \u00b7 incr \d+ min ago \u00b7 archive /);
    const facet = list.facets.find((f) => f.key === 'backups')!;
    expect(facet.options.find((o) => o.value === 'not configured')?.count).toBe(1);
  });

  it('an archive that fails is seen: the primary\u2019s failures counted, the herd "archive failing" until it catches up', async () => {
    // The repository's archive folder made unwritable: archive-push fails, as a full or lost disk would.
    const host = lab.backup!.hosts.find((h) => h.environment === 'bk')!;
    const archiveDir = path.join(host.repoPath, 'archive', 'bk-alpha');
    await runAsLab(labIdentity(), ['chmod', '-R', 'a-w', archiveDir]);
    try {
      await query(primary().dsn, 'INSERT INTO marker (n) VALUES (9001)');
      await query(primary().dsn, 'SELECT pg_switch_wal()');
      await waitFor('archive-push to fail', async () => {
        const [a] = await query<{ n: string }>(primary().dsn, 'SELECT failed_count::text AS n FROM pg_stat_archiver');
        return Number(a!.n) > 0 ? true : undefined;
      });
      await refreshFleet(db);
      const [p] = await db
        .select()
        .from(instances)
        .where(sql`herd_id = ${herdId} AND role = 'primary'`);
      expect(p!.archiveFailedCount).toBeGreaterThan(0);
      expect(p!.archivePendingSince).not.toBeNull();
      const herdsModel = getAdmin('herds')!;
      const list = await changeList(db, herdsModel, parseListParams(herdsModel, { backups: 'archive failing' }, SYSTEM_ACCESS));
      expect(list.rows.map((r) => r.name)).toEqual(['alpha']);
      expect(String(list.rows[0]!.backups)).toContain('ARCHIVE FAILING');
      // Fleet health says it, with the segment that failed.
      const health = await fleetHealth(db, null);
      expect(health.archive.rows).toEqual([
        expect.objectContaining({ herd: 'bk/alpha', failing: true, lastFailedWal: expect.stringMatching(/^[0-9A-F]{24}/) }),
      ]);
    } finally {
      await runAsLab(labIdentity(), ['chmod', '-R', 'u+w', archiveDir]);
    }
    // Put right, the archiver catches up by itself and the herd is ok again.
    await waitFor(
      'the archive to catch up',
      async () => {
        await refreshFleet(db);
        const [p] = await db
          .select()
          .from(instances)
          .where(sql`herd_id = ${herdId} AND role = 'primary'`);
        return p!.archivePendingSince === null && p!.lastArchivedAt! > p!.lastArchiveFailedAt! ? true : undefined;
      },
      90_000,
    );
    expect((await fleetHealth(db, null)).archive.total).toBe(0);
    // A write into the segment being written is the archive_timeout's to switch out: nothing waits for the
    // archive yet (else every quiet primary's background records would read as an archive that lags).
    await query(primary().dsn, 'INSERT INTO marker (n) VALUES (9002)');
    await refreshFleet(db);
    const [after] = await db
      .select()
      .from(instances)
      .where(sql`herd_id = ${herdId} AND role = 'primary'`);
    expect(after!.archivePendingSince).toBeNull();
  });

  it('refuses a herd not configured yet, saying what to run', async () => {
    const [other] = await db
      .select({ id: herds.id })
      .from(herds)
      .where(sql`name = 'alpha' AND environment_id = (SELECT id FROM environments WHERE name = 'other')`);
    const plan = await planOperation(db, SYSTEM_ACCESS, backupAction, [other!.id], { type: 'full' });
    expect(plan.targets[0]!.refused).toMatch(/not configured for backups yet: run Configure backups/);
  });
});

/** A herd action that drops a table on the primary: an operation to restore to just before. */
const dropTable = defineHerdAction({
  name: 'test-drop-precious',
  control: asks(null),
  label: 'Drop the precious table (test)',
  permission: 'operator',
  dangerous: false,
  plan: (h) => ({
    steps: [
      {
        name: 'drop it',
        does: { kind: 'test.drop', herd: h.id },
        says: 'DROP TABLE precious on the primary',
        run: async () => {
          await query(primary().dsn, 'DROP TABLE precious');
        },
      },
    ],
  }),
});

/** An urgent herd action (as a spot evacuation is): it preempts what holds the herd. */
const urgentNoop = defineHerdAction({
  name: 'test-urgent-noop',
  control: asks(null),
  label: 'Something urgent (test)',
  permission: 'operator',
  dangerous: false,
  urgent: true,
  plan: (h) => ({
    steps: [{ name: 'be urgent', does: { kind: 'test.urgent', herd: h.id }, says: 'nothing, at once', run: async () => undefined }],
  }),
});

const scratch = (n: number) => lab.backup!.scratch.filter((x) => x.environment === 'bk')[n]!;
const scratchId = async (n: number) =>
  (
    await db
      .select({ id: servers.id })
      .from(servers)
      .where(eq(servers.hostname, scratch(n).server))
  )[0]!.id;
const restoredDsn = (n: number, port: number) => `postgres://postgres@${scratch(n).address}:${port}/postgres`;

describe('Restore to a new herd', () => {
  it('to a time: ends with the last row committed at or before it, and none after', async () => {
    // A writer commits a numbered row every 20 ms; its commit times are read back from the rows.
    await query(primary().dsn, 'CREATE TABLE pitr (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    for (let n = 1; n <= 100; n++) {
      await query(primary().dsn, 'INSERT INTO pitr (n) VALUES ($1)', [n]);
      await new Promise((r) => setTimeout(r, 20));
    }
    const rows = await query<{ n: number; at: Date }>(primary().dsn, 'SELECT n, at FROM pitr ORDER BY n');
    // T between row 60's commit and row 61's.
    const t60 = rows[59]!.at.getTime();
    const t61 = rows[60]!.at.getTime();
    const T = new Date(Math.floor((t60 + t61) / 2));
    await query(primary().dsn, 'SELECT pg_switch_wal()');
    const port = 25901;
    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      {
        name: 'alpha-pitr',
        target: 'time',
        time: T.toISOString(),
        serverId: String(await scratchId(0)),
        port: String(port),
        dataDirectory: path.join(scratch(0).dataRoot, 'alpha-pitr', 'data'),
        sslCertFile: scratch(0).tls!.certFile,
        sslKeyFile: scratch(0).tls!.keyFile,
        expiresInHours: '2',
      },
    );
    expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-400)]))).toBe('succeeded');
    const [max] = await query<{ n: number }>(restoredDsn(0, port), 'SELECT max(n) AS n FROM pitr');
    expect(max!.n).toBe(60);
    const [rec] = await query<{ rec: boolean }>(restoredDsn(0, port), 'SELECT pg_is_in_recovery() AS rec');
    expect(rec!.rec).toBe(false);
    // Registered as a herd of its own, its one member the restored primary, with its expiry.
    const [h] = await db.select().from(herds).where(eq(herds.name, 'alpha-pitr'));
    expect(h).toMatchObject({ restoredFromHerdId: herdId });
    expect(h!.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 3600_000);
    const members = await db.select().from(instances).where(eq(instances.herdId, h!.id));
    expect(members).toEqual([expect.objectContaining({ port, role: 'primary', state: 'running' })]);
    // The source is untouched: it still archives to its stanza, the restored herd does not.
    const [cmd] = await query<{ archive_mode: string }>(restoredDsn(0, port), 'SHOW archive_mode');
    expect(cmd!.archive_mode).toBe('off');
  });

  it("a copy's own timeline pushed into the source's archive: the source's restore does not follow it, and the copy keeps no configuration for it", async () => {
    const copy = restoredDsn(0, 25901); // the copy the test before restored (promoted: a timeline of its own)
    const copyDir = path.join(scratch(0).dataRoot, 'alpha-pitr', 'data');
    // pgherd left the copy nothing that names the source's stanza or repository.
    expect(existsSync(memberConfigPath(copyDir))).toBe(false);
    // As the copy's superuser: a table of its own, its WAL closed, then pushed into the source's stanza with a
    // configuration made for the purpose (the source member's, as anyone on a host of the environment could write it).
    await query(copy, `CREATE TABLE leaked_from_copy (t text); INSERT INTO leaked_from_copy VALUES ('written in the copy')`);
    const walfile = async (dsn: string) => (await query<{ w: string }>(dsn, 'SELECT pg_walfile_name(pg_current_wal_lsn()) AS w'))[0]!.w;
    const w = await walfile(copy);
    await query(copy, 'SELECT pg_switch_wal()');
    // The timeline each writes (the first 8 hex digits of its WAL file's name).
    const tli = parseInt(w.slice(0, 8), 16);
    const src = parseInt((await walfile(primary().dsn)).slice(0, 8), 16);
    expect(tli).toBeGreaterThan(src);
    const history = `${w.slice(0, 8)}.history`;
    for (const f of [history, w])
      await runAsLab(labIdentity(), [
        'pgbackrest',
        `--config=${memberConfigPath(primary().dataDirectory)}`,
        '--stanza=bk-alpha',
        'archive-push',
        path.join(copyDir, 'pg_wal', f),
      ]);
    const port = 25905;
    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      {
        name: 'alpha-latest',
        target: 'latest',
        serverId: String(await scratchId(1)),
        port: String(port),
        dataDirectory: path.join(scratch(1).dataRoot, 'alpha-latest', 'data'),
        sslCertFile: scratch(1).tls!.certFile,
        sslKeyFile: scratch(1).tls!.keyFile,
        expiresInHours: '1',
      },
    );
    expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-400)]))).toBe('succeeded');
    expect(await query(restoredDsn(1, port), `SELECT to_regclass('leaked_from_copy') AS t`)).toEqual([{ t: null }]);
    // It followed the source's timeline to its end: every row the source has, where the copy had 60.
    const rows = await query<{ n: number }>(restoredDsn(1, port), 'SELECT count(*)::int AS n FROM pitr');
    expect(rows).toEqual([{ n: 100 }]);
    // The scratch server is empty again for the tests after.
    const [h] = await db.select().from(herds).where(eq(herds.name, 'alpha-latest'));
    const down = await runOperation(db, worker.queue, tearDownRestoredAction, { herdIds: [h!.id] });
    expect(down.op.status).toBe('succeeded');
  });

  it('just before operation #N: the table that operation dropped is back, whole', async () => {
    await query(primary().dsn, 'CREATE TABLE precious (n int PRIMARY KEY)');
    await query(primary().dsn, 'INSERT INTO precious SELECT generate_series(1, 1234)');
    registerAction(dropTable);
    const dropped = await runOperation(db, worker.queue, dropTable, { herdIds: [herdId] });
    expect(dropped.op.status).toBe('succeeded');
    await query(primary().dsn, 'SELECT pg_switch_wal()');
    const port = 25902;
    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      {
        name: 'alpha-before-drop',
        target: 'before-operation',
        operationId: String(dropped.op.id),
        serverId: String(await scratchId(1)),
        port: String(port),
        dataDirectory: path.join(scratch(1).dataRoot, 'alpha-before-drop', 'data'),
        sslCertFile: scratch(1).tls!.certFile,
        sslKeyFile: scratch(1).tls!.keyFile,
      },
    );
    expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-400)]))).toBe('succeeded');
    expect(r.plan.targets[0]!.facts?.find((f) => f.label === 'To')?.value).toMatch(new RegExp(`^just before operation #${dropped.op.id}`));
    const [c] = await query<{ n: string }>(restoredDsn(1, port), 'SELECT count(*)::text AS n FROM precious');
    expect(c!.n).toBe('1234');
  });

  it('torn down when it expires: stopped, its files removed, the herd forgotten; a fleet herd is refused', async () => {
    const [h] = await db.select().from(herds).where(eq(herds.name, 'alpha-before-drop'));
    const [m] = await db.select().from(instances).where(eq(instances.herdId, h!.id));
    // A herd of the fleet is never torn down, whatever is ticked.
    const refused = await planOperation(db, SYSTEM_ACCESS, tearDownRestoredAction, [herdId]);
    expect(refused.targets[0]!.refused).toMatch(/was not made by pgherd's Restore/);
    // Not expired yet: nothing starts.
    expect(await expireRestoredHerds(db, worker.queue)).toEqual([]);
    await db
      .update(herds)
      .set({ expiresAt: new Date(Date.now() - 60_000) })
      .where(eq(herds.id, h!.id));
    // A fleet member moved into the restored herd (an operator may edit an instance's herd): not the
    // restore's to remove. Refused, by hand and by the expiry, and the member keeps running.
    const [replica] = await db
      .select()
      .from(instances)
      .where(sql`herd_id = ${herdId} AND role = 'replica'`);
    await db.update(instances).set({ herdId: h!.id }).where(eq(instances.id, replica!.id));
    try {
      const plan = await planOperation(db, SYSTEM_ACCESS, tearDownRestoredAction, [h!.id]);
      expect(plan.targets[0]!.refused).toMatch(/was not laid down by its restore: pgherd removes only what a restore made/);
      expect(await expireRestoredHerds(db, worker.queue)).toEqual([]);
    } finally {
      await db.update(instances).set({ herdId }).where(eq(instances.id, replica!.id));
    }
    const stillThere = members().find((i) => i.role === 'replica')!;
    expect((await query<{ one: number }>(stillThere.dsn, 'SELECT 1 AS one'))[0]!.one).toBe(1);
    const [op] = await expireRestoredHerds(db, worker.queue);
    expect(op).toBeDefined();
    // Once: asked again while it runs (or after), it starts no second one.
    expect(await expireRestoredHerds(db, worker.queue)).toEqual([]);
    const done = await waitForOperation(db, op!);
    expect(done.op.status, JSON.stringify(done.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]))).toBe('succeeded');
    expect(done.op.requestedByName).toBe('system');
    expect(await db.select().from(herds).where(eq(herds.id, h!.id))).toEqual([]);
    const left = await runAsLab(labIdentity(), ['sh', '-c', 'test -e "$1" && echo left || echo gone', 'x', m!.dataDirectory]);
    expect(left.stdout.trim()).toBe('gone');
    await expect(query(restoredDsn(1, 25902), 'SELECT 1')).rejects.toThrow();
  });

  it('to a point the archive never reaches: fails at once quoting Postgres, nothing left, the herd not held for hours', async () => {
    const folder = path.join(scratch(1).dataRoot, 'past-the-end');
    const started = Date.now();
    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      {
        name: 'alpha-past',
        target: 'lsn',
        lsn: 'FFFF/0',
        serverId: String(await scratchId(1)),
        port: '25906',
        dataDirectory: path.join(folder, 'data'),
        sslCertFile: scratch(1).tls!.certFile,
        sslKeyFile: scratch(1).tls!.keyFile,
      },
    );
    expect(r.op.status).toBe('failed');
    expect(r.targets[0]!.error).toMatch(/the restored cluster stopped: .*recovery ended before configured recovery target was reached/);
    expect(Date.now() - started).toBeLessThan(60_000);
    const left = await runAsLab(labIdentity(), ['sh', '-c', 'test -e "$1" && echo left || echo gone', 'x', folder]);
    expect(left.stdout.trim()).toBe('gone');
    expect(await db.select().from(herds).where(eq(herds.name, 'alpha-past'))).toEqual([]);
  });

  it('onto a port something else listens on: fails saying what Postgres logged, nothing left', async () => {
    // Not a Postgres: pg_isready cannot tell it from nothing. The start fails, and says why.
    const squatter = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => squatter.listen(25907, scratch(1).address, r));
    const folder = path.join(scratch(1).dataRoot, 'squatted');
    try {
      const r = await runOperation(
        db,
        worker.queue,
        restoreAction,
        { herdIds: [herdId] },
        {
          name: 'alpha-squatted',
          target: 'latest',
          serverId: String(await scratchId(1)),
          port: '25907',
          dataDirectory: path.join(folder, 'data'),
          sslCertFile: scratch(1).tls!.certFile,
          sslKeyFile: scratch(1).tls!.keyFile,
        },
      );
      expect(r.op.status).toBe('failed');
      expect(r.targets[0]!.error).toMatch(
        /the restored cluster did not start: .*(could not bind|Address already in use|could not create any TCP\/IP sockets)/,
      );
      const left = await runAsLab(labIdentity(), ['sh', '-c', 'test -e "$1" && echo left || echo gone', 'x', folder]);
      expect(left.stdout.trim()).toBe('gone');
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it('never over a running server: refused by the inventory, and over SSH when the inventory does not know', async () => {
    const params = (port: number) => ({
      name: 'alpha-again',
      target: 'latest',
      serverId: '0',
      port: String(port),
      dataDirectory: path.join(scratch(0).dataRoot, 'again', 'data'),
    });
    // A server of the herd's own members: not empty.
    const memberServer = (await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, primary().server)))[0]!.id;
    let plan = await planOperation(db, SYSTEM_ACCESS, restoreAction, [herdId], { ...params(25903), serverId: String(memberServer) });
    expect(plan.targets[0]!.refused).toMatch(/holds 1 instance\(s\) of pgherd's inventory: a restore goes onto an empty server/);
    // Another environment's scratch server.
    const otherScratch = lab.backup!.scratch.find((x) => x.environment === 'other')!;
    const otherId = (await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, otherScratch.server)))[0]!.id;
    plan = await planOperation(db, SYSTEM_ACCESS, restoreAction, [herdId], { ...params(25903), serverId: String(otherId) });
    // Said without its name or its environment: a plan tells nobody of another environment's servers.
    expect(plan.targets[0]!.refused).toMatch(new RegExp(`^server ${String(otherId)} is not a server of this environment`));
    expect(plan.targets[0]!.refused).not.toContain(otherScratch.server);
    // The restored herd's instance forgotten by the inventory: the server is asked, and a Postgres answers on the port.
    const [h] = await db.select().from(herds).where(eq(herds.name, 'alpha-pitr'));
    await db.delete(instances).where(eq(instances.herdId, h!.id));
    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      { ...params(25901), serverId: String(await scratchId(0)) },
    );
    expect(r.targets[0]!.refusal).toBe('not-applicable');
    expect(r.targets[0]!.error).toMatch(/a Postgres answers on .*:25901: a restore never goes over a running server; nothing was changed/);
    // And it still runs, untouched.
    const [max] = await query<{ n: number }>(restoredDsn(0, 25901), 'SELECT max(n) AS n FROM pitr');
    expect(max!.n).toBe(60);
    // Its worker killed before the cleanup (as if the restore had stopped there, the claim left open): the
    // next worker's reconcile stops it and removes its folder; no copy of the herd is left running untracked.
    await db.execute(
      sql`UPDATE restore_claims SET settled_at = NULL, settled_how = NULL WHERE folder = ${path.join(scratch(0).dataRoot, 'alpha-pitr')}`,
    );
    // Settled by whichever comes first: the test worker's own reconcile (every few seconds), or this one.
    const ssh = new SshPool({});
    try {
      await waitFor('the open claim settled', async () => {
        await settleRestoreClaims(db, ssh);
        const open = await db.execute(
          sql`SELECT 1 FROM restore_claims WHERE settled_at IS NULL AND folder = ${path.join(scratch(0).dataRoot, 'alpha-pitr')}`,
        );
        return open.rows.length === 0 ? true : undefined;
      });
    } finally {
      await ssh.close();
    }
    await expect(query(restoredDsn(0, 25901), 'SELECT 1')).rejects.toThrow();
    const gone = await runAsLab(labIdentity(), [
      'sh',
      '-c',
      'test -e "$1" && echo left || echo gone',
      'x',
      path.join(scratch(0).dataRoot, 'alpha-pitr'),
    ]);
    expect(gone.stdout.trim()).toBe('gone');
    const [claim] = await db
      .execute<{ settled_how: string }>(
        sql`SELECT settled_how FROM restore_claims WHERE folder = ${path.join(scratch(0).dataRoot, 'alpha-pitr')}`,
      )
      .then((r) => r.rows);
    expect(claim!.settled_how).toMatch(/^removed by a worker's reconcile: its target ended succeeded without its cleanup/);
    // A folder that exists already is not the restore's to claim: refused, and what is in it stays.
    const taken = path.join(scratch(0).dataRoot, 'taken');
    await runAsLab(labIdentity(), ['mkdir', '-p', taken]);
    await runAsLab(labIdentity(), ['sh', '-c', 'echo precious > "$1/keep.txt"', 'x', taken]);
    const r2 = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      {
        ...params(25904),
        serverId: String(await scratchId(0)),
        dataDirectory: path.join(taken, 'data'),
      },
    );
    expect(r2.targets[0]!.refusal).toBe('not-applicable');
    expect(r2.targets[0]!.error).toMatch(/exists already .*: a restore makes its own folder/);
    expect((await runAsLab(labIdentity(), ['cat', path.join(taken, 'keep.txt')])).stdout.trim()).toBe('precious');
    // Two herds in one restore would claim one name and one folder: refused whole.
    const [otherHerd] = await db
      .select({ id: herds.id })
      .from(herds)
      .where(sql`name = 'alpha' AND environment_id = (SELECT id FROM environments WHERE name = 'other')`);
    const both = await planOperation(db, SYSTEM_ACCESS, restoreAction, [herdId, otherHerd!.id], {
      ...params(25905),
      serverId: String(await scratchId(0)),
    });
    expect(both.targets.map((t) => t.refused)).toEqual([
      expect.stringMatching(/a restore takes one herd/),
      expect.stringMatching(/a restore takes one herd/),
    ]);
  });

  /** A restore of alpha onto the second scratch server, succeeded. */
  const restoreOnScratch1 = async (name: string, port: number, dir: string, more: Record<string, string> = {}) => {
    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      {
        name,
        target: 'latest',
        serverId: String(await scratchId(1)),
        port: String(port),
        dataDirectory: dir,
        sslCertFile: scratch(1).tls!.certFile,
        sslKeyFile: scratch(1).tls!.keyFile,
        ...more,
      },
    );
    expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-400)]))).toBe('succeeded');
    return r;
  };
  /** What a test's restore left on the scratch server, gone. */
  const dropRestored = async (dir: string) => {
    await runAsLab(labIdentity(), ['/usr/lib/postgresql/15/bin/pg_ctl', '-D', dir, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    await runAsLab(labIdentity(), ['rm', '-rf', '--', path.dirname(dir)]);
  };

  it('leaves a copy the team adopted: its expiry stops and removes nothing of it, and no agent files it into its source', async () => {
    const port = 25913;
    const dir = path.join(scratch(1).dataRoot, 'alpha-adopted', 'data');
    const r = await restoreOnScratch1('alpha-adopted', port, dir, { expiresInHours: '2' });
    const [h] = await db.select().from(herds).where(eq(herds.name, 'alpha-adopted'));
    const [m] = await db.select().from(instances).where(eq(instances.herdId, h!.id));
    const claimOf = async () =>
      (
        await db.execute<{ id: number; system_identifier: string | null; settled_how: string; removed_at: Date | null; is_copy: boolean }>(
          sql`SELECT id, system_identifier, settled_how, removed_at, is_copy FROM restore_claims WHERE target_id = ${r.targets[0]!.id}`,
        )
      ).rows[0]!;
    const [sys] = await query<{ s: string }>(restoredDsn(1, port), 'SELECT system_identifier::text AS s FROM pg_control_system()');
    // The claim knows what it laid down: a copy, and which cluster.
    expect(await claimOf()).toMatchObject({ system_identifier: sys!.s, is_copy: true, removed_at: null });
    const scratchServer = { id: await scratchId(1), hostname: scratch(1).server, address: scratch(1).address };
    const sourceMembers = async () => (await db.select({ id: instances.id }).from(instances).where(eq(instances.herdId, herdId))).length;
    const before = await sourceMembers();
    // The team adopts the copy: its instance moved into a herd in service (Admin › Instances), and written to.
    const [adopters] = await db.insert(herds).values({ environmentId: h!.environmentId, name: 'adopters' }).returning();
    try {
      await db.update(instances).set({ herdId: adopters!.id }).where(eq(instances.id, m!.id));
      await query(restoredDsn(1, port), 'CREATE TABLE adopted_rows (n int); INSERT INTO adopted_rows VALUES (1), (2), (3)');
      // Its agent reports it: it stays in the herd that adopted it, never re-homed into its source by identifier.
      await ingestReport(db, scratchServer, agentReport([await collectInstance({ connectionString: restoredDsn(1, port) })]));
      expect((await db.select().from(instances).where(eq(instances.id, m!.id)))[0]).toMatchObject({ herdId: adopters!.id });
      // Its data directory edited in the inventory too (an operator may): still the restore's port on that server.
      await db.update(instances).set({ dataDirectory: '/srv/elsewhere/data' }).where(eq(instances.id, m!.id));
      // The restored herd expires: Tear down, run by the worker as the system, leaves the adopted copy, saying so.
      await db
        .update(herds)
        .set({ expiresAt: new Date(Date.now() - 60_000) })
        .where(eq(herds.id, h!.id));
      const plan = await planOperation(db, SYSTEM_ACCESS, tearDownRestoredAction, [h!.id]);
      expect(plan.targets[0]!.facts).toContainEqual({
        label: 'Left as it is',
        value: expect.stringMatching(/is a member of bk\/adopters \(instance \d+\) now \(adopted\)$/),
      });
      const [op] = await expireRestoredHerds(db, worker.queue);
      const done = await waitForOperation(db, op!);
      expect(done.op.status, JSON.stringify(done.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]))).toBe('succeeded');
      expect(await db.select().from(herds).where(eq(herds.id, h!.id))).toEqual([]);
      // Nor does the reconcile take it: the claim was left as found, and its herd gone changes nothing.
      const ssh = new SshPool({});
      try {
        await settleRestoreClaims(db, ssh);
      } finally {
        await ssh.close();
      }
      expect(await claimOf()).toMatchObject({
        settled_how: expect.stringMatching(/^left as found: .* is a member of bk\/adopters/),
        removed_at: null,
      });
      expect((await query<{ n: number }>(restoredDsn(1, port), 'SELECT count(*)::int AS n FROM adopted_rows'))[0]!.n).toBe(3);
      // The adopting herd deleted by hand too: the copy is placed nowhere by its next report, held as a conflict
      // of its source, which keeps the members it had.
      await db.delete(herds).where(eq(herds.id, adopters!.id));
      const res = await ingestReport(db, scratchServer, agentReport([await collectInstance({ connectionString: restoredDsn(1, port) })]));
      expect(res).toMatchObject({ created: 0, held: 1 });
      expect(await sourceMembers()).toBe(before);
      expect(await db.select().from(instances).where(eq(instances.port, port))).toEqual([]);
      const held = await db.select().from(agentConflicts).where(eq(agentConflicts.serverId, scratchServer.id));
      expect(held).toEqual([expect.objectContaining({ port, herdId, systemIdentifier: sys!.s })]);
      // Removed by a reconcile, then a report made before the removal arrives late: still held, not filed.
      const late = agentReport([await collectInstance({ connectionString: restoredDsn(1, port) })]);
      await db.execute(sql`UPDATE restore_claims SET removed_at = now() WHERE target_id = ${r.targets[0]!.id}`);
      expect(await ingestReport(db, scratchServer, late)).toMatchObject({ created: 0, held: 1 });
      expect(await sourceMembers()).toBe(before);
    } finally {
      await db.delete(herds).where(eq(herds.id, adopters!.id));
      await dropRestored(dir);
      await db.execute(sql`UPDATE restore_claims SET removed_at = now() WHERE target_id = ${r.targets[0]!.id}`);
    }
  });

  it('removes nothing from a folder that holds another cluster than the one its restore laid down', async () => {
    const port = 25914;
    const dir = path.join(scratch(1).dataRoot, 'alpha-swapped', 'data');
    const r = await restoreOnScratch1('alpha-swapped', port, dir);
    const [h] = await db.select().from(herds).where(eq(herds.name, 'alpha-swapped'));
    try {
      // What the claim recorded is not what the folder holds (another cluster was put there since).
      await db.execute(sql`UPDATE restore_claims SET system_identifier = '7000000000000000001' WHERE target_id = ${r.targets[0]!.id}`);
      const done = await runOperation(db, worker.queue, tearDownRestoredAction, { herdIds: [h!.id] });
      expect(done.op.status).toBe('failed');
      expect(done.targets[0]!.error).toMatch(
        /holds the cluster \d+, not 7000000000000000001, which the restore laid down there: pgherd removes only what is still its restore's; nothing was stopped or removed/,
      );
      expect((await query<{ one: number }>(restoredDsn(1, port), 'SELECT 1 AS one'))[0]!.one).toBe(1);
      expect(await db.select({ id: herds.id }).from(herds).where(eq(herds.id, h!.id))).toHaveLength(1);
      // The right cluster in its data directory, and another one made beside it in the folder the claim made:
      // removing the folder would take that one too.
      const [sys] = await query<{ s: string }>(restoredDsn(1, port), 'SELECT system_identifier::text AS s FROM pg_control_system()');
      await db.execute(
        sql`UPDATE restore_claims SET system_identifier = ${sys!.s}, kept_herd_id = ${h!.id}, settled_how = 'kept', last_error = NULL WHERE target_id = ${r.targets[0]!.id}`,
      );
      const beside = path.join(path.dirname(dir), 'other');
      await runAsLab(labIdentity(), ['/usr/lib/postgresql/15/bin/initdb', '-D', beside, '-A', 'trust', '-U', 'postgres']);
      const again = await runOperation(db, worker.queue, tearDownRestoredAction, { herdIds: [h!.id] });
      expect(again.op.status).toBe('failed');
      expect(again.targets[0]!.error).toContain(`holds another cluster beside the restored one (${beside})`);
      expect((await runAsLab(labIdentity(), ['cat', path.join(beside, 'PG_VERSION')])).stdout.trim()).toBe('15');
    } finally {
      await db.delete(herds).where(eq(herds.id, h!.id));
      await dropRestored(dir);
      await db.execute(
        sql`UPDATE restore_claims SET removed_at = now(), settled_at = now(), kept_herd_id = NULL WHERE target_id = ${r.targets[0]!.id}`,
      );
    }
  });
});

describe('Restore drill', () => {
  const drillParams = async (n: number, port: number) => ({
    serverId: String(await scratchId(n)),
    port: String(port),
    dataDirectory: path.join(scratch(n).dataRoot, `drill-${port}`, 'data'),
    sslCertFile: scratch(n).tls!.certFile,
    sslKeyFile: scratch(n).tls!.keyFile,
  });
  const drills = () => db.select().from(restoreDrills).where(eq(restoreDrills.herdId, herdId)).orderBy(restoreDrills.id);
  const repo = () => lab.backup!.hosts.find((h) => h.environment === 'bk')!.repoPath;
  let unverifiedAfterPass = -1;
  const standing = async () => (await recoverabilityScorecard(db, null)).find((r) => r.herdId === herdId)!;
  /** Every file under `dir` (as the lab user sees them). */
  const filesUnder = async (dir: string) =>
    (await runAsLab(labIdentity(), ['find', dir, '-type', 'f'])).stdout.trim().split('\n').filter(Boolean);

  /** Runs a drill and says what is left on the scratch server afterwards. */
  async function drill(port: number, to: Record<string, string> = {}) {
    // scratch-1 holds alpha-pitr, which the inventory no longer knows (the test above): a drill beside it on another port.
    const params = { ...(await drillParams(0, port)), ...to };
    const r = await runOperation(db, worker.queue, restoreDrillAction, { herdIds: [herdId] }, params);
    // The drill's own folder: beside the one given, with the herd's stanza.
    const left = await runAsLab(labIdentity(), [
      'sh',
      '-c',
      'test -e "$1" && echo left || echo gone',
      'x',
      `${path.dirname(params.dataDirectory)}-bk-alpha`,
    ]);
    return { r, left: left.stdout.trim(), last: (await drills()).at(-1)! };
  }

  it('proves the herd restorable: marker found, repository verified, amcheck clean; RTO and RPO recorded; nothing left', async () => {
    await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' });
    const { r, left, last } = await drill(25910);
    expect(r.op.status, JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]))).toBe('succeeded');
    expect(last).toMatchObject({ ok: true, cause: '', operationId: r.op.id });
    expect(last.rtoMs).toBeGreaterThan(0);
    expect(last.rpoMs).toBeGreaterThanOrEqual(0);
    expect(last.rpoMs).toBeLessThan(60_000);
    expect(left).toBe('gone');
    expect((await standing()).verdict).toBe('protected');
    // The metric counts what the scorecard says (the restored herds beside it are not configured).
    unverifiedAfterPass = (await unverifiedByEnvironment(db)).find((e) => e.environment === 'bk')?.n ?? -1;
    expect(unverifiedAfterPass).toBe(
      (await recoverabilityScorecard(db, null)).filter((r) => r.environment === 'bk' && r.verdict !== 'protected').length,
    );
    console.log(`restore drill: RTO ${String(last.rtoMs)} ms, RPO ${String(last.rpoMs)} ms, ${String(last.restoredBytes)} bytes restored`);
  });

  it('a drill preempted by an urgent operation records no verdict (it proved nothing either way) and leaves nothing', async () => {
    registerAction(urgentNoop);
    const before = (await drills()).length;
    const params = await drillParams(0, 25912);
    const plan = await planOperation(db, SYSTEM_ACCESS, restoreDrillAction, [herdId], params);
    const id = await submitPlanned(db, worker.queue, restoreDrillAction, { herdIds: [herdId] }, params, plan);
    // Past its marker: the drill holds the herd and has something to clean up.
    await waitFor(
      'the drill past its marker',
      async () => {
        const [t] = await db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
        const steps = t ? await db.select().from(operationSteps).where(eq(operationSteps.targetId, t.id)) : [];
        return steps.some((x) => x.name === 'write the marker and archive it' && x.status === 'succeeded') || undefined;
      },
      60_000,
    );
    const urgent = await runOperation(db, worker.queue, urgentNoop, { herdIds: [herdId] });
    expect(urgent.op.status).toBe('succeeded');
    const d = await waitForOperation(db, id, {});
    expect(d.targets[0]).toMatchObject({
      status: 'preempted',
      outcome: expect.stringMatching(/^drill not run to its end: preempted by the urgent target \d+; no verdict recorded$/),
    });
    expect((await drills()).length).toBe(before);
    const left = await runAsLab(labIdentity(), [
      'sh',
      '-c',
      'test -e "$1" && echo left || echo gone',
      'x',
      `${path.dirname(params.dataDirectory)}-bk-alpha`,
    ]);
    expect(left.stdout.trim()).toBe('gone');
  }, 120_000);

  it('fails, naming the cause, when a WAL segment is gone from the repository; the herd.restore_unverified webhook says so once', async () => {
    const receiver = await startWebhookReceiver();
    const [hook] = await db
      .insert(webhooks)
      .values({ name: 'restores', url: receiver.url('/restores'), secret: 'backups-test', events: ['herd.restore_unverified'] })
      .returning();
    await query(primary().dsn, 'INSERT INTO marker (n) VALUES (7001)');
    const [w] = await query<{ wal: string }>(primary().dsn, 'SELECT pg_walfile_name(pg_switch_wal()) AS wal');
    await waitFor('the segment archived', async () => {
      const [a] = await query<{ ok: boolean }>(primary().dsn, 'SELECT last_archived_wal >= $1 AS ok FROM pg_stat_archiver', [w!.wal]);
      return a!.ok ? true : undefined;
    });
    const segment = (await filesUnder(path.join(repo(), 'archive', 'bk-alpha'))).find((f) => path.basename(f).startsWith(`${w!.wal}-`))!;
    await runAsLab(labIdentity(), ['mv', segment, `${segment}.away`]);
    try {
      const { r, left, last } = await drill(25911);
      expect(r.op.status).toBe('failed');
      expect(last.ok).toBe(false);
      expect(last.cause).toMatch(/verify|marker/);
      expect(left).toBe('gone');
      // The scorecard says so, and the metric counts it.
      expect(await standing()).toMatchObject({ verdict: 'drill failed', last: { ok: false, cause: last.cause } });
      expect((await unverifiedByEnvironment(db)).find((e) => e.environment === 'bk')?.n).toBe(unverifiedAfterPass + 1);
      // Proven before, not now: said once (by this judge or the worker's), with the cause.
      await judgeRecoverability(db);
      await waitFor('the herd.restore_unverified delivery', async () =>
        receiver.received.some((r) => r.event === 'herd.restore_unverified'),
      );
      const [told] = receiver.received;
      expect(told!.body).toMatchObject({
        event: 'herd.restore_unverified',
        herd: { id: herdId, name: 'alpha', environment: 'bk' },
        text: expect.stringMatching(
          new RegExp(
            `^pgherd: herd bk/alpha is no longer proven restorable: the last restore drill \\(operation #${String(r.op.id)}, .*\\) failed: `,
          ),
        ) as unknown,
      });
      const [lapsed] = await db.select({ since: herds.restoreLapsedSince }).from(herds).where(eq(herds.id, herdId));
      expect(lapsed!.since).toBeInstanceOf(Date);
      // A second judge finds it the same and says nothing more.
      expect((await judgeRecoverability(db)).raised).toEqual([]);
      await waitFor('the delivery recorded', async () =>
        (await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, hook!.id))).every((d) => d.status === 'delivered'),
      );
      expect(await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, hook!.id))).toHaveLength(1);
      expect(receiver.received).toHaveLength(1);
    } finally {
      await runAsLab(labIdentity(), ['mv', `${segment}.away`, segment]);
      await db.delete(webhooks).where(eq(webhooks.id, hook!.id));
      await receiver.close();
    }
  });

  it('fails, naming the cause, when a file of the backup is truncated', async () => {
    const [b] = await db
      .select()
      .from(backups)
      .where(sql`herd_id = ${herdId} AND gone_at IS NULL`)
      .orderBy(sql`stopped_at DESC`)
      .limit(1);
    const file = (await filesUnder(path.join(repo(), 'backup', 'bk-alpha', b!.label, 'pg_data', 'global'))).find((f) =>
      /pg_control/.test(f),
    )!;
    await runAsLab(labIdentity(), ['cp', '-p', file, `${file}.keep`]);
    await runAsLab(labIdentity(), ['truncate', '-s', '10', file]);
    try {
      const { r, left, last } = await drill(25912);
      expect(r.op.status).toBe('failed');
      expect(last).toMatchObject({ ok: false });
      expect(last.cause).toMatch(/^restore to the end of the archive \(latest\): |verify/);
      expect(left).toBe('gone');
    } finally {
      await runAsLab(labIdentity(), ['mv', `${file}.keep`, file]);
    }
  });

  it('fails, naming the cause, when the stanza the herd is recorded with is not in the repository', async () => {
    await db.update(herdBackupSetups).set({ stanza: 'bk-nope' }).where(eq(herdBackupSetups.herdId, herdId));
    try {
      const { r, left, last } = await drill(25914);
      expect(r.op.status).toBe('failed');
      expect(last).toMatchObject({ ok: false });
      expect(last.cause).toMatch(/^restore to the end of the archive \(latest\): .*bk-nope/);
      expect(left).toBe('gone');
    } finally {
      await db.update(herdBackupSetups).set({ stanza: 'bk-alpha' }).where(eq(herdBackupSetups.herdId, herdId));
    }
  });

  it('fails, naming the cause, when the repository does not decrypt with the environment\u2019s passphrase', async () => {
    const file = path.join(path.dirname(lab.pgAccess!.configFile), 'bk.backup-cipher');
    const right = readFileSync(file, 'utf8');
    // The environment's passphrase changed in PGHERD_PG_CONFIG's file, the repository's did not.
    writeFileSync(file, 'not-the-repository-passphrase\n');
    touch(lab.pgAccess!.configFile);
    try {
      const { r, left, last } = await drill(25915);
      expect(r.op.status, JSON.stringify(r.steps.filter((x) => /verify/.test(x.name)))).toBe('failed');
      expect(last).toMatchObject({ ok: false });
      expect(last.cause).toMatch(/^verify the repository: the repository does not decrypt with bk's passphrase as pgherd holds it now/);
      expect(left).toBe('gone');
      // Nor is either passphrase in any step's record.
      const text = JSON.stringify(r.steps);
      expect(text).not.toContain('not-the-repository-passphrase');
      expect(text).not.toContain(right.trim());
    } finally {
      writeFileSync(file, right);
      touch(lab.pgAccess!.configFile);
    }
  });

  it('fails, naming the cause, when archive_command says it archived and did not', async () => {
    const [{ archive_command: was }] = (await query<{ archive_command: string }>(primary().dsn, 'SHOW archive_command')) as [
      { archive_command: string },
    ];
    await query(primary().dsn, `ALTER SYSTEM SET archive_command = 'true'`);
    await query(primary().dsn, 'SELECT pg_reload_conf()');
    try {
      const { r, left, last } = await drill(25913);
      expect(r.op.status).toBe('failed');
      expect(last.ok).toBe(false);
      expect(last.cause).toMatch(/marker|verify/);
      expect(left).toBe('gone');
    } finally {
      await query(primary().dsn, `ALTER SYSTEM SET archive_command = '${was.replace(/'/g, "''")}'`);
      await query(primary().dsn, 'SELECT pg_reload_conf()');
    }
  });

  it('fails, naming the cause, to a point in time older than retention keeps; passes to a later one, and the herd is protected again', async () => {
    // Archiving that works again (the test above broke it on purpose), proven by a segment that reaches the repository.
    const [w] = await query<{ wal: string }>(primary().dsn, 'SELECT pg_walfile_name(pg_switch_wal()) AS wal');
    await waitFor('archiving again', async () => {
      const [a] = await query<{ ok: boolean }>(primary().dsn, 'SELECT last_archived_wal >= $1 AS ok FROM pg_stat_archiver', [w!.wal]);
      return a!.ok ? true : undefined;
    });
    const before = new Date();
    await new Promise((res) => setTimeout(res, 1100));
    // Two more full backups: the policy keeps two. pgherd's expire keeps this week's too (PGHERD_BACKUP_KEEP_DAYS);
    // once those days have passed, pgBackRest's count lets every backup that ended before `before` go: done here by hand.
    for (const _ of [1, 2]) await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' });
    await runAsLab(labIdentity(), [
      'pgbackrest',
      `--config=${repoConfigPath({ repoPath: repo() }, 'bk-alpha')}`,
      '--stanza=bk-alpha',
      '--repo1-retention-full=2',
      'expire',
    ]);
    const tooOld = await drill(25916, { target: 'time', time: before.toISOString() });
    expect(tooOld.r.op.status).toBe('failed');
    expect(tooOld.last.cause).toMatch(
      new RegExp(`^restore to ${before.toISOString().replace(/[.]/g, '\\.')}: no backup kept in stanza bk-alpha ended by .*retention`),
    );
    expect(tooOld.left).toBe('gone');
    // A time after the newest backup: restored to it, and no further.
    await query(primary().dsn, 'INSERT INTO marker (n) VALUES (7101)');
    await new Promise((res) => setTimeout(res, 300));
    const at = new Date();
    await new Promise((res) => setTimeout(res, 300));
    await query(primary().dsn, 'INSERT INTO marker (n) VALUES (7102)');
    await query(primary().dsn, 'SELECT pg_switch_wal()');
    const ok = await drill(25917, { target: 'time', time: at.toISOString() });
    expect(ok.r.op.status, JSON.stringify(ok.r.steps.map((x) => [x.name, x.status, x.stderrTail.slice(-300)]))).toBe('succeeded');
    expect(ok.last).toMatchObject({ ok: true });
    expect(ok.last.rpoMs).toBeGreaterThanOrEqual(0);
    expect(ok.last.rpoMs).toBeLessThan(1000);
    expect(ok.left).toBe('gone');
    expect((await standing()).verdict).toBe('protected');
    // The lapse is cleared, silently.
    await judgeRecoverability(db);
    const [h] = await db.select({ since: herds.restoreLapsedSince }).from(herds).where(eq(herds.id, herdId));
    expect(h!.since).toBeNull();
  }, 180_000);

  it('of several herds at once: each its own folder and port on the scratch server, shown in the plan', async () => {
    const otherAlpha = (
      await db.execute<{ id: number }>(
        sql`SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = 'other' AND h.name = 'alpha'`,
      )
    ).rows[0]!.id;
    const params = await drillParams(0, 25930);
    const plan = await planOperation(db, SYSTEM_ACCESS, restoreDrillAction, [otherAlpha, herdId], params);
    const mine = plan.targets.find((t) => t.herdId === herdId)!;
    expect(mine.refused).toBeFalsy();
    // Its rank among the two herds (by id) gives its port.
    expect(mine.facts!.find((f) => f.label === 'Onto')!.value).toBe(
      `${scratch(0).server}:${String(25930 + (herdId > otherAlpha ? 1 : 0))} ${path.join(`${path.dirname(params.dataDirectory)}-bk-alpha`, 'data')} (taken away afterwards)`,
    );
  });

  it('cut short (its worker stopped before its cleanup): the reconcile removes its cluster and records the drill as failed', async () => {
    const { r } = await drill(25918);
    expect(r.op.status).toBe('succeeded');
    const [t] = r.targets;
    // As a killed worker leaves it: no verdict, the claim open, the target ended by the reconcile.
    await db.delete(restoreDrills).where(eq(restoreDrills.operationId, r.op.id));
    await db.execute(sql`UPDATE restore_claims SET settled_at = NULL, settled_how = NULL WHERE target_id = ${t!.id}`);
    await db.execute(sql`UPDATE operation_targets SET status = 'failed' WHERE id = ${t!.id}`);
    const ssh = new SshPool({});
    try {
      await waitFor('the claim settled', async () => {
        await settleRestoreClaims(db, ssh);
        const open = await db.execute(sql`SELECT 1 FROM restore_claims WHERE settled_at IS NULL AND target_id = ${t!.id}`);
        return open.rows.length === 0 ? true : undefined;
      });
    } finally {
      await ssh.close();
    }
    const [d] = await db.select().from(restoreDrills).where(eq(restoreDrills.operationId, r.op.id));
    expect(d).toMatchObject({ ok: false, herdId });
    expect(d!.cause).toMatch(/^the drill stopped before it ended/);
    expect((await standing()).verdict).toBe('drill failed');
  });
});

describe('Onto a new EC2 instance (moto behind the lab front)', () => {
  const image = () => lab.backup!.images.find((i) => i.environment === 'bk')!;
  const slots = () => lab.backup!.launch.filter((l) => l.environment === 'bk').map((l) => l.address);
  const where = (name: string, port: number, type = 'm6i.large') => ({
    instanceType: type,
    port: String(port),
    dataDirectory: path.join(image().dataRoot, name, 'data'),
    sslCertFile: image().tls!.certFile,
    sslKeyFile: image().tls!.keyFile,
  });
  /** EC2's word on an instance (through the lab's front, as pgherd asks). */
  const ec2State = async (id: string) => {
    const c = ec2Client(lab.aws!.region);
    try {
      const r = await c.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      return r.Reservations?.[0]?.Instances?.[0];
    } finally {
      c.destroy();
    }
  };
  const launched = (targetIds: number[]) =>
    db.select().from(launchedInstances).where(inArray(launchedInstances.targetId, targetIds)).orderBy(launchedInstances.id);
  const steps = (r: { steps: { name: string; status: string; stderrTail: string; error?: string | null }[] }) =>
    JSON.stringify(r.steps.map((s) => [s.name, s.status, s.error ?? '', s.stderrTail.slice(-300)]));
  const folderLeft = async (dir: string) =>
    (await runAsLab(labIdentity(), ['sh', '-c', 'test -e "$1" && echo left || echo gone', 'x', dir])).stdout.trim();

  beforeAll(async () => {
    // The servers' cloud identity, as EC2 discovery gives it: the primary is the template of a new instance.
    const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags }) })!;
    await discoverEc2(db, cfg, (region) => ec2Client(region));
  });

  it('a restore: priced on the confirmation page, launched like the primary, its host key from its console, torn down with its instance', async () => {
    const params = { name: 'alpha-on-ec2', target: 'latest', ...where('alpha-on-ec2', 25950) };
    const plan = await planOperation(db, SYSTEM_ACCESS, restoreAction, [herdId], params);
    const t = plan.targets[0]!;
    expect(t.refused).toBeFalsy();
    // The price from the shipped list (m6i.large in eu-west-1), per hour and per month, and added to the plan's cost.
    const perHour = priceList().perHour(lab.aws!.region, 'm6i.large')!;
    expect(perHour).toBeGreaterThan(0);
    expect(t.facts!.find((f) => f.label === 'New instance')!.value).toContain(`$${perHour.toFixed(3)}/h on demand`);
    expect(plan.cost).toMatchObject({ nowPerHour: 0, afterPerHour: perHour, targets: 1 });
    expect(t.steps[0]).toMatch(
      /^launch a m6i\.large \(\d+ vCPU, [\d.]+ GiB\) in subnet-\w+ \(eu-west-1\w\) from ami-\w+, like \S+ .*; pin its SSH host key from its console/,
    );

    const r = await runOperation(db, worker.queue, restoreAction, { herdIds: [herdId] }, params);
    expect(r.op.status, steps(r)).toBe('succeeded');
    const [l] = await launched(r.targets.map((x) => x.id));
    expect(l).toMatchObject({ instanceType: 'm6i.large', terminatedAt: null });
    expect(l!.instanceId).toMatch(/^i-/);
    const i = await ec2State(l!.instanceId!);
    expect(i?.State?.Name).toBe('running');
    expect(slots()).toContain(i?.PrivateIpAddress);
    // Launched like the primary: its image and subnet; tagged with the operation.
    const [source] = await db.select().from(servers).where(eq(servers.hostname, primary().server));
    const like = await ec2State(source!.cloudInstanceId!);
    expect([i?.ImageId, i?.SubnetId]).toEqual([like?.ImageId, like?.SubnetId]);
    expect(i?.Tags).toEqual(expect.arrayContaining([{ Key: 'pgherd:launched-by', Value: `operation ${String(r.op.id)}` }]));
    // Its server: in bk, at its address, its host key the one its console printed (the lab's sshd's for bk).
    const [s] = await db.select().from(servers).where(eq(servers.id, l!.serverId!));
    expect(s).toMatchObject({
      address: i?.PrivateIpAddress,
      cloudInstanceId: l!.instanceId,
      sshHostKeyFingerprint: lab.ssh!.environments.bk!.hostKeyFingerprint,
    });
    // The restored herd runs there, and has the source's data.
    const [h] = await db.select().from(herds).where(eq(herds.name, 'alpha-on-ec2'));
    expect(l!.keptHerdId).toBe(h!.id);
    const dsn = `postgres://postgres@${i!.PrivateIpAddress!}:25950/postgres`;
    expect((await query<{ n: number }>(dsn, 'SELECT count(*)::int AS n FROM pitr'))[0]!.n).toBe(100);

    // Tear down: the cluster removed, the herd forgotten, the instance terminated and its server gone.
    const down = await runOperation(db, worker.queue, tearDownRestoredAction, { herdIds: [h!.id] });
    expect(down.op.status, steps(down)).toBe('succeeded');
    expect((await ec2State(l!.instanceId!))?.State?.Name).toBe('terminated');
    expect(await db.select().from(servers).where(eq(servers.id, l!.serverId!))).toEqual([]);
    const [after] = await launched(r.targets.map((x) => x.id));
    expect(after!.terminatedAt).not.toBeNull();
    expect(after!.settledHow).toBe('terminated by Tear down');
    expect(await folderLeft(path.join(image().dataRoot, 'alpha-on-ec2'))).toBe('gone');
  });

  it('a drill: launched, proven, terminated when it ends; no server left', async () => {
    // EC2 gives a terminated instance's address to a new one: the inventory still has servers of those
    // names (discovery marks them gone, never deletes them). The new one is named by its instance id too.
    const bk = (await db.execute<{ id: number }>(sql`SELECT id FROM environments WHERE name = 'bk'`)).rows[0]!.id;
    const dead = slots().map((a) => `ip-${a.replace(/\./g, '-')}.${lab.aws!.region}.compute.internal`);
    await db.insert(servers).values(dead.map((hostname) => ({ hostname, environmentId: bk, cloudState: 'gone', cloudGoneAt: new Date() })));
    const r = await runOperation(db, worker.queue, restoreDrillAction, { herdIds: [herdId] }, where('drill-ec2', 25960)).finally(() =>
      db.delete(servers).where(inArray(servers.hostname, dead)),
    );
    expect(r.op.status, steps(r)).toBe('succeeded');
    expect(r.steps.map((x) => x.stdoutTail).join('\n')).toMatch(
      /i-\w+\.ip-127-0-15-23\d\.eu-west-1\.compute\.internal \(127\.0\.15\.23\d\) answers over SSH/,
    );
    const [d] = await db.select().from(restoreDrills).where(eq(restoreDrills.operationId, r.op.id));
    expect(d).toMatchObject({ ok: true, cause: '' });
    const [l] = await launched(r.targets.map((x) => x.id));
    expect(l!.settledHow).toBe('terminated by its cleanup');
    expect((await ec2State(l!.instanceId!))?.State?.Name).toBe('terminated');
    expect(l!.serverId).toBeNull();
    expect(await db.select().from(servers).where(eq(servers.cloudInstanceId, l!.instanceId!))).toEqual([]);
    expect(await folderLeft(path.join(image().dataRoot, 'drill-ec2-bk-alpha'))).toBe('gone');
  });

  it('a console that names another key than the host presents: refused at SSH, the instance terminated, nothing registered, no verdict', async () => {
    writeFileSync(lab.aws!.capacityFile, JSON.stringify({ console: 'other-key' }));
    try {
      const before = await db.select().from(restoreDrills).where(eq(restoreDrills.herdId, herdId));
      const r = await runOperation(db, worker.queue, restoreDrillAction, { herdIds: [herdId] }, where('drill-forged', 25961));
      expect(r.op.status).toBe('failed');
      expect(r.targets[0]!.error).toMatch(/host key/i);
      const [l] = await launched(r.targets.map((x) => x.id));
      expect(l!.settledHow).toBe('terminated by its cleanup');
      expect((await ec2State(l!.instanceId!))?.State?.Name).toBe('terminated');
      expect(await db.select().from(servers).where(eq(servers.cloudInstanceId, l!.instanceId!))).toEqual([]);
      // The instance could not be had: nothing is said of the herd's backups.
      expect(await db.select().from(restoreDrills).where(eq(restoreDrills.herdId, herdId))).toEqual(before);
    } finally {
      writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient: [] }));
    }
  });

  it('refused at planning, nothing launched: no such type, a server and a type both, the VPC another environment\u2019s, no capacity', async () => {
    const before = (await db.select().from(launchedInstances)).length;
    const plan = (p: Record<string, unknown>) => planOperation(db, SYSTEM_ACCESS, restoreAction, [herdId], p);
    const base = { name: 'alpha-refused', ...where('alpha-refused', 25951) };
    expect((await plan({ ...base, instanceType: 'm6i.huge' })).targets[0]!.refused).toMatch(/eu-west-1 has no instance type m6i\.huge/);
    // A type the price list does not price is counted as unpriced in the total, never left out.
    expect((await plan({ ...base, instanceType: 't2.nano' })).cost).toMatchObject({ targets: 0, unpriced: 1 });
    // A data directory whose folder would be / is refused before anything is launched.
    await expect(plan({ ...base, dataDirectory: '/data' })).rejects.toThrow(/inside a folder of its own/);
    await expect(plan({ ...base, serverId: String(await scratchId(0)) })).rejects.toThrow(/serverId .* or instanceType .*one of the two/);
    await expect(plan({ ...base, instanceType: 'm6i.large; reboot' })).rejects.toThrow(/an EC2 instance type such as m6i\.large/);
    // The configuration maps bk's VPC to another environment: a new instance there would not be bk's.
    const was = process.env.PGHERD_AWS_ENVIRONMENTS;
    process.env.PGHERD_AWS_ENVIRONMENTS = JSON.stringify(
      JSON.parse(labAwsEnvironments(lab.aws!)).map((e: { environment: string }) => ({
        ...e,
        environment: e.environment === 'bk' ? 'other' : 'bk',
      })),
    );
    try {
      expect((await plan(base)).targets[0]!.refused).toMatch(/which PGHERD_AWS_ENVIRONMENTS maps to other, not bk/);
    } finally {
      process.env.PGHERD_AWS_ENVIRONMENTS = was;
    }
    // EC2 has no m6i.large now: the restore fails at its launch, and nothing is left.
    writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient: ['m6i.large'] }));
    try {
      const r = await runOperation(db, worker.queue, restoreAction, { herdIds: [herdId] }, base);
      expect(r.op.status).toBe('failed');
      expect(r.targets[0]!.error).toMatch(/InsufficientInstanceCapacity|sufficient m6i\.large capacity/);
      expect(await db.select().from(herds).where(eq(herds.name, 'alpha-refused'))).toEqual([]);
      const [l] = await launched(r.targets.map((x) => x.id));
      expect(l).toMatchObject({ instanceId: null, settledHow: 'terminated by its cleanup' });
      // A drill whose instance cannot be had leaves the herd as it was: no marker written on its primary, no verdict.
      const markers = async () => (await query<{ n: number }>(primary().dsn, `SELECT count(*)::int AS n FROM ${MARKER_TABLE}`))[0]!.n;
      const [m0, d0] = [await markers(), (await db.select().from(restoreDrills).where(eq(restoreDrills.herdId, herdId))).length];
      const d = await runOperation(db, worker.queue, restoreDrillAction, { herdIds: [herdId] }, where('drill-no-capacity', 25962));
      expect(d.op.status).toBe('failed');
      expect([await markers(), (await db.select().from(restoreDrills).where(eq(restoreDrills.herdId, herdId))).length]).toEqual([m0, d0]);
    } finally {
      writeFileSync(lab.aws!.capacityFile, JSON.stringify({ insufficient: [] }));
    }
    expect((await db.select().from(launchedInstances)).length).toBe(before + 2);
  });

  it('a restored herd deleted by hand from the inventory: the reconcile removes its cluster and terminates its instance; discovery kept it meanwhile', async () => {
    // Discovery configured (as the demo's worker has it): a launch carries the tags it filters on.
    const discovery = JSON.stringify({ regions: [lab.aws!.region], tags: lab.aws!.discoveryTags });
    process.env.PGHERD_AWS_DISCOVERY = discovery;
    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      { name: 'alpha-deleted', target: 'latest', ...where('alpha-deleted', 25952) },
    ).finally(() => delete process.env.PGHERD_AWS_DISCOVERY);
    expect(r.op.status, steps(r)).toBe('succeeded');
    const [l] = await launched(r.targets.map((x) => x.id));
    // EC2 discovery sees it (it carries the discovery tags): its server is not taken for gone.
    const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: discovery })!;
    await discoverEc2(db, cfg, (region) => ec2Client(region));
    const [seen] = await db.select().from(servers).where(eq(servers.id, l!.serverId!));
    expect(seen).toMatchObject({ cloudState: 'running', cloudGoneAt: null });
    const address = (await ec2State(l!.instanceId!))!.PrivateIpAddress!;
    // An admin deletes the herd's row (Admin › Herds), not Tear down: nothing would track it any more.
    await db.delete(herds).where(eq(herds.name, 'alpha-deleted'));
    const ssh = new SshPool({});
    try {
      await settleRestoreClaims(db, ssh);
    } finally {
      await ssh.close();
    }
    expect((await ec2State(l!.instanceId!))?.State?.Name).toBe('terminated');
    expect(await db.select().from(servers).where(eq(servers.id, l!.serverId!))).toEqual([]);
    await expect(query(`postgres://postgres@${address}:25952/postgres`, 'SELECT 1')).rejects.toThrow();
    expect(await folderLeft(path.join(image().dataRoot, 'alpha-deleted'))).toBe('gone');
    // The claim's record outlives its server.
    const [c] = await db
      .execute<{ server_id: number | null; settled_how: string }>(
        sql`SELECT server_id, settled_how FROM restore_claims WHERE target_id = ${r.targets[0]!.id}`,
      )
      .then((x) => x.rows);
    expect(c).toEqual({
      server_id: null,
      settled_how: "removed by a worker's reconcile: the herd it was kept for was deleted from the inventory",
    });
  });

  it('an instance whose worker died before EC2 answered (its id never recorded): found by its client token and terminated by the reconcile; one that only carries the token as a tag is left', async () => {
    // A target that ended (any earlier one), and an instance launched for it whose id pgherd never learnt.
    const [t] = await db
      .select({ id: operationTargets.id })
      .from(operationTargets)
      .where(eq(operationTargets.status, 'succeeded'))
      .limit(1);
    const [source] = await db.select().from(servers).where(eq(servers.hostname, primary().server));
    const client = ec2Client(lab.aws!.region);
    const token = `pgherd-test-orphan-${String(Date.now())}`;
    try {
      const template = (await launchTemplateOf(client, lab.aws!.region, source!.cloudInstanceId!))!;
      // The row is written before EC2 is asked, as a launch does.
      const [{ id }] = (
        await db.execute<{ id: number }>(sql`
          INSERT INTO launched_instances (target_id, environment_id, region, client_token, instance_type)
          VALUES (${t!.id}, ${source!.environmentId}, ${lab.aws!.region}, ${token}, 'm6i.large') RETURNING id`)
      ).rows as [{ id: number }];
      // Anyone allowed ec2:CreateTags can put the token on an instance as a tag: that one is not the launch's.
      const decoy = await launchInstance(client, template, 'm6i.large', { 'pgherd:launch-token': token }, `decoy-${token}`);
      const orphan = await launchInstance(client, template, 'm6i.large', { 'pgherd:launch-token': token }, token);
      expect((await ec2State(orphan.instanceId))?.State?.Name).not.toBe('terminated');
      const ssh = new SshPool({});
      try {
        expect(await settleRestoreClaimsAndLaunches(ssh)).toContain(id);
      } finally {
        await ssh.close();
      }
      expect((await ec2State(orphan.instanceId))?.State?.Name).toBe('terminated');
      expect((await ec2State(decoy.instanceId))?.State?.Name).toBe('running');
      await client.send(new TerminateInstancesCommand({ InstanceIds: [decoy.instanceId] }));
      const [l] = await db.select().from(launchedInstances).where(eq(launchedInstances.id, id));
      expect(l).toMatchObject({ instanceId: orphan.instanceId });
      expect(l!.settledHow).toMatch(/^terminated by a worker's reconcile: its target ended succeeded without its cleanup/);
    } finally {
      client.destroy();
    }
  });
  const settleRestoreClaimsAndLaunches = async (ssh: SshPool) => {
    await settleRestoreClaims(db, ssh);
    return (
      await db
        .select({ id: launchedInstances.id })
        .from(launchedInstances)
        .where(sql`terminated_at > now() - interval '1 minute'`)
    ).map((x) => x.id);
  };
});

describe('An S3 repository (moto behind the lab\u2019s TLS front)', () => {
  let otherId: number;
  const otherMembers = () => lab.instances.filter((i) => i.environment === 'other' && i.herd === 'alpha');
  const otherPrimary = () => otherMembers().find((i) => i.role === 'primary')!;
  /** The keys of the bucket's objects under `prefix`, as moto lists them. */
  const objects = async (prefix: string) => {
    const xml = await (
      await fetch(`${lab.aws!.motoUrl}/${lab.aws!.s3!.buckets.other!}?list-type=2&prefix=${encodeURIComponent(prefix)}`)
    ).text();
    return [...xml.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]!);
  };

  beforeAll(async () => {
    otherId = (
      await db.execute<{ id: number }>(
        sql`SELECT h.id FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = 'other' AND h.name = 'alpha'`,
      )
    ).rows[0]!.id;
    const s3 = lab.aws!.s3!;
    // The environment's policy, as an admin sets it for a bucket in an S3-compatible store reached at its own address.
    await db
      .update(backupPolicies)
      .set({
        repoKind: 's3',
        repoServerId: null,
        repoPath: '/pgbackrest',
        s3Bucket: s3.buckets.other!,
        s3Endpoint: s3.endpoint,
        s3Region: 'eu-west-1',
        s3ConnectHost: s3.host,
        s3Port: s3.port,
        s3CaFile: s3.caFile,
      })
      .where(sql`herd_id IS NULL AND environment_id = (SELECT id FROM environments WHERE name = 'other')`);
  });

  it('configures the herd, archives its WAL to the bucket over verified TLS, backs up from the replica and proves a restore', async () => {
    const c = await runOperation(db, worker.queue, configureBackupsAction, { herdIds: [otherId] });
    expect(c.op.status, JSON.stringify(c.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-400)]))).toBe('succeeded');
    const conf = readFileSync(memberConfigPath(otherPrimary().dataDirectory), 'utf8');
    expect(conf).toContain('repo1-type=s3');
    expect(conf).toContain(`repo1-storage-ca-file=${lab.aws!.s3!.caFile}`);
    expect(conf).toContain('backup-standby=y');

    // WAL reaches the bucket.
    const [w] = await query<{ wal: string }>(otherPrimary().dsn, 'SELECT pg_walfile_name(pg_switch_wal()) AS wal');
    await waitFor('the segment archived', async () => {
      const [a] = await query<{ ok: boolean }>(otherPrimary().dsn, 'SELECT last_archived_wal >= $1 AS ok FROM pg_stat_archiver', [w!.wal]);
      return a!.ok ? true : undefined;
    });
    expect((await objects('pgbackrest/archive/other-alpha/')).some((k) => k.includes(`/${w!.wal}-`))).toBe(true);

    // A full backup, its files read from the replica: pgBackRest waited for the standby to replay the backup's start.
    const b = await runOperation(db, worker.queue, backupAction, { herdIds: [otherId] }, { type: 'full' });
    expect(b.op.status, JSON.stringify(b.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-400)]))).toBe('succeeded');
    const [row] = await db.select().from(backups).where(eq(backups.herdId, otherId));
    expect(row).toMatchObject({ type: 'full', operationId: b.op.id });
    expect((await objects(`pgbackrest/backup/other-alpha/${row!.label}/`)).length).toBeGreaterThan(100);
    const log = readFileSync(path.join(path.dirname(otherPrimary().dataDirectory), 'pgbackrest', 'log', 'other-alpha-backup.log'), 'utf8');
    expect(log).toMatch(/wait for replay on the standby/);

    // A drill onto the environment's scratch server restores it from the bucket.
    const scratchOther = lab.backup!.scratch.find((x) => x.environment === 'other')!;
    const [srv] = await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, scratchOther.server));
    const d = await runOperation(
      db,
      worker.queue,
      restoreDrillAction,
      { herdIds: [otherId] },
      {
        serverId: String(srv!.id),
        port: '25920',
        dataDirectory: path.join(scratchOther.dataRoot, 'drill-s3', 'data'),
        sslCertFile: scratchOther.tls!.certFile,
        sslKeyFile: scratchOther.tls!.keyFile,
      },
    );
    expect(d.op.status, JSON.stringify(d.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-400)]))).toBe('succeeded');
    const [drilled] = await db.select().from(restoreDrills).where(eq(restoreDrills.herdId, otherId));
    expect(drilled).toMatchObject({ ok: true });
    // The S3 keys are in no step's record.
    const key = readFileSync(path.join(path.dirname(lab.pgAccess!.configFile), 'other.s3-secret'), 'utf8').trim();
    const leaked = await db.execute(sql`
      SELECT s.name FROM operation_steps s JOIN operation_targets t ON t.id = s.target_id
      WHERE t.operation_id = ANY(${sql.param([c.op.id, b.op.id, d.op.id])}::bigint[])
        AND (s.command || s.stdout_tail || s.stderr_tail) LIKE ${`%${key}%`}`);
    expect(leaked.rows).toEqual([]);
  }, 240_000);
});
