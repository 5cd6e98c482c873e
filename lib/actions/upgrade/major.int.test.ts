// A major upgrade by blue/green on a lab herd of its own (bg/shop: a primary and a replica on Debian's
// 15, PgBouncer in front, on 127.0.71.x): the pre-check finds each seeded blocker; green is built on
// the lab's Debian 17 on a scratch server and catches up, and gets a replica on the other scratch
// server before the cut-over is allowed (blue's shape); the cut-over, the roll back and the cut-over again
// run under a writer through PgBouncer whose rows take their keys from a sequence: no acknowledged
// commit lost, no duplicate key, every row on the side that takes the writes; the clean up stops blue.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { desc, eq, inArray } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessFor } from '@/lib/fleet/pg-access';
import type { Db } from '@/db/client';
import { herds, instances, majorUpgrades, operationTargets, owedCleanups, servers } from '@/db/schema';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { settleOwed } from '@/lib/actions/steps/settle-owed';
import { seededDatabase } from '@/lib/lab/seed';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { restartInstance } from '@/lib/lab/faults';
import { labIdentity, run } from '@/lib/lab/proc';
import { labBuild } from '@/lib/lab/builds';
import { debianBuild } from '@/lib/lab/debian-build';
import { addReplicaAction } from '@/lib/actions/grow/add-replica.action';
import { ingestLabReports } from '@/lib/lab/agents';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import { runOperation, startTestWorker, type TestWorker } from '@/lib/testing/operations';
import { startWriter, type Writer } from '@/lib/testing/writer';
import { waitFor } from '@/lib/testing/wait';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import type { AnyAction } from '@/lib/engine/define-action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { upgradeCleanupAction } from './cleanup.action';
import { upgradeCutoverAction } from './cut-over.action';
import { upgradeMajorAction } from './build.action';
import { upgradePrecheckAction } from './precheck.action';
import { upgradeRollbackAction } from './roll-back.action';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-bluegreen-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void> = () => Promise.resolve();
let worker: TestWorker | null = null;
let blueId: number;
let scratchId: number;

const url = (i: Pick<LabInstance, 'address' | 'port'>) => `postgres://postgres@${i.address}:${i.port}/postgres`;
const bluePrimary = () => lab.instances.find((i) => i.herd === 'shop' && i.role === 'primary')!;
const runOp = (action: AnyAction, params: Record<string, unknown> = {}, timeoutMs = 240_000) =>
  runOperation(db, worker!.queue, action, { herdIds: [blueId] }, params, { username: 'bluegreen-test', timeoutMs });
const refused = async (action: AnyAction, params: Record<string, unknown>) =>
  (await planOperation(db, SYSTEM_ACCESS, action, [blueId], params)).targets[0]!.refused;
/** The newest upgrade: an abandoned one stays on record before it. */
const latestUpgrade = async () => (await db.select().from(majorUpgrades).orderBy(desc(majorUpgrades.id)).limit(1))[0]!;
const failedSteps = (r: Awaited<ReturnType<typeof runOp>>) =>
  JSON.stringify(r.steps.filter((s) => s.status === 'failed').map((s) => [s.name, s.stderrTail.slice(-600)]));

beforeAll(async () => {
  lab = await startLab({
    aws: false,
    ldap: false,
    file: LAB_FILE,
    fleet: { environments: ['bg'], herds: ['shop'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.71' },
    pgbouncer: [{ environment: 'bg', herd: 'shop' }],
  });
  useLabSettings(lab);
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  blueId = (await db.select({ id: herds.id }).from(herds).where(eq(herds.name, 'shop')))[0]!.id;
  await ingestLabReports(db, lab, { alsoBuilds: [debianBuild().binDir] });
  scratchId = (await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, lab.backup!.scratch[0]!.server)))[0]!.id;
  worker = await startTestWorker(lab, 'bluegreen', 4);
}, 240_000);

afterAll(async () => {
  await worker?.close();
  await closeDb();
  await stopLab(LAB_FILE);
});

