// A major upgrade in place on lab herds of their own (ip/till and ip/cash: a primary and a replica each on
// Debian's 15, on 127.0.72.x), to the lab's Debian 17 (a whole PostgreSQL: pg_upgrade, pg_basebackup), its
// agents told where it is as an admin would. cash is backed up with the lab's pgBackRest 2.45, which does
// not know 17: refused with nothing stopped. pg_upgrade --check refuses what it finds with nothing
// stopped. Then till (not backed up by pgherd: "without a backup") is upgraded under a writer that
// reconnects and retries: every acknowledged row is on the upgraded primary and on its replica copied
// afresh, the downtime measured, the old cluster kept.
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { herds, instances } from '@/db/schema';
import { seededDatabase } from '@/lib/lab/seed';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { ingestLabReports } from '@/lib/lab/agents';
import { debianBuild } from '@/lib/lab/debian-build';
import { runOperation, startTestWorker, type TestWorker } from '@/lib/testing/operations';
import { startReconnectingWriter } from '@/lib/testing/writer';
import { waitFor } from '@/lib/testing/wait';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { configureBackupsAction } from '@/lib/actions/backups/configure-backups.action';
import { newDirectoryOf, oldDirectoryOf, upgradeInPlaceAction } from './in-place.action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-inplace-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void> = () => Promise.resolve();
let worker: TestWorker | null = null;
let herdId: number;
let cashId: number;

const url = (i: Pick<LabInstance, 'address' | 'port'>) => `postgres://postgres@${i.address}:${i.port}/postgres`;
const members = (herd = 'till') => lab.instances.filter((i) => i.herd === herd);
const primary = () => members().find((i) => i.role === 'primary')!;
const replica = () => members().find((i) => i.role === 'replica')!;
const runUpgrade = (params: Record<string, unknown>) =>
  runOperation(db, worker!.queue, upgradeInPlaceAction, { herdIds: [herdId] }, params, { username: 'inplace-test', timeoutMs: 600_000 });
const refused = async (params: Record<string, unknown>, id = herdId) =>
  (await planOperation(db, SYSTEM_ACCESS, upgradeInPlaceAction, [id], params)).targets[0]!.refused;
const without = { toVersion: '17', withoutBackup: true };
const versionOf = async (i: LabInstance) =>
  (await query<{ v: number }>(url(i), 'SELECT current_setting($1)::int AS v', ['server_version_num']))[0]!.v;
const failedSteps = (r: Awaited<ReturnType<typeof runUpgrade>>) =>
  JSON.stringify(r.steps.filter((s) => s.status === 'failed').map((s) => [s.name, s.stderrTail.slice(-800)]));

beforeAll(async () => {
  lab = await startLab({
    aws: false,
    ldap: false,
    file: LAB_FILE,
    fleet: { environments: ['ip'], herds: ['till', 'cash'], replicas: 1, sites: ['dc-east'], subnet: '127.0.72' },
    pgbouncer: [],
  });
  useLabSettings(lab);
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  herdId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'till')))[0]!.id;
  cashId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'cash')))[0]!.id;
  // As an admin adds the build to the agents' buildDirectories.
  await ingestLabReports(db, lab, { alsoBuilds: [debianBuild().binDir] });
  worker = await startTestWorker(lab, 'inplace', 2);
  const conf = await runOperation(db, worker.queue, configureBackupsAction, { herdIds: [cashId] }, {}, { timeoutMs: 240_000 });
  expect(conf.op.status).toBe('succeeded');
}, 300_000);

afterAll(async () => {
  await worker?.close();
  await closeDb();
  await stopLab(LAB_FILE);
});

