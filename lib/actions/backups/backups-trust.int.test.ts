// What backups may not be made to do, against the real pgBackRest, Postgres and OpenSSH of a lab of its own:
// the drill's marker is written only into pgherd's own schema (a planted table or schema with a trigger that
// would make its owner superuser is refused, naming why); full backups in a row never push the recovery
// window out (an operator may not take one; the time floor keeps the older backup and a restore before the
// newer ones still works); a restored copy starts cut off from the source's publisher (its subscription
// disabled, slot none), and the publisher's slot keeps serving the source.
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import { backupPolicies, herds, servers } from '@/db/schema';
import { startLab, stopLab, PROJECT_ROOT, type LabInfo } from '@/lib/lab/lab';
import { initPrimary, query, startNode, type PgNode } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { run as runAsLab, labIdentity } from '@/lib/lab/proc';
import { runOperation, startTestWorker, type TestWorker } from '@/lib/testing/operations';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS, type Access } from '@/lib/engine/access';
import { waitFor } from '@/lib/testing/wait';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { repoConfigPath } from '@/lib/fleet/backups/pgbackrest';
import { getEditable } from '@/lib/features/admin/registry';
import { saveObject } from '@/lib/features/admin/mutations';
import { configureBackupsAction } from './configure-backups.action';
import { backupAction } from './backup.action';
import { restoreAction } from './restore.action';
import { restoreDrillAction } from './restore-drill.action';
import { tearDownRestoredAction } from './tear-down.action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'backups-trust-test.json');
const PREFIX = 't-backups-trust';
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker;
let herdId: number;
let envId: number;

const members = () => lab.instances.filter((i) => i.environment === 'bk' && i.herd === 'alpha');
const primary = () => members().find((i) => i.role === 'primary')!;
const scratch = (n: number) => lab.backup!.scratch.filter((x) => x.environment === 'bk')[n]!;
const scratchId = async (n: number) =>
  (
    await db
      .select({ id: servers.id })
      .from(servers)
      .where(eq(servers.hostname, scratch(n).server))
  )[0]!.id;
const place = async (n: number, port: number, name: string) => ({
  serverId: String(await scratchId(n)),
  port: String(port),
  dataDirectory: path.join(scratch(n).dataRoot, name, 'data'),
  sslCertFile: scratch(n).tls!.certFile,
  sslKeyFile: scratch(n).tls!.keyFile,
});
const stepsOf = (r: { steps: { name: string; status: string; stderrTail: string }[] }) =>
  JSON.stringify(r.steps.map((s) => [s.name, s.status, s.stderrTail.slice(-300)]));
/** The stanza's full backups as the repository lists them (the truth), read on the backup host. */
async function fullsListed(): Promise<string[]> {
  const host = lab.backup!.hosts.find((h) => h.environment === 'bk')!;
  const info = await runAsLab(labIdentity(), [
    'pgbackrest',
    `--config=${repoConfigPath({ repoPath: host.repoPath }, 'bk-alpha')}`,
    '--stanza=bk-alpha',
    '--output=json',
    'info',
  ]);
  return [...info.stdout.matchAll(/"label":"([^"]+F)"/g)].map((m) => m[1]!);
}
async function tearDown(name: string) {
  const [h] = await db.select().from(herds).where(eq(herds.name, name));
  if (h) await runOperation(db, worker.queue, tearDownRestoredAction, { herdIds: [h.id] });
}