describe('blue/green major upgrade', () => {
  const scratch = () => lab.backup!.scratch[0]!;
  // npm's 17 (the server alone) where green needs no replica; Debian's (pg_basebackup too) for the one that gets one.
  const place = () => ({
    toVersion: labBuild('17').version,
    serverId: scratchId,
    dataDirectory: path.join(scratch().dataRoot, 'green17'),
    sslCertFile: scratch().tls!.certFile,
    sslKeyFile: scratch().tls!.keyFile,
  });

  it('pre-check: names each seeded blocker, and a clean herd passes', async () => {
    const p = url(bluePrimary());
    await query(p, 'CREATE TABLE no_key (v int)');
    await query(p, 'CREATE TABLE regs (id int PRIMARY KEY, r regclass)');
    await query(p, 'CREATE EXTENSION adminpack');
    // A database libpq would read as a connection string (another host) if it were passed bare.
    await query(p, 'CREATE DATABASE "host=127.0.0.1 dbname=x"');
    const why = await refused(upgradeMajorAction, place());
    expect(why).toMatch(/database "host=127\.0\.0\.1 dbname=x": libpq reads a name with "=" .* as a connection string/);
    await query(p, 'DROP DATABASE "host=127.0.0.1 dbname=x"');
    expect(why).toMatch(/wal_level is replica: logical replication needs logical/);
    expect(why).toMatch(/postgres: 1 table\(s\) without a primary key or replica identity \(public\.no_key\)/);
    expect(why).toMatch(/column\(s\) of a reg\* type \(public\.regs\.r \(regclass\)\)/);
    expect(why).toMatch(/extension adminpack .* is not installed with the target build/);
    // The pre-check action says the same, and changes nothing.
    const pre = await planOperation(db, SYSTEM_ACCESS, upgradePrecheckAction, [blueId], { toVersion: '17', serverId: scratchId });
    expect(pre.targets[0]!.facts?.find((f) => f.label === 'Blockers')?.value).toMatch(/wal_level.*no_key.*regclass.*adminpack/s);
    // Mended: a key, no reg* column, no adminpack, wal_level logical (a restart of the primary).
    await query(p, 'ALTER TABLE no_key REPLICA IDENTITY FULL');
    await query(p, 'DROP TABLE regs');
    await query(p, 'DROP EXTENSION adminpack');
    await query(p, 'ALTER SYSTEM SET wal_level = logical');
    await restartInstance(lab, bluePrimary());
    const ok = await planOperation(db, SYSTEM_ACCESS, upgradePrecheckAction, [blueId], { toVersion: '17', serverId: scratchId });
    expect(ok.targets[0]!.refused).toBeUndefined();
    expect(ok.targets[0]!.facts?.find((f) => f.label === 'Blockers')?.value).toBe('none');
    // Bad input changes nothing.
    await expect(
      planOperation(db, SYSTEM_ACCESS, upgradeMajorAction, [blueId], { ...place(), dataDirectory: '/tmp/../etc' }),
    ).rejects.toThrow(/absolute path|no \.\./);
    expect(await refused(upgradeMajorAction, { ...place(), toVersion: '15' })).toMatch(/not a later major/);
    expect(await refused(upgradeCutoverAction, {})).toMatch(/no major upgrade under way/);
  });

  it('refuses to write a marker table another role made: a trigger there would run as pgherd\u2019s superuser', async () => {
    const p = url(bluePrimary());
    await query(p, `CREATE ROLE mallory LOGIN`);
    await query(p, `GRANT CREATE ON DATABASE postgres TO mallory`);
    const asMallory = p.replace('postgres@', 'mallory@');
    await query(asMallory, `CREATE SCHEMA pgherd`);
    await query(
      asMallory,
      `CREATE TABLE pgherd.upgrade_marker (token text PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    );
    await query(
      asMallory,
      `CREATE FUNCTION pgherd.lift() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; RETURN NEW; END $$`,
    );
    await query(
      asMallory,
      `CREATE TRIGGER lift BEFORE INSERT OR UPDATE OR DELETE ON pgherd.upgrade_marker FOR EACH ROW EXECUTE FUNCTION pgherd.lift()`,
    );
    const herdsBefore = (await db.select({ id: herds.id }).from(herds)).length;
    const r = await runOp(upgradeMajorAction, place(), 300_000);
    expect(r.targets[0]!.error).toMatch(/schema pgherd belongs to role mallory, not to pgherd_bg: pgherd writes nothing there/);
    expect((await query<{ s: boolean }>(p, `SELECT rolsuper AS s FROM pg_roles WHERE rolname = 'mallory'`))[0]!.s).toBe(false);
    // Nothing of green stays: no herd, no upgrade, its directory gone, the table left as it was.
    expect((await db.select({ id: herds.id }).from(herds)).length).toBe(herdsBefore);
    expect(await db.select().from(majorUpgrades)).toEqual([]);
    expect((await query<{ n: number }>(p, 'SELECT count(*)::int AS n FROM pgherd.upgrade_marker'))[0]!.n).toBe(0);
    await query(p, 'DROP SCHEMA pgherd CASCADE');
    await query(p, 'REVOKE CREATE ON DATABASE postgres FROM mallory');
  });

  it('abandons an upgrade whose green its agent does not see and whose herd was then deleted: blue writable and unlocked', async () => {
    const dir = path.join(scratch().dataRoot, 'green17-abandoned');
    const r = await runOp(upgradeMajorAction, { ...place(), dataDirectory: dir, port: 5433 }, 300_000);
    expect(r.targets[0]!.error, failedSteps(r)).toBeNull();
    const u = await latestUpgrade();
    expect(u.status).toBe('ready');
    const green = `postgres://postgres@${scratch().address}:5433/postgres`;
    expect((await query<{ r: boolean }>(green, 'SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    // Green's server's agent looks in no socket directory of green's: its report says nothing of green.
    // Postgres answers as a primary there, and that is what the inventory keeps.
    await ingestLabReports(db, lab, { alsoBuilds: [debianBuild().binDir] });
    const [g] = await db.select().from(instances).where(eq(instances.herdId, u.greenHerdId!));
    expect(g!.state).toBe('running');
    // Green has no replica, blue has one: green would take the writes with less than the herd's shape.
    expect(await refused(upgradeCutoverAction, {})).toMatch(
      /green \(bg\/shop-17\) has 0 running replica\(s\), blue has 1 \(.*\): add them/,
    );
    expect(await refused(upgradeCutoverAction, { fewerReplicas: true })).toBeUndefined();
    // Green's herd deleted from the inventory: blue is held by the upgrade until it is abandoned.
    await db.delete(herds).where(eq(herds.id, u.greenHerdId!));
    expect(await refused(switchoverAction, {})).toMatch(/part of major upgrade #\d+ \(ready\)/);
    const c = await runOp(upgradeCleanupAction);
    expect(c.targets[0]!.error, failedSteps(c)).toBeNull();
    expect((await latestUpgrade()).status).toBe('cleaned');
    const blue = url(bluePrimary());
    await query(blue, 'CREATE TABLE abandoned_ok (id int PRIMARY KEY)');
    await query(blue, 'DROP TABLE abandoned_ok');
    expect(await refused(switchoverAction, {})).toBeUndefined();
    expect(await query(blue, `SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgherd%'`)).toEqual([]);
    expect(await query(blue, `SELECT pubname FROM pg_publication`)).toEqual([]);
    expect(await query(blue, `SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgherd\\_upgrade\\_%'`)).toEqual([]);
    // The green pgherd no longer knew of is stopped by hand, as its operator would.
    await run(labIdentity(), [path.join(labBuild('17').binDir, 'pg_ctl'), '-D', dir, '-m', 'fast', '-w', 'stop']);
  });

  let writer: Writer | null = null;
  const pooler = () => lab.pgbouncer[0]!;
  const envPassword = () => accessFor('bg').postgres.password!;
  const servedBy = async () => (await query<{ a: string }>(pooler().dsn, 'SELECT host(inet_server_addr()) AS a'))[0]!.a;

  it('abandons a cut-over upgrade whose green is lost: roll back refused, the write name and PgBouncer back on blue, blue writable', async () => {
    const dir = path.join(scratch().dataRoot, 'green17-lost');
    const r = await runOp(upgradeMajorAction, { ...place(), dataDirectory: dir, port: 5434 }, 300_000);
    expect(r.targets[0]!.error, failedSteps(r)).toBeNull();
    const cut = await runOp(upgradeCutoverAction, { fewerReplicas: true });
    expect(cut.targets[0]!.error, failedSteps(cut)).toBeNull();
    expect((await latestUpgrade()).status).toBe('cut-over');
    expect(await servedBy()).toBe(scratch().address);
    const writeName = lab.dns!.herds.find((h) => h.herd === 'shop')!.writeName;
    expect(await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME')).toEqual([scratch().server]);
    // Green's machine is lost: its postmaster killed, nothing answers on its port.
    process.kill(Number(readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
    const green = `postgres://postgres@${scratch().address}:5434/postgres`;
    await waitFor('green answers nothing', async () =>
      (await query(green, 'SELECT 1').then(
        () => false,
        () => true,
      ))
        ? true
        : undefined,
    );
    expect(await refused(upgradeRollbackAction, {})).toMatch(
      /green is lost \(.*does not answer.*\): a roll back needs it; Clean up abandons it/,
    );
    const plan = await planOperation(db, SYSTEM_ACCESS, upgradeCleanupAction, [blueId], {});
    const t = plan.targets[0]!;
    expect(t.refused).toBeUndefined();
    expect(t.steps.join('\n')).toMatch(/point .* back at .*the cut-over pointed it at green/);
    expect(t.warnings.join('\n')).toMatch(/writes green took after that stay on green's disk/);

    const c = await runOp(upgradeCleanupAction);
    expect(c.targets[0]!.error, failedSteps(c)).toBeNull();
    const u = await latestUpgrade();
    expect(u.status).toBe('cleaned');
    expect(
      await db
        .select()
        .from(herds)
        .where(eq(herds.id, u.greenHerdId ?? -1)),
    ).toEqual([]);
    expect(await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME')).toEqual([bluePrimary().server]);
    expect(await servedBy()).toBe(bluePrimary().address);
    const blue = url(bluePrimary());
    await query(blue, 'CREATE TABLE lost_ok (id int PRIMARY KEY)');
    await query(pooler().dsn, 'INSERT INTO lost_ok VALUES (1)');
    await query(blue, 'DROP TABLE lost_ok');
    expect(await refused(switchoverAction, {})).toBeUndefined();
    expect(await query(blue, `SELECT subname FROM pg_subscription`)).toEqual([]);
    expect(await query(blue, `SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgherd%'`)).toEqual([]);
    expect(await query(blue, `SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgherd\\_upgrade\\_%'`)).toEqual([]);
  });

  it('builds green on 17 and follows the copy until it is current, while blue takes writes', async () => {
    await query(pooler().dsn, 'CREATE TABLE items (id bigserial PRIMARY KEY, n int NOT NULL)');
    await query(pooler().dsn, 'INSERT INTO items (n) SELECT -g FROM generate_series(1, 20000) g');
    // A sequence whose next value is set but not yet called: pg_sequences says null for it.
    const p = url(bluePrimary());
    await query(p, 'CREATE TABLE t2 (id serial PRIMARY KEY, v text)');
    await query(p, `INSERT INTO t2 (id, v) SELECT g, 'x' FROM generate_series(1, 100) g`);
    await query(p, `SELECT setval('t2_id_seq', 101, false)`);
    // A second database, in another encoding and locale than the postgres database: its own subscription
    // and slot, and green's copy made in its encoding and locale (not green's defaults).
    await query(p, `CREATE DATABASE shop2 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`);
    const p2 = p.replace(/\/postgres$/, '/shop2');
    await query(p2, 'CREATE TABLE notes (id int PRIMARY KEY, v text)');
    await query(p2, `INSERT INTO notes SELECT g, 'n' FROM generate_series(1, 500) g`);
    writer = startWriter(pooler().dsn, 'items');
    await waitFor('the writer commits', async () => writer!.acked.length > 100);
    const to = debianBuild();
    const r = await runOp(upgradeMajorAction, { ...place(), toVersion: to.version }, 300_000);
    expect(r.targets[0]!.error, failedSteps(r)).toBeNull();
    expect(r.targets[0]!.outcome).toContain(`bg/shop-17 on ${to.version} is ready`);
    const u = await latestUpgrade();
    expect(u).toMatchObject({ status: 'ready', blueHerdId: blueId, toVersionNum: to.versionNum });
    const [g] = await db.select().from(instances).where(eq(instances.herdId, u.greenHerdId!));
    expect(g).toMatchObject({ binDir: realpathSync(to.binDir), serverVersionNum: to.versionNum, role: 'primary' });
    const green = `postgres://postgres@${scratch().address}:${String(g!.port)}/postgres`;
    const [v] = await query<{ v: number }>(green, `SELECT current_setting('server_version_num')::int AS v`);
    expect(v!.v).toBe(to.versionNum);
    // Green's subscriptions connect as the upgrade's own role, never with pgherd's environment-wide password,
    // and keep pgherd's rule: the certificate verified against the environment's CA, SCRAM bound to the channel.
    const subs = await query<{ c: string }>(green, 'SELECT subconninfo AS c FROM pg_subscription');
    expect(subs).toHaveLength(2);
    for (const { c } of subs) {
      expect(c).not.toContain(envPassword());
      expect(c).toMatch(new RegExp(`user='pgherd_upgrade_${String(u.id)}'`));
      expect(c).toMatch(/sslmode='verify-full'/);
      expect(c).toMatch(/sslrootcert='[^']+pgherd-upgrade-ca\.crt'/);
      expect(c).toMatch(/channel_binding='require'/);
      expect(c).toMatch(/require_auth='scram-sha-256'/);
    }
    const [role] = await query<{ super: boolean; repl: boolean }>(
      p,
      `SELECT rolsuper AS super, rolreplication AS repl FROM pg_roles WHERE rolname = $1`,
      [`pgherd_upgrade_${String(u.id)}`],
    );
    expect(role).toEqual({ super: false, repl: true });
    await waitFor("green has the second database's rows", async () =>
      Number((await query<{ n: string }>(green.replace(/\/postgres$/, '/shop2'), 'SELECT count(*) AS n FROM notes'))[0]!.n) === 500
        ? true
        : undefined,
    );
    const [shop2] = await query<{ encoding: string; collate: string; ctype: string }>(
      green,
      `SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype FROM pg_database WHERE datname = 'shop2'`,
    );
    expect(shop2).toEqual({ encoding: 'LATIN1', collate: 'C', ctype: 'C' });
    await waitFor('green has the seeded rows', async () =>
      Number((await query<{ n: string }>(green, 'SELECT count(*) AS n FROM items WHERE n < 0'))[0]!.n) === 20000 ? true : undefined,
    );
  });

  it("gives green the herd's shape before the cut-over: a replica added to it streams on the new build, and the cut-over is no longer refused", async () => {
    expect(await refused(upgradeCutoverAction, {})).toMatch(/has 0 running replica\(s\), blue has 1/);
    const u = await latestUpgrade();
    const spare = lab.backup!.scratch[1]!;
    const [srv] = await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, spare.server));
    const r = await runOperation(
      db,
      worker!.queue,
      addReplicaAction,
      { herdIds: [u.greenHerdId!] },
      {
        serverId: String(srv!.id),
        dataDirectory: path.join(spare.dataRoot, 'green17-replica', 'data'),
        sslCertFile: spare.tls!.certFile,
        sslKeyFile: spare.tls!.keyFile,
        seed: 'primary',
      },
      { username: 'bluegreen-test', timeoutMs: 300_000 },
    );
    expect(r.targets[0]!.error, failedSteps(r)).toBeNull();
    const rep = (await db.select().from(instances).where(eq(instances.herdId, u.greenHerdId!))).find((i) => i.role === 'replica')!;
    expect(rep).toMatchObject({ binDir: realpathSync(debianBuild().binDir), state: 'running' });
    const dsn = `postgres://postgres@${spare.address}:${String(rep.port)}/postgres`;
    const [seen] = await query<{ v: number; rec: boolean }>(
      dsn,
      `SELECT current_setting('server_version_num')::int AS v, pg_is_in_recovery() AS rec`,
    );
    expect(seen).toEqual({ v: debianBuild().versionNum, rec: true });
    await waitFor('the green replica has the seeded rows', async () =>
      Number((await query<{ n: string }>(dsn, 'SELECT count(*) AS n FROM items WHERE n < 0'))[0]!.n) === 20000 ? true : undefined,
    );
    expect(await refused(upgradeCutoverAction, {})).toBeUndefined();
  });

  it('cuts over, rolls back and cuts over again under the writer: nothing lost, no duplicate key, the names and PgBouncer follow', async () => {
    const u = await latestUpgrade();
    // Blue logs every statement: the cut-over's subscription on blue must leave no password there.
    const blueLog = path.join(lab.dir, 'log', `${bluePrimary().server}.log`);
    await query(url(bluePrimary()), `ALTER SYSTEM SET log_statement = 'all'`);
    await query(url(bluePrimary()), 'SELECT pg_reload_conf()');
    const logFrom = readFileSync(blueLog, 'utf8').length;
    const [g] = await db.select().from(instances).where(eq(instances.herdId, u.greenHerdId!));
    const green = `postgres://postgres@${scratch().address}:${String(g!.port)}/postgres`;
    const blue = url(bluePrimary());
    const writeName = lab.dns!.herds.find((h) => h.herd === 'shop')!.writeName;
    const gaps: number[] = [];
    // The rows acknowledged so far (the writer goes on meanwhile): each one is there.
    const everyAckedOn = async (dsn: string) => {
      const acked = [...writer!.acked];
      const n = Number((await query<{ n: string }>(dsn, 'SELECT count(*) AS n FROM items WHERE n = ANY($1::int[])', [acked]))[0]!.n);
      expect(n).toBe(acked.length);
    };
    const switchUnderWriter = async (action: AnyAction) => {
      const before = writer!.acked.length;
      const gap0 = writer!.maxGapMs;
      const r = await runOp(action);
      expect(r.targets[0]!.error, failedSteps(r)).toBeNull();
      await waitFor('the writer commits after the switch', async () => writer!.acked.length > before + 100);
      gaps.push(writer!.maxGapMs > gap0 ? writer!.maxGapMs : gap0);
      return r;
    };

    // A client of blue's own, in the middle of a transaction when the cut-over comes: ended, never acknowledged.
    const direct = new pg.Client({ connectionString: blue });
    direct.on('error', () => {});
    await direct.connect();
    await direct.query('BEGIN');
    await direct.query('INSERT INTO items (n) VALUES (-999999)');
    // An application's own login on blue, not a superuser, idle when the cut-over comes, that insists on
    // writing: BEGIN READ WRITE overrides default_transaction_read_only, so only the door holds it.
    await query(blue, `CREATE ROLE app_hostile LOGIN PASSWORD 'app-hostile-pw'`);
    // A limit of its own on one database: the door gives it back as it was.
    await query(blue, 'ALTER DATABASE shop2 CONNECTION LIMIT 40');
    // Its owner is the hostile login: the owner of a database may change its limit, from any database it reaches.
    await query(blue, 'ALTER DATABASE shop2 OWNER TO app_hostile');
    await query(blue, 'GRANT INSERT, SELECT ON items TO app_hostile; GRANT USAGE ON SEQUENCE items_id_seq TO app_hostile');
    const hostileUrl = blue.replace(/^postgres:\/\/postgres@/, 'postgres://app_hostile:app-hostile-pw@');
    const hostile = { acked: [] as number[], refused: new Set<string>(), stop: false };
    const insist = (async () => {
      let c: pg.Client | null = null;
      for (let n = 5_000_000; !hostile.stop; n++) {
        try {
          if (!c) {
            c = new pg.Client({ connectionString: hostileUrl });
            c.on('error', () => {});
            await c.connect();
          }
          await c.query('BEGIN READ WRITE');
          await c.query('INSERT INTO items (n) VALUES ($1)', [n]);
          await c.query('COMMIT');
          hostile.acked.push(n);
        } catch (err) {
          hostile.refused.add((err as Error).message.replace(/\d+/g, 'N'));
          await c?.end().catch(() => {});
          c = null;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      await c?.end().catch(() => {});
    })();
    await waitFor('the hostile client commits on blue', async () => (hostile.acked.length > 20 ? true : undefined));
    await switchUnderWriter(upgradeCutoverAction);
    // Through the switch and after it, until blue has refused it at the door: every commit blue
    // acknowledged to it is on green.
    await waitFor('blue refuses the hostile client at the door', async () =>
      [...hostile.refused].some((m) => /too many connections for database/.test(m)) ? true : undefined,
    );
    hostile.stop = true;
    await insist;
    const onGreen = async () =>
      Number((await query<{ n: string }>(green, 'SELECT count(*) AS n FROM items WHERE n = ANY($1::int[])', [hostile.acked]))[0]!.n);
    expect(await onGreen(), `${String(hostile.acked.length)} acknowledged to the hostile client`).toBe(hostile.acked.length);
    expect([...hostile.refused].join('; ')).toMatch(/too many connections for database/);
    // Not even through template1, to lift its own database's limit.
    await expect(query(hostileUrl.replace(/\/postgres$/, '/template1'), 'ALTER DATABASE shop2 CONNECTION LIMIT -1')).rejects.toThrow(
      /too many connections for database/,
    );
    expect((await latestUpgrade()).status).toBe('cut-over');
    const [back] = await query<{ c: string }>(
      blue,
      `SELECT subconninfo AS c FROM pg_subscription WHERE subname LIKE 'pgherd_back_%' LIMIT 1`,
    );
    expect(back!.c).toMatch(new RegExp(`user='pgherd_upgrade_${String(u.id)}'`));
    expect(back!.c).toMatch(/sslmode='verify-full'.*channel_binding='require'/);
    expect(back!.c).not.toContain(envPassword());
    const logged = readFileSync(blueLog, 'utf8').slice(logFrom);
    expect(logged).toMatch(/statement: /); // it does log statements
    expect(logged).not.toMatch(/CREATE SUBSCRIPTION|CREATE ROLE pgherd_upgrade|ALTER ROLE pgherd_upgrade/);
    expect(logged).not.toContain(envPassword());
    await query(blue, 'ALTER SYSTEM RESET log_statement');
    await query(blue, 'SELECT pg_reload_conf()');
    await expect(direct.query('COMMIT')).rejects.toThrow(/terminat|connection error/);
    await direct.end().catch(() => {});
    for (const dsn of [blue, green]) expect(await query(dsn, 'SELECT 1 FROM items WHERE n = -999999')).toEqual([]);
    expect(await lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName, 'CNAME')).toEqual([scratch().server]);
    expect((await query<{ a: string }>(pooler().dsn, 'SELECT host(inet_server_addr()) AS a'))[0]!.a).toBe(scratch().address);
    await expect(query(blue, 'INSERT INTO items (n) VALUES (0)')).rejects.toThrow(/read-only transaction/);
    // Neither side's primary moves while the upgrade is open.
    expect(await refused(switchoverAction, {})).toMatch(/part of major upgrade #\d+ \(cut-over\)/);
    // The sequence set but not called on blue is past blue's rows on green.
    await query(green, `INSERT INTO t2 (v) VALUES ('after the cut-over')`);
    await everyAckedOn(green);

    await switchUnderWriter(upgradeRollbackAction);
    expect((await latestUpgrade()).status).toBe('ready');
    // Blue serves again: its door is open, each database's limit as it was.
    expect(await query(hostileUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(
      await query(blue, `SELECT datname, datconnlimit AS l FROM pg_database WHERE datname IN ('postgres', 'shop2') ORDER BY 1`),
    ).toEqual([
      { datname: 'postgres', l: -1 },
      { datname: 'shop2', l: 40 },
    ]);
    expect((await query<{ a: string }>(pooler().dsn, 'SELECT host(inet_server_addr()) AS a'))[0]!.a).toBe(bluePrimary().address);
    await everyAckedOn(blue);

    await switchUnderWriter(upgradeCutoverAction);
    await writer!.stop();
    expect(writer!.errors).toEqual([]);
    await everyAckedOn(green);
    // Blue stays current through the reverse subscription: the way back keeps every row.
    await waitFor('blue has every row', async () =>
      Number((await query<{ n: string }>(blue, 'SELECT count(*) AS n FROM items WHERE n = ANY($1::int[])', [writer!.acked]))[0]!.n) ===
      writer!.acked.length
        ? true
        : undefined,
    );
    console.log(
      `blue/green under load: ${writer!.acked.length} commits, 0 lost, 0 errors; longest gap ${Math.max(...gaps).toFixed(0)} ms over three switches`,
    );
    expect(Math.max(...gaps)).toBeLessThan(5000); // the benchmark holds the 1 s target; this guards the mechanism
  }, 600_000);

  it('a fence a dead worker left is given back by the reconcile unless the switch went through', async () => {
    const u = await latestUpgrade();
    const [g] = await db.select().from(instances).where(eq(instances.herdId, u.greenHerdId!));
    const [b] = await db.select().from(instances).where(eq(instances.herdId, blueId));
    const green = `postgres://postgres@${scratch().address}:${String(g!.port)}/postgres`;
    // Green serves (cut over); as if a switch back had fenced it and its worker died: both sides read-only.
    await query(green, 'ALTER SYSTEM SET default_transaction_read_only = on');
    await query(green, 'SELECT pg_reload_conf()');
    await waitFor('green refuses writes', async () =>
      (await query(green, 'INSERT INTO items (n) VALUES (0)').then(
        () => false,
        (e: unknown) => /read-only/.test(String(e)),
      ))
        ? true
        : undefined,
    );
    const [t] = await db.select({ id: operationTargets.id }).from(operationTargets).orderBy(desc(operationTargets.id)).limit(1);
    const owed = await db
      .insert(owedCleanups)
      .values(
        [g!, b!].map((i) => ({
          targetId: t!.id,
          herdId: i.herdId,
          kind: 'writes-fence' as const,
          says: 'test',
          databases: [],
          resumeToken: '',
          dueBy: new Date(),
          instanceId: i.id,
          upgradeId: u.id,
        })),
      )
      .returning({ id: owedCleanups.id, instanceId: owedCleanups.instanceId });
    const ssh = new SshPool({ privateKey: readFileSync(lab.ssh!.privateKeyPath) });
    try {
      const r = await settleOwed(db, ssh);
      expect(r.failed).toEqual([]);
    } finally {
      await ssh.close();
    }
    const rows = await db
      .select()
      .from(owedCleanups)
      .where(
        inArray(
          owedCleanups.id,
          owed.map((o) => o.id),
        ),
      );
    const how = (id: number) => rows.find((r) => r.instanceId === id)!.settledHow;
    expect(how(g!.id)).toMatch(/takes writes again \(the switch that fenced it did not go through\)/);
    expect(how(b!.id)).toMatch(/the switch went through: .* stays read-only/);
    await waitFor('green takes writes again', async () =>
      (await query(green, 'INSERT INTO items (n) VALUES (0)').then(
        () => true,
        () => false,
      ))
        ? true
        : undefined,
    );
    await expect(query(url(bluePrimary()), 'INSERT INTO items (n) VALUES (0)')).rejects.toThrow(/read-only/);
  });

  it('cleans up: blue stopped and out of the inventory, green kept with the names', async () => {
    const r = await runOp(upgradeCleanupAction);
    expect(r.targets[0]!.error, failedSteps(r)).toBeNull();
    const u = await latestUpgrade();
    expect(u.status).toBe('cleaned');
    expect(await db.select().from(herds).where(eq(herds.id, blueId))).toEqual([]);
    await expect(query(url(bluePrimary()), 'SELECT 1')).rejects.toThrow();
    const green = `postgres://postgres@${scratch().address}:${String((await db.select().from(instances).where(eq(instances.herdId, u.greenHerdId!)))[0]!.port)}/postgres`;
    expect((await query<{ n: number }>(green, 'SELECT count(*)::int AS n FROM pg_subscription'))[0]!.n).toBe(0);
    expect(await query(green, `SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgherd%'`)).toEqual([]);
    // The upgrade's role is gone with it.
    expect(await query(green, `SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgherd\\_upgrade\\_%'`)).toEqual([]);
    await query(pooler().dsn, 'INSERT INTO items (n) VALUES (1)');
  });
});