describe('a major upgrade in place', () => {
  it('is refused at planning for what it cannot do, naming why', async () => {
    expect(await refused({ ...without, toVersion: '15' })).toMatch(/not a later major than the herd's 15/);
    expect(await refused({ ...without, toVersion: '16' })).toMatch(/no build of 16 is reported on every member's host/);
    expect(await refused({ ...without, toVersion: '17.99' })).toMatch(/no 17\.99 build on/);
    // No way back, no upgrade: a herd pgherd does not back up needs the operator to say so.
    expect(await refused({ toVersion: '17' })).toMatch(/not configured for backups yet.*the way back.*tick "without a backup"/);
    // A herd whose WAL goes to a stanza cannot leave it behind.
    expect(await refused(without, cashId)).toMatch(/archived to pgBackRest's stanza ip-cash: the upgrade must upgrade the stanza/);
    const plan = await planOperation(db, SYSTEM_ACCESS, upgradeInPlaceAction, [cashId], { toVersion: '17' });
    const t = plan.targets[0]!;
    expect(t.refused).toBeUndefined();
    expect(t.facts?.find((f) => f.label === 'To')?.value).toContain(debianBuild().version);
    const cashPrimary = members('cash').find((i) => i.role === 'primary')!;
    expect(t.facts?.find((f) => f.label === 'Old cluster kept at')?.value).toContain(oldDirectoryOf(cashPrimary.dataDirectory, 15));
    // The backup before is the way back, and the page says the old cluster is gone once the new one starts.
    expect(t.steps.filter((s) => /^take a incremental backup of stanza|--check --link against/.test(s))).toHaveLength(2);
    expect(t.steps.findIndex((s) => s.startsWith('take a incremental backup'))).toBeLessThan(
      t.steps.findIndex((s) => s.includes('--check')),
    );
    expect(t.warnings.join(' ')).toMatch(/the backup taken before is the way back/);
  });

  it('refuses, with nothing stopped, a herd whose pgBackRest does not know the new major: its archiving would stop', async () => {
    const p = members('cash').find((i) => i.role === 'primary')!;
    const r = await runOperation(
      db,
      worker!.queue,
      upgradeInPlaceAction,
      { herdIds: [cashId] },
      { toVersion: '17' },
      { timeoutMs: 120_000 },
    );
    expect(r.op.status).toBe('failed');
    expect(r.targets[0]!.error).toMatch(/pgBackRest 2\.\d+ on .* does not know PostgreSQL 17 \(2\.53 and later do\).*nothing was changed/);
    expect(r.steps.map((s) => s.name)).toEqual(['check the build and the primary']);
    for (const i of members('cash')) expect(Math.floor((await versionOf(i)) / 10000)).toBe(15);
    expect(existsSync(newDirectoryOf(p.dataDirectory, 17))).toBe(false);
  }, 180_000);

  it('refuses what pg_upgrade --check finds with nothing stopped: a reg* column, the herd as it was', async () => {
    // pg_upgrade cannot carry a regproc value (an OID of this cluster) over to the new one.
    await query(url(primary()), 'CREATE TABLE oids (r regproc)');
    try {
      const r = await runUpgrade(without);
      expect(r.op.status).toBe('failed');
      expect(r.targets[0]!.error).toMatch(/pg_upgrade --check failed: .*reg\*.*nothing was stopped/i);
      expect(r.steps.find((s) => s.name === 'stop the replicas')).toBeUndefined();
      // Nothing stopped, nothing left behind.
      expect(Math.floor((await versionOf(primary())) / 10000)).toBe(15);
      expect(Math.floor((await versionOf(replica())) / 10000)).toBe(15);
      expect(existsSync(newDirectoryOf(primary().dataDirectory, 17))).toBe(false);
      expect((await db.select().from(instances).where(eq(instances.herdId, herdId))).every((i) => i.pgVersion === 15)).toBe(true);
    } finally {
      await query(url(primary()), 'DROP TABLE oids');
    }
  }, 600_000);

  it("refuses, with nothing changed, where a replica's host holds a leftover of an earlier try: it is someone's, not pgherd's to remove", async () => {
    const left = `${replica().dataDirectory}.pgherd-old-15`;
    mkdirSync(left);
    writeFileSync(path.join(left, 'keep-me'), "an operator's\n");
    try {
      const r = await runUpgrade(without);
      expect(r.op.status).toBe('failed');
      expect(r.targets[0]!.error).toContain(`${left} exists already on ${replica().server}`);
      expect(r.steps.map((s) => s.name)).toEqual(['check the build and the primary']);
      expect(readFileSync(path.join(left, 'keep-me'), 'utf8')).toBe("an operator's\n");
      for (const i of members()) expect(Math.floor((await versionOf(i)) / 10000)).toBe(15);
    } finally {
      rmSync(left, { recursive: true, force: true });
    }
  }, 180_000);

  it('upgrades 15 to 17 under a writer that retries: every acknowledged row there, the downtime measured, the replica copied afresh', async () => {
    const p = primary();
    await query(url(p), 'CREATE TABLE writes (n int PRIMARY KEY)');
    await query(url(p), 'CREATE TABLE kept AS SELECT g AS n, md5(g::text) AS v FROM generate_series(1, 50000) g');
    const before = (await db.select().from(herds).where(eq(herds.id, herdId)))[0]!;
    const clusterName = async () => (await query<{ c: string }>(url(replica()), "SELECT current_setting('cluster_name') AS c"))[0]!.c;
    const replicaName = await clusterName();
    // A file of the replica's own (its host's certificate, say): carried over to its fresh copy, not the primary's.
    writeFileSync(path.join(replica().dataDirectory, 'replica-own.crt'), "the replica's\n");
    const writer = startReconnectingWriter(async () => url(p));
    await waitFor('the writer commits before the upgrade', async () => writer.acked.length >= 20);
    const r = await runUpgrade(without);
    // It commits again on the upgraded primary: the rows after the downtime are part of what is checked.
    const done = writer.acked.length;
    await waitFor('the writer commits after the upgrade', async () => writer.acked.length >= done + 20);
    await writer.stop();
    expect(r.op.status, failedSteps(r)).toBe('succeeded');
    const want = debianBuild();
    expect(await versionOf(p)).toBe(want.versionNum);
    expect(await versionOf(replica())).toBe(want.versionNum);
    // Every acknowledged commit is on the upgraded primary, and on its replica once it has replayed.
    expect(writer.acked.length).toBeGreaterThan(50);
    const on = async (i: LabInstance) => new Set((await query<{ n: number }>(url(i), 'SELECT n FROM writes')).map((x) => x.n));
    const rows = await on(p);
    expect(writer.acked.filter((n) => !rows.has(n))).toEqual([]);
    expect((await query<{ c: number }>(url(p), 'SELECT count(*)::int AS c FROM kept'))[0]!.c).toBe(50000);
    const step = r.steps.find((s) => s.name.startsWith(`start ${p.server} on`))!;
    const downtime = Number(/down for (\d+) ms/.exec(step.stdoutTail)?.[1]);
    console.log(
      `in place 15 -> 17: down for ${downtime} ms (the writer's longest gap ${writer.maxGapMs.toFixed(0)} ms, ${writer.errors.length} failed tries); the whole upgrade ${r.ms.toFixed(0)} ms`,
    );
    expect(downtime).toBeGreaterThan(0);
    expect(writer.maxGapMs).toBeGreaterThanOrEqual(downtime * 0.5);
    // The replica streams from the upgraded primary, with its own settings (its cluster_name) kept.
    const rep = replica();
    const [wr] = await query<{ status: string; sender: string }>(
      url(rep),
      'SELECT status, sender_host AS sender FROM pg_stat_wal_receiver',
    );
    expect(wr).toEqual({ status: 'streaming', sender: p.address });
    expect(await clusterName()).toBe(replicaName);
    expect(readFileSync(path.join(rep.dataDirectory, 'replica-own.crt'), 'utf8')).toBe("the replica's\n");
    // The inventory: each member's build and major, the herd's new system identifier.
    const inv = await db.select().from(instances).where(eq(instances.herdId, herdId));
    for (const i of inv) expect(i).toMatchObject({ binDir: realpathSync(want.binDir), pgVersion: 17, serverVersionNum: want.versionNum });
    const after = (await db.select().from(herds).where(eq(herds.id, herdId)))[0]!;
    const sys = (await query<{ s: string }>(url(p), 'SELECT system_identifier::text AS s FROM pg_control_system()'))[0]!.s;
    expect(after).toMatchObject({ pgVersion: 17, systemIdentifier: sys });
    expect(after.systemIdentifier).not.toBe(before.systemIdentifier);
    // The data directory keeps its path; the old cluster is kept beside it, its settings carried over.
    expect(readFileSync(path.join(p.dataDirectory, 'PG_VERSION'), 'utf8').trim()).toBe('17');
    expect(readFileSync(path.join(oldDirectoryOf(p.dataDirectory, 15), 'PG_VERSION'), 'utf8').trim()).toBe('15');
    expect(readFileSync(path.join(p.dataDirectory, 'pg_hba.conf'), 'utf8')).toBe(
      readFileSync(path.join(oldDirectoryOf(p.dataDirectory, 15), 'pg_hba.conf'), 'utf8'),
    );
    // Its statistics were rebuilt.
    expect((await query<{ n: number }>(url(p), "SELECT count(*)::int AS n FROM pg_stats WHERE tablename = 'kept'"))[0]!.n).toBeGreaterThan(
      0,
    );
  }, 900_000);
});