beforeAll(async () => {
  lab = await startLab({
    ldap: false,
    aws: false,
    file: LAB_FILE,
    fleet: { environments: ['bk'], herds: ['alpha'], replicas: 1, sites: ['dc-east'], subnet: '127.0.16' },
    pgbouncer: [],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  const row = (
    await db.execute<{ id: number; env: number }>(
      sql`SELECT h.id, h.environment_id AS env FROM herds h JOIN environments e ON e.id = h.environment_id WHERE e.name = 'bk' AND h.name = 'alpha'`,
    )
  ).rows[0]!;
  herdId = row.id;
  envId = row.env;
  worker = await startTestWorker(lab, PREFIX, 2);
  // One full backup kept by count: what the policy says; the time floor keeps more.
  await db.update(backupPolicies).set({ retentionFull: 1 }).where(eq(backupPolicies.environmentId, envId));
  const conf = await runOperation(db, worker.queue, configureBackupsAction, { herdIds: [herdId] });
  expect(conf.op.status, stepsOf(conf)).toBe('succeeded');
  const full = await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' });
  expect(full.op.status, stepsOf(full)).toBe('succeeded');
}, 240_000);

afterAll(async () => {
  await ifAssigned(worker)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
}, 60_000);

describe('The drill\u2019s marker is pgherd\u2019s own', () => {
  it('a planted marker table and a schema pgherd owned by a plain role with a trigger: refused naming why, the role not made superuser', async () => {
    const dsn = primary().dsn;
    const escalate = `BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; RETURN NEW; END`;
    await query(dsn, `CREATE ROLE mallory LOGIN`);
    await query(dsn, `GRANT CREATE ON SCHEMA public TO mallory`);
    await query(dsn, `GRANT CREATE ON DATABASE postgres TO mallory`);
    // As mallory: the old name in public, and schema pgherd with the new name, each with a trigger that runs as its writer.
    for (const [schema, table] of [
      ['public', 'pgherd_restore_drill_marker'],
      ['pgherd', 'restore_drill_marker'],
    ] as const) {
      await query(
        dsn,
        `SET ROLE mallory;
         CREATE SCHEMA IF NOT EXISTS ${schema};
         CREATE TABLE ${schema}.${table} (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), operation bigint);
         CREATE FUNCTION ${schema}.${table}_up() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$${escalate}$$;
         CREATE TRIGGER up BEFORE INSERT ON ${schema}.${table} FOR EACH ROW EXECUTE FUNCTION ${schema}.${table}_up();`,
      );
    }
    const r = await runOperation(db, worker.queue, restoreDrillAction, { herdIds: [herdId] }, await place(0, 26301, 'drill-planted'));
    expect(r.op.status).not.toBe('succeeded');
    expect(r.targets[0]!.error, stepsOf(r)).toMatch(/schema pgherd belongs to role mallory, not to pgherd_bk: pgherd writes nothing there/);
    const [role] = await query<{ rolsuper: boolean }>(dsn, `SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'`);
    expect(role!.rolsuper).toBe(false);
    const [n] = await query<{ a: number; b: number }>(
      dsn,
      `SELECT (SELECT count(*) FROM public.pgherd_restore_drill_marker)::int AS a, (SELECT count(*) FROM pgherd.restore_drill_marker)::int AS b`,
    );
    expect(n).toEqual({ a: 0, b: 0 });

    // The schema gone, pgherd makes its own; mallory's table in public is never written to, and the drill passes.
    await query(dsn, `DROP SCHEMA pgherd CASCADE`);
    const ok = await runOperation(db, worker.queue, restoreDrillAction, { herdIds: [herdId] }, await place(0, 26302, 'drill-own'));
    expect(ok.op.status, stepsOf(ok)).toBe('succeeded');
    const [own] = await query<{ owner: string; rows: number; planted: number }>(
      dsn,
      `SELECT (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'pgherd') AS owner,
              (SELECT count(*) FROM pgherd.restore_drill_marker)::int AS rows, (SELECT count(*) FROM public.pgherd_restore_drill_marker)::int AS planted`,
    );
    expect(own).toEqual({ owner: 'pgherd_bk', rows: 1, planted: 0 });
    expect((await query<{ rolsuper: boolean }>(dsn, `SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'`))[0]!.rolsuper).toBe(false);
  }, 240_000);
});

describe('The recovery window', () => {
  it('a full backup is an admin\u2019s: an operator is refused naming the role, an incremental stays theirs', async () => {
    const operator: Access = {
      userId: null,
      username: 'olga',
      superuser: false,
      global: null,
      byEnvironment: new Map([[envId, 'operator']]),
    };
    await expect(planOperation(db, operator, backupAction, [herdId], { type: 'full' })).rejects.toThrow(
      /Back up needs the admin role in bk/,
    );
    expect((await planOperation(db, operator, backupAction, [herdId], { type: 'incr' })).targets[0]!.refused ?? null).toBeNull();
  });

  it('two full backups 20 s apart expire nothing of the window: a restore to before them still works', async () => {
    const before = await fullsListed();
    expect(before.length).toBeGreaterThanOrEqual(1);
    await query(primary().dsn, 'CREATE TABLE window_rows (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    await query(primary().dsn, 'INSERT INTO window_rows (n) VALUES (1)');
    const [t] = await query<{ at: Date }>(primary().dsn, 'SELECT clock_timestamp() AS at');
    await query(primary().dsn, 'INSERT INTO window_rows (n) VALUES (2)');
    await query(primary().dsn, 'SELECT pg_switch_wal()');
    const t0 = Date.now();
    const a = await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' });
    expect(a.op.status, stepsOf(a)).toBe('succeeded');
    await waitFor('20 s after the first full backup', async () => (Date.now() - t0 >= 20_000 ? true : undefined), 30_000);
    const b = await runOperation(db, worker.queue, backupAction, { herdIds: [herdId] }, { type: 'full' });
    expect(b.op.status, stepsOf(b)).toBe('succeeded');
    // The policy keeps one full backup by count; the floor (PGHERD_BACKUP_KEEP_DAYS) keeps every one of these days.
    const after = await fullsListed();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBe(before.length + 2);

    const r = await runOperation(
      db,
      worker.queue,
      restoreAction,
      { herdIds: [herdId] },
      { name: 'alpha-window', target: 'time', time: t!.at.toISOString(), ...(await place(1, 26311, 'alpha-window')), expiresInHours: '2' },
    );
    expect(r.op.status, stepsOf(r)).toBe('succeeded');
    const rows = await query<{ n: number }>(
      `postgres://postgres@${scratch(1).address}:26311/postgres`,
      'SELECT n FROM window_rows ORDER BY n',
    );
    expect(rows.map((x) => x.n)).toEqual([1]);
    await tearDown('alpha-window');
  }, 240_000);
});

describe('A restored copy starts cut off', () => {
  const publisher: PgNode = {
    name: 'publisher',
    address: '127.0.16.240',
    port: 26320,
    dataDirectory: '',
    socketDirectory: '',
    logFile: '',
  };

  it('the copy\u2019s subscription is disabled with slot none; the publisher\u2019s slot still serves the source', async () => {
    const home = path.join(lab.dir, 'pg', 'publisher');
    Object.assign(publisher, {
      dataDirectory: path.join(home, 'data'),
      socketDirectory: path.join(home, 'run'),
      logFile: path.join(lab.dir, 'log', 'publisher.log'),
    });
    await initPrimary(labIdentity(), publisher, ['wal_level = logical']);
    await startNode(labIdentity(), publisher);
    try {
      const pub = `postgres://postgres@${publisher.address}:${publisher.port}/postgres`;
      await query(pub, 'CREATE TABLE feed (n int PRIMARY KEY)');
      await query(pub, 'CREATE PUBLICATION feed_pub FOR TABLE feed');
      await query(pub, 'INSERT INTO feed VALUES (1)');
      await query(primary().dsn, 'CREATE TABLE feed (n int PRIMARY KEY)');
      await query(
        primary().dsn,
        `CREATE SUBSCRIPTION feed_sub CONNECTION 'host=${publisher.address} port=${publisher.port} user=postgres dbname=postgres' PUBLICATION feed_pub`,
      );
      const arrived = (n: number) => async () =>
        (await query<{ n: number }>(primary().dsn, 'SELECT n FROM feed WHERE n = $1', [n])).length ? true : undefined;
      await waitFor('the source to receive row 1', arrived(1));
      await query(primary().dsn, 'SELECT pg_switch_wal()');

      const r = await runOperation(
        db,
        worker.queue,
        restoreAction,
        { herdIds: [herdId] },
        { name: 'alpha-copy', target: 'latest', ...(await place(1, 26321, 'alpha-copy')), expiresInHours: '2' },
      );
      expect(r.op.status, stepsOf(r)).toBe('succeeded');
      const copy = `postgres://postgres@${scratch(1).address}:26321/postgres`;
      const subs = await query<{ subname: string; subenabled: boolean; subslotname: string | null }>(
        copy,
        'SELECT subname, subenabled, subslotname FROM pg_subscription',
      );
      expect(subs).toEqual([{ subname: 'feed_sub', subenabled: false, subslotname: null }]);
      const [workers] = await query<{ v: string; preload: string }>(
        copy,
        `SELECT current_setting('max_logical_replication_workers') AS v, current_setting('shared_preload_libraries') AS preload`,
      );
      expect(workers!.v).toBe('0');
      expect(workers!.preload).not.toContain('pg_cron');
      // The plan says so.
      expect(r.plan.targets[0]!.steps.join('\n')).toMatch(/disable every subscription the copy holds and set its slot to none/);

      // The publisher's slot is the source's still: a row published now reaches the source.
      await query(pub, 'INSERT INTO feed VALUES (2)');
      await waitFor('the source to receive row 2', arrived(2));
      const [slot] = await query<{ active: boolean }>(pub, `SELECT active FROM pg_replication_slots WHERE slot_name = 'feed_sub'`);
      expect(slot).toEqual({ active: true });
      // The source's apply worker holds it; the copy runs none.
      const running = `SELECT count(*)::int AS n FROM pg_stat_subscription WHERE pid IS NOT NULL`;
      expect((await query<{ n: number }>(primary().dsn, running))[0]!.n).toBe(1);
      expect((await query<{ n: number }>(copy, running))[0]!.n).toBe(0);
      expect((await query(copy, 'SELECT n FROM feed WHERE n = 2')).length).toBe(0);
      await tearDown('alpha-copy');
    } finally {
      await query(primary().dsn, 'DROP SUBSCRIPTION IF EXISTS feed_sub').catch(() => {});
      await runAsLab(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', publisher.dataDirectory, '-m', 'immediate', 'stop']).catch(() => {});
    }
  }, 240_000);
});

describe('S3 backups go only where the configuration says', () => {
  it('the policy save refuses another bucket, endpoint or CA and an unencrypted S3 repository; the plan takes the configuration\u2019s place', async () => {
    const file = lab.pgAccess!.configFile;
    const original = readFileSync(file, 'utf8');
    const config = JSON.parse(original) as { environments: Record<string, { backup: Record<string, unknown> }> };
    const place = {
      bucket: 'bk-backups',
      endpoint: 's3.internal.example',
      region: 'eu-west-1',
      connectHost: '10.1.2.3',
      caFile: '/etc/ssl/store.pem',
    };
    const [before] = await db.select().from(backupPolicies).where(eq(backupPolicies.environmentId, envId));
    const input = (over: Record<string, unknown>) => ({
      environmentId: envId,
      herdId: '',
      tool: 'pgbackrest',
      repoKind: 's3',
      repoServerId: '',
      repoPath: '/pgbackrest',
      s3Bucket: place.bucket,
      s3Endpoint: place.endpoint,
      s3Region: place.region,
      s3ConnectHost: '',
      s3Port: 443,
      s3CaFile: '',
      retentionFull: 2,
      compressType: 'zst',
      encrypt: 'true',
      fromStandby: 'true',
      archiveTimeoutSeconds: 60,
      ...over,
    });
    const save = (over: Record<string, unknown>) =>
      saveObject(db, getEditable('backup-policies')!, before!.id, input(over), {
        id: null,
        username: 'admin-tester',
        access: SYSTEM_ACCESS,
      });
    const refusal = async (over: Record<string, unknown>) => {
      const r = await save(over);
      return r.ok ? 'saved' : r.fieldErrors;
    };
    // No place configured for bk: no S3 policy at all.
    expect(await refusal({})).toEqual({ repoKind: expect.stringMatching(/PGHERD_PG_CONFIG names no S3 repository for bk/) as unknown });
    config.environments.bk!.backup.s3 = place;
    writeFileSync(file, JSON.stringify(config));
    const t = new Date(statSync(file).mtimeMs + 2000);
    utimesSync(file, t, t);
    try {
      expect(await refusal({ s3Endpoint: 'attacker.example.net' })).toEqual({
        s3Endpoint:
          "bk's S3 endpoint is s3.internal.example (PGHERD_PG_CONFIG backup.s3): S3 backups go only where the configuration says.",
      });
      expect(await refusal({ s3Bucket: 'someone-elses', s3ConnectHost: '203.0.113.9', s3CaFile: '/tmp/mine.pem' })).toEqual({
        s3Bucket: expect.stringMatching(/bk's S3 bucket is bk-backups/) as unknown,
        s3ConnectHost: expect.stringMatching(/connect-to address is 10\.1\.2\.3/) as unknown,
        s3CaFile: expect.stringMatching(/CA file is \/etc\/ssl\/store\.pem/) as unknown,
      });
      expect(await refusal({ encrypt: 'false' })).toEqual({ encrypt: expect.stringMatching(/always encrypted/) as unknown });
      // Nothing of it was written.
      expect((await db.select().from(backupPolicies).where(eq(backupPolicies.id, before!.id)))[0]).toEqual(before);

      // Fields written around the save (an older row, a hand edit) are not where the plan goes: the configuration is.
      await db
        .update(backupPolicies)
        .set({
          repoKind: 's3',
          repoServerId: null,
          s3Bucket: 'someone-elses',
          s3Endpoint: 'attacker.example.net',
          s3CaFile: '/tmp/mine.pem',
        })
        .where(eq(backupPolicies.id, before!.id));
      const plan = await planOperation(db, SYSTEM_ACCESS, configureBackupsAction, [herdId]);
      const does = JSON.stringify(plan.targets[0]!.does);
      expect(does).toContain('"endpoint":"s3.internal.example"');
      expect(does).not.toMatch(/attacker|someone-elses|mine\.pem/);
      await db.update(backupPolicies).set({ encrypt: false }).where(eq(backupPolicies.id, before!.id));
      expect((await planOperation(db, SYSTEM_ACCESS, configureBackupsAction, [herdId])).targets[0]!.refused).toMatch(
        /an S3 repository is always encrypted/,
      );
    } finally {
      await db.update(backupPolicies).set(before!).where(eq(backupPolicies.id, before!.id));
      writeFileSync(file, original);
      const t2 = new Date(statSync(file).mtimeMs + 4000);
      utimesSync(file, t2, t2);
    }
  });
});
