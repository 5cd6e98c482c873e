// The fleet's risks on a lab of their own (environments "rk" and "rs", herd alpha in each: a primary and
// a replica on 127.0.97.x): a database driven toward wraparound, a forgotten slot holding WAL under a
// writer, a transaction left idle, a certificate five days from expiry, each found by the refresh's own
// round and the judge, with the right measure; acknowledged and counted again when worse; told to the
// webhooks; and none of rk's seen by a viewer of rs, in the page's list, the API or the metric.
import { chownSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { rotateCertificateAction } from '@/lib/actions/maintenance/rotate-certificate.action';
import { signRequest } from '@/lib/actions/steps/sign-certificate';
import { probeCertificate } from '@/lib/fleet/risks/cert-probe';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NextRequest } from 'next/server';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Db } from '@/db/client';
import { environments, roleBindings, users, webhooks } from '@/db/schema';
import { startLab, stopLab, PROJECT_ROOT, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { seededDatabase } from '@/lib/lab/seed';
import { labIdentity } from '@/lib/lab/proc';
import { issueCertificate } from '@/lib/lab/tls';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { refreshShare, type RefreshShare } from '@/lib/fleet/refresh-share';
import { loadAccess } from '@/lib/engine/access';
import { createApiToken } from '@/lib/features/auth/api-tokens';
import { processEvents } from '@/lib/features/rules/webhooks';
import { riskRow } from '@/lib/features/api/contract/risks';
import * as risksRoute from '@/app/api/v1/risks/route';
import * as ackRoute from '@/app/api/v1/risks/[id]/acknowledge/route';
import * as metricsRoute from '@/app/api/v1/metrics/route';
import { planOperation } from '@/lib/engine/plan';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { runOperation, startTestWorker, waitForOperation, type TestWorker } from '@/lib/testing/operations';
import { submitOperation } from '@/lib/engine/submit';
import { wavesSchema } from '@/lib/engine/waves';
import { vacuumFreezeAction } from '@/lib/actions/maintenance/vacuum-freeze.action';
import { dropSlotAction } from '@/lib/actions/maintenance/drop-slot.action';
import { endSessionAction } from '@/lib/actions/maintenance/end-session.action';
import { statfsSync } from 'node:fs';
import { ingestLabReports } from '@/lib/lab/agents';
import { readEndpointCertificates } from './certificates';
import { judgeRisks } from './judge';
import { listRisks, riskCounts } from './view';
import { acknowledgeRisk } from './acknowledge';
import { saveObject } from '@/lib/features/admin/mutations';
import { loadObject } from '@/lib/features/admin/change-form-data';
import { environmentsAdmin } from '@/lib/features/admin/models/environments.admin';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'risks-test.json');
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let share: RefreshShare;
let worker: TestWorker;
const env = new Map<string, number>();
let rootToken = '';
let viewerToken = '';
let operatorId = 0;

const url = (i: Pick<LabInstance, 'address' | 'port'>, database = 'postgres') => `postgres://postgres@${i.address}:${i.port}/${database}`;
const primaryOf = (e: string) => lab.instances.find((i) => i.environment === e && i.role === 'primary')!;
const replicaOf = (e: string) => lab.instances.find((i) => i.environment === e && i.role === 'replica')!;
const operator = async () => ({
  id: operatorId,
  username: 'rk-operator',
  remoteAddr: '127.0.0.1',
  access: await loadAccess(db, operatorId),
});

/** What the worker does next: the refresh's round (its risks read on the kept sessions), then the judge. */
/** One refresh round and a judge's pass; `read`: the round reads every member's risks again. */
async function pass(read = false) {
  if (read) share.readRisksNow();
  await db.execute(sql`UPDATE herds SET observe_due_at = '-infinity'`);
  await share.round();
  return judgeRisks(db);
}
const instanceOf = async (i: LabInstance) =>
  Number(
    (
      await db.execute<{ id: string }>(
        sql`SELECT i.id FROM instances i JOIN servers s ON s.id = i.server_id WHERE i.port = ${i.port} AND (s.address = ${i.address} OR s.hostname = ${i.server})`,
      )
    ).rows[0]!.id,
  );
const herdOf = async (environment: string) =>
  (await db.execute<{ id: number }>(sql`SELECT id FROM herds WHERE environment_id = ${env.get(environment)!}`)).rows[0]!.id;
const refusalOf = async (action: Parameters<typeof planOperation>[2], ids: number[], params: Record<string, unknown>) =>
  (await planOperation(db, SYSTEM_ACCESS, action, ids, params)).targets[0]?.refused ?? null;
const risksOf = async (kind: string, environment = 'rk') =>
  await listRisks(db, null, { environment: env.get(environment)!, kind: kind as never });

type Handler = (req: NextRequest, ctx: { params: Promise<Record<string, string>> }) => Promise<Response>;
const call = async (
  h: Handler,
  path: string,
  token: string,
  init: { method?: string; body?: unknown; params?: Record<string, string> } = {},
) => {
  const res = await h(
    new NextRequest(`http://127.0.0.1${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    }),
    { params: Promise.resolve(init.params ?? {}) },
  );
  return { status: res.status, text: await res.text() };
};

beforeAll(async () => {
  lab = await startLab({
    file: LAB_FILE,
    aws: false,
    ldap: false,
    backup: false,
    fleet: { environments: ['rk', 'rs'], herds: ['alpha'], replicas: 1, sites: ['dc-east', 'dc-west'], subnet: '127.0.97' },
    pgbouncer: [{ environment: 'rs', herd: 'alpha', scram: true }],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  for (const e of await db.select().from(environments)) env.set(e.name, e.id);
  // Thresholds the lab reaches in seconds: a database 50,000 transactions from its last freeze, a transaction open 12 s.
  // (The lab runs fsync off on purpose, and its environments ignore that kind: so do these.)
  const t = { xidAgeWarning: 50_000, transactionWarningSeconds: 12, transactionCriticalSeconds: 3600, ignore: ['fsync_off'] };
  await db.execute(sql`UPDATE environments SET risk_thresholds = ${JSON.stringify(t)}::jsonb`);
  const [root] = await db.insert(users).values({ username: 'rk-root', source: 'local', isSuperuser: true }).returning();
  const [viewer] = await db.insert(users).values({ username: 'rs-viewer', source: 'local' }).returning();
  const [op] = await db.insert(users).values({ username: 'rk-operator', source: 'local' }).returning();
  operatorId = op!.id;
  await db.insert(roleBindings).values([
    { role: 'viewer', subjectType: 'user', subject: 'rs-viewer', environmentId: env.get('rs')! },
    { role: 'operator', subjectType: 'user', subject: 'rk-operator', environmentId: env.get('rk')! },
  ]);
  rootToken = (await createApiToken(db, root!.id, 'r', 'operate')).token;
  viewerToken = (await createApiToken(db, viewer!.id, 'r', 'operate')).token;
  process.env.DATABASE_URL = lab.database.url; // the routes' own getDb()
  // Risks are read at the first round, then only when a test asks (pass(true)): never on a clock.
  process.env.PGHERD_RISKS_READ_MS = '3600000';
  share = refreshShare(db, { holder: 'risks-test', intervalMs: 60_000 });
  worker = await startTestWorker(lab, 'risks', 2);
  await pass();
}, 240_000);

afterAll(async () => {
  ifAssigned(share)?.close();
  await ifAssigned(worker)?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

describe('risks found by the refresh and the judge', () => {
  it('finds a database driven toward wraparound, with its age as Postgres says it', async () => {
    const p = primaryOf('rk');
    for (const e of ['rk', 'rs']) {
      await query(url(primaryOf(e)), 'CREATE TABLE IF NOT EXISTS burn (x int)');
      // 60,000 subtransactions that each write: 60,000 transaction IDs taken, nothing frozen meanwhile.
      await query(
        url(primaryOf(e)),
        `DO $$ BEGIN FOR i IN 1..60000 LOOP BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$`,
      );
    }
    await pass(true);
    const [age] = await query<{ age: string }>(url(p), "SELECT age(datfrozenxid)::text AS age FROM pg_database WHERE datname = 'postgres'");
    const found = (await risksOf('xid_age')).find((r) => r.subject === 'postgres');
    expect(found, JSON.stringify(await risksOf('xid_age'))).toBeDefined();
    expect(found!.severity).toBe('warning');
    // Read in the same round as the burn it follows: within the few transactions the refresh itself took since.
    expect(Math.abs(found!.measure - Number(age!.age))).toBeLessThan(100);
    expect(found!.instance).toContain(String(p.port));
    // The replica replays the same ages: said once, on the primary.
    expect((await risksOf('xid_age')).filter((r) => r.subject === 'postgres')).toHaveLength(1);
    expect(found!.fix).toMatchObject({ action: 'vacuum-freeze', href: expect.stringContaining('p.database=postgres') as unknown });
  });

  it('clears it by Vacuum freeze, in waves, measured', async () => {
    const herds = [await herdOf('rk'), await herdOf('rs')];
    expect((await risksOf('xid_age', 'rs')).map((r) => r.subject)).toContain('postgres');
    const waves = wavesSchema.parse({ size: 1 });
    const plan = await planOperation(db, SYSTEM_ACCESS, vacuumFreezeAction, herds, {}, waves);
    expect(plan.targets.map((t) => t.refused ?? null)).toEqual([null, null]);
    expect(JSON.stringify(plan.targets[0]!.facts)).toMatch(
      /"label":"postgres","value":"age [\d,]+ \(multixacts \d+\); \d+ tables to freeze, oldest /,
    );
    const { id } = await submitOperation(
      db,
      worker.queue,
      vacuumFreezeAction,
      { herdIds: herds, params: {}, waves, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'vacuum-waves' },
      { id: null, username: 'test', access: SYSTEM_ACCESS },
    );
    const r = await waitForOperation(db, id);
    expect(r.op.status, JSON.stringify(r.steps.map((x) => [x.name, x.status, x.stderrTail]))).toBe('succeeded');
    // One herd a wave: the second waited for the first.
    expect(new Set(r.targets.map((t) => t.wave)).size).toBe(2);
    for (const t of r.targets) expect(t.outcome).toMatch(/postgres: age [\d,]+ -> [\d,]+, \d+ tables? frozen/);
    const [after] = await query<{ age: string }>(
      url(primaryOf('rk')),
      "SELECT age(datfrozenxid)::text AS age FROM pg_database WHERE datname = 'postgres'",
    );
    expect(Number(after!.age)).toBeLessThan(25_000);
    await pass(true);
    expect((await risksOf('xid_age')).filter((x) => x.subject === 'postgres')).toEqual([]);
    expect((await risksOf('xid_age', 'rs')).filter((x) => x.subject === 'postgres')).toEqual([]);
    // Nothing old enough now: refused, with the reason.
    expect(await refusalOf(vacuumFreezeAction, [herds[0]!], {})).toMatch(/is old enough to need a freeze/);
  });

  it('finds a forgotten slot with the WAL it keeps under a writer, and acknowledges it until it grows past its step', async () => {
    const p = primaryOf('rk');
    await query(url(p), "SELECT pg_create_physical_replication_slot('forgotten', true)");
    await query(url(p), 'CREATE TABLE IF NOT EXISTS filler (x text)');
    const write = async (mb: number) => {
      // (No WAL switch: a switch jumps to the next segment's start, up to 16 MiB more than was written.)
      await query(url(p), `INSERT INTO filler SELECT repeat(md5(i::text), 32) FROM generate_series(1, ${mb * 1024}) i`);
    };
    await write(8);
    await pass(true);
    const [held] = await query<{ b: string }>(
      url(p),
      "SELECT (pg_current_wal_lsn() - restart_lsn)::text AS b FROM pg_replication_slots WHERE slot_name = 'forgotten'",
    );
    const slot = (await risksOf('slot')).find((r) => r.subject === 'forgotten');
    expect(slot, JSON.stringify(await risksOf('slot'))).toBeDefined();
    expect(slot!.detail).toMatch(/physical slot forgotten on .*: inactive, keeps [\d.]+ MiB of WAL/);
    expect(slot!.measure).toBeGreaterThan(8 * 1024 * 1024);
    expect(Math.abs(slot!.measure - Number(held!.b))).toBeLessThan(1024 * 1024);
    expect(slot!.counted).toBe(true);

    // Acknowledged with a step of 16 MiB: it stops counting, in the counts and the metric.
    await acknowledgeRisk(db, await operator(), slot!.id, {
      reason: 'a replica being rebuilt will use it',
      hours: 24,
      step: 16 * 1024 * 1024,
    });
    await pass();
    const acked = (await risksOf('slot')).find((r) => r.subject === 'forgotten')!;
    expect(acked.counted).toBe(false);
    expect(acked.acknowledged).toMatchObject({ by: 'rk-operator', reason: 'a replica being rebuilt will use it' });
    const audit = await db.execute<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM audit_entries WHERE action = 'risk.acknowledged' AND object_id = ${String(slot!.id)}`,
    );
    expect(audit.rows[0]!.n).toBe(1);
    const slotCount = async () =>
      (await riskCounts(db, [env.get('rk')!])).filter((c) => c.kind === 'slot').reduce((n, c) => n + c.count, 0);
    expect(await slotCount()).toBe(0);
    // A little worse: still acknowledged.
    await write(4);
    await pass(true);
    expect((await risksOf('slot')).find((r) => r.subject === 'forgotten')!.counted).toBe(false);
    // Worse past its step: it counts again.
    await write(16);
    await pass(true);
    const again = (await risksOf('slot')).find((r) => r.subject === 'forgotten')!;
    expect(again.measure).toBeGreaterThan(acked.measure + 16 * 1024 * 1024);
    expect(again.counted).toBe(true);
    expect(await slotCount()).toBe(1);
    expect(again.trend.direction).toBe('worse');
  });

  it("an operator of another environment may not acknowledge rk's risks, and a bad acknowledgement changes nothing", async () => {
    const slot = (await risksOf('slot')).find((r) => r.subject === 'forgotten')!;
    const viewer = await call(ackRoute.POST, `/api/v1/risks/${slot.id}/acknowledge`, viewerToken, {
      method: 'POST',
      body: { reason: 'not mine', hours: 1 },
      params: { id: String(slot.id) },
    });
    expect(viewer.status).toBe(404);
    for (const body of [
      { reason: 'x', hours: 1 },
      { reason: 'fine', hours: 0 },
      { reason: 'fine', hours: 1, extra: 1 },
      { reason: 'a\u202Eb c', hours: 1 },
    ])
      expect(
        (
          await call(ackRoute.POST as Handler, `/api/v1/risks/${slot.id}/acknowledge`, rootToken, {
            method: 'POST',
            body,
            params: { id: String(slot.id) },
          })
        ).status,
        JSON.stringify(body),
      ).toBe(400);
    expect((await risksOf('slot')).find((r) => r.subject === 'forgotten')!.counted).toBe(true);
    // Taking back what was never acknowledged: said, and nothing audited.
    const audits = async () =>
      (await db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM audit_entries WHERE action = 'risk.unacknowledged'`)).rows[0]!.n;
    const before = await audits();
    const never = (await listRisks(db, null, { environment: env.get('rk')! })).find((r) => !r.acknowledged)!;
    const none = await call(ackRoute.DELETE, `/api/v1/risks/${never.id}/acknowledge`, rootToken, {
      method: 'DELETE',
      params: { id: String(never.id) },
    });
    expect(none.status).toBe(409);
    expect(await audits()).toBe(before);
  });

  it('drops the forgotten slot, and refuses one a replica streams from', async () => {
    const p = primaryOf('rk');
    const r = replicaOf('rk');
    const id = await instanceOf(p);
    const slot = (await risksOf('slot')).find((x) => x.subject === 'forgotten')!;
    expect(slot.fix).toMatchObject({ action: 'drop-slot', href: expect.stringContaining(`ids=${id}&p.slot=forgotten`) as unknown });
    expect(await refusalOf(dropSlotAction, [id], { slot: 'nope' })).toMatch(/there is no slot nope on/);
    await expect(planOperation(db, SYSTEM_ACCESS, dropSlotAction, [id], { slot: "x'); DROP TABLE burn; --" })).rejects.toThrow(
      /replication slot name/,
    );
    // The replica streams through a slot of its own now: that slot is refused.
    await query(url(p), "SELECT pg_create_physical_replication_slot('standby_slot', true)");
    await query(url(r), "ALTER SYSTEM SET primary_slot_name = 'standby_slot'");
    await query(url(r), 'SELECT pg_reload_conf()');
    const active = async () =>
      (await query<{ a: boolean }>(url(p), "SELECT active AS a FROM pg_replication_slots WHERE slot_name = 'standby_slot'"))[0]?.a;
    for (let i = 0; i < 100 && !(await active()); i++) await new Promise((res) => setTimeout(res, 100));
    expect(await active()).toBe(true);
    expect(await refusalOf(dropSlotAction, [id], { slot: 'standby_slot' })).toMatch(/standby_slot is active: process \d+ streams from it/);
    const run = await runOperation(db, worker.queue, dropSlotAction, { instanceIds: [id] }, { slot: 'forgotten' });
    expect(run.op.status, JSON.stringify(run.steps.map((x) => [x.name, x.status, x.stderrTail]))).toBe('succeeded');
    expect(run.targets[0]!.outcome).toMatch(/slot forgotten dropped \(it kept [\d.]+ MiB of WAL\)/);
    expect(await query(url(p), "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'forgotten'")).toEqual([]);
    expect(await query(url(p), "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'standby_slot'")).toHaveLength(1);
    await pass(true);
    expect((await risksOf('slot')).map((x) => x.subject)).toEqual([]);
  });

  it('finds a transaction left idle, with what it holds back, and ends it by End session', async () => {
    const p = primaryOf('rk');
    // Five older idle transactions that hold nothing back come first: they must not hide the one that does.
    const idle = Array.from({ length: 5 }, () => new pg.Client({ connectionString: url(p), application_name: 'idle-pool' }));
    for (const i of idle) {
      i.on('error', () => {});
      await i.connect();
      await i.query('BEGIN');
      await i.query('SELECT 1');
    }
    // It calls itself pgherd's: still not pgherd's own session.
    const c = new pg.Client({ connectionString: url(p), application_name: 'pgherd-refresh' });
    await c.connect();
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await c.query('SELECT txid_current()');
    const [{ pid }] = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
    await query(url(p), 'SELECT txid_current()'); // one transaction after it: it holds that back
    // Until Postgres itself says the transaction is older than the bound (12 s here).
    const age = async () =>
      Number(
        (
          await query<{ s: string }>(
            url(p),
            `SELECT extract(epoch FROM now() - xact_start)::text AS s FROM pg_stat_activity WHERE pid = ${pid}`,
          )
        )[0]?.s ?? 0,
      );
    while ((await age()) < 12.5) await new Promise((res) => setTimeout(res, 100));
    await pass(true);
    const found = (await risksOf('long_transaction')).find((x) => x.subject.startsWith(`${pid}@`));
    expect(found, JSON.stringify(await risksOf('long_transaction'))).toBeDefined();
    expect(found!.detail).toMatch(new RegExp(`session ${pid} of postgres on postgres .*a transaction open \\d+ s, idle in it`));
    expect(found!.facts).toMatchObject({ pid, user: 'postgres', database: 'postgres', idle: true });
    // No statement text in what every viewer reads (another role's ALTER ROLE ... PASSWORD would be there).
    expect(found!.facts).not.toHaveProperty('query');
    expect(JSON.stringify(await risksOf('long_transaction'))).not.toContain('SELECT pg_backend_pid()');
    expect(found!.facts.xminAge).toBeGreaterThan(0);
    expect(found!.measure).toBeGreaterThanOrEqual(12);
    // Ended by the action: the plan names the session, and only that session is ended.
    c.on('error', () => {});
    const id = await instanceOf(p);
    const plan = await planOperation(db, SYSTEM_ACCESS, endSessionAction, [id], { session: found!.subject });
    expect(plan.targets[0]!.refused ?? null).toBeNull();
    expect(JSON.stringify(plan.targets[0]!.facts)).toMatch(/idle in transaction, its transaction open \d+ s/);
    expect(JSON.stringify(plan.targets[0]!.facts)).toContain('SELECT pg_backend_pid() AS pid');
    const r = await runOperation(db, worker.queue, endSessionAction, { instanceIds: [id] }, { session: found!.subject });
    expect(r.op.status, JSON.stringify(r.steps.map((x) => [x.name, x.status, x.stderrTail]))).toBe('succeeded');
    expect(r.targets[0]!.outcome).toMatch(new RegExp(`session ${pid} of postgres ended`));
    await expect(c.query('SELECT 1')).rejects.toThrow();
    await c.end().catch(() => {});
    for (const i of idle) await i.end().catch(() => {});
    // The session is no longer there: refused, with the reason; a malformed one is a bad parameter.
    expect(await refusalOf(endSessionAction, [id], { session: found!.subject })).toMatch(
      /is no longer on .*: it ended, or its pid is another session's now/,
    );
    await expect(planOperation(db, SYSTEM_ACCESS, endSessionAction, [id], { session: `${pid}; DROP TABLE burn` })).rejects.toThrow(
      /pid@backend_start/,
    );
    await pass(true);
    expect((await risksOf('long_transaction')).find((x) => x.subject.startsWith(`${pid}@`))).toBeUndefined();
  });

  it('finds a certificate five days from expiry on one member, with the days left', async () => {
    const r = replicaOf('rk');
    const dir = mkdtempSync(path.join(tmpdir(), 'rk-cert-'));
    const id = labIdentity();
    chownSync(dir, id.uid, id.gid);
    const cert = await issueCertificate(id, lab.tls!, dir, 'short', { ips: [r.address], names: [r.server] }, 5);
    await query(url(r), `ALTER SYSTEM SET ssl_cert_file = '${cert.certFile}'`);
    await query(url(r), `ALTER SYSTEM SET ssl_key_file = '${cert.keyFile}'`);
    await query(url(r), 'SELECT pg_reload_conf()');
    await pass(true);
    const found = (await risksOf('certificate')).filter((x) => x.instance?.endsWith(`:${r.port}`));
    expect(found, JSON.stringify(await risksOf('certificate'))).toHaveLength(1);
    expect(found[0]!.severity).toBe('critical');
    expect(found[0]!.measure).toBeGreaterThan(4.8);
    expect(found[0]!.measure).toBeLessThanOrEqual(5);
    expect(found[0]!.detail).toMatch(/expires in 4\.9|expires in 5\.0/);
    // The others hold a year's certificates: no finding.
    expect((await risksOf('certificate')).length).toBe(1);
    expect(found[0]!.fix).toMatchObject({ action: 'rotate-certificate' });
  });

  it('tells the webhooks what was raised and cleared, and takes no risk id for a finding it keeps', async () => {
    const seq = async () => Number((await db.execute<{ v: string }>(sql`SELECT last_value::text AS v FROM risks_id_seq`)).rows[0]!.v);
    const at = await seq();
    for (let i = 0; i < 3; i++) await pass(true);
    expect(await seq()).toBe(at);
    await db
      .insert(webhooks)
      .values({ name: 'risks', url: 'http://127.0.0.1:9/risks', secret: 's', events: ['risk.raised', 'risk.cleared'] });
    const p = primaryOf('rk');
    await query(url(p), "SELECT pg_create_physical_replication_slot('told', true)");
    await pass(true);
    await query(url(p), "SELECT pg_drop_replication_slot('told')");
    await pass(true);
    await processEvents(db, 'http://console.test');
    const d = await db.execute<{ event: string; text: string }>(sql`
      SELECT event, payload->>'text' AS text FROM webhook_deliveries WHERE payload->>'text' LIKE '%slot told%' ORDER BY id`);
    expect(d.rows.map((x) => x.event)).toEqual(['risk.raised', 'risk.cleared']);
    expect(d.rows[0]!.text).toMatch(/^pgherd: herd rk\/alpha has a risk: warning: physical slot told on/);
  });
});

describe('disks, from the agents', () => {
  it("reads each filesystem as statfs says, and projects the days to full from the week's growth", async () => {
    const p = primaryOf('rk');
    const id = await instanceOf(p);
    await ingestLabReports(db, lab);
    const [d] = (
      await db.execute<{ data_free: string; data_total: string; wal_free: string | null }>(
        sql`SELECT data_free, data_total, wal_free FROM disk_readings WHERE instance_id = ${id}`,
      )
    ).rows;
    const fs = statfsSync(p.dataDirectory);
    expect(Number(d!.data_total)).toBe(fs.blocks * fs.bsize);
    expect(Math.abs(Number(d!.data_free) - fs.bavail * fs.bsize)).toBeLessThan(512 * 1024 * 1024);
    expect(d!.wal_free).not.toBeNull();
    // The hour's sample is made by the hour's first report; six earlier hours of growth, as a week of reports
    // would have left them: half of what is free now, a day.
    const free = Number(d!.data_free);
    const used = Number(d!.data_total) - free;
    const perHour = free / 2 / 24;
    for (let k = 1; k <= 6; k++)
      await db.execute(sql`
        INSERT INTO disk_samples (instance_id, hour, data_used, wal_used)
        VALUES (${id}, date_trunc('hour', now()) - ${k} * interval '1 hour', ${Math.round(used - k * perHour)}, NULL)`);
    await db.execute(sql`UPDATE disk_samples SET data_used = ${used} WHERE instance_id = ${id} AND hour = date_trunc('hour', now())`);
    await judgeRisks(db);
    const soon = (await risksOf('disk_full_soon')).find((r) => r.instanceId === id && r.subject === 'data');
    expect(soon, JSON.stringify(await risksOf('disk_full_soon'))).toBeDefined();
    expect(soon!.severity).toBe('critical');
    expect(soon!.measure).toBeGreaterThanOrEqual(1.8);
    expect(soon!.measure).toBeLessThanOrEqual(2);
    expect(soon!.detail).toMatch(/the data directory of .* is full in (1\.9|2\.0) days at the last week's growth/);
    // Growth gone (the samples flat): no longer a risk.
    await db.execute(sql`UPDATE disk_samples SET data_used = ${used} WHERE instance_id = ${id}`);
    await judgeRisks(db);
    expect((await risksOf('disk_full_soon')).find((r) => r.instanceId === id)).toBeUndefined();
  });
});

describe('thresholds per environment', () => {
  it('are set on the environment form, checked, and a bad one changes nothing', async () => {
    const id = env.get('rs')!;
    const current = (await loadObject(db, environmentsAdmin as never, id))!.values;
    const before = (await db.select().from(environments)).find((e) => e.id === id)!.riskThresholds;
    for (const [text, message] of [
      ['{not json', /not JSON/],
      ['{"xidAgeCritical": 10}', /xidAgeCritical \(10\) must be at least xidAgeWarning/],
      ['{"bogus": 1}', /Unrecognized key|bogus/],
      ['{"ignore": ["Bad Kind"]}', /a risk kind/],
      ['{"ignore": ["nope"]}', /a risk kind: one of/],
      ['{"transactionWarningSeconds": 5}', /must be at least 10: younger transactions are not read/],
    ] as const) {
      const r = await saveObject(
        db,
        environmentsAdmin as never,
        id,
        { ...current, riskThresholds: text },
        { id: null, username: 'root', access: SYSTEM_ACCESS },
      );
      expect(r.ok, text).toBe(false);
      expect(JSON.stringify(r), text).toMatch(message);
    }
    expect((await db.select().from(environments)).find((e) => e.id === id)!.riskThresholds).toEqual(before);
    const ok = await saveObject(
      db,
      environmentsAdmin as never,
      id,
      { ...current, riskThresholds: '{"xidAgeWarning": 40000, "ignore": ["fsync_off", "single_member"]}' },
      { id: null, username: 'root', access: SYSTEM_ACCESS },
    );
    expect(ok.ok).toBe(true);
    expect((await db.select().from(environments)).find((e) => e.id === id)!.riskThresholds).toEqual({
      xidAgeWarning: 40000,
      ignore: ['fsync_off', 'single_member'],
    });
    // Ignored kinds are not judged: no fsync finding anywhere in this lab.
    await pass();
    expect(await risksOf('fsync_off')).toEqual([]);
    expect(await risksOf('fsync_off', 'rs')).toEqual([]);
  });
});

describe("a viewer of rs sees none of rk's risks", () => {
  it('in the list, the API and the metric', async () => {
    const viewer = await loadAccess(db, (await db.select().from(users)).find((u) => u.username === 'rs-viewer')!.id);
    expect(viewer.byEnvironment.get(env.get('rs')!)).toBe('viewer');
    const all = await call(risksRoute.GET, '/api/v1/risks', rootToken);
    expect(all.status).toBe(200);
    const items = z.object({ items: z.array(riskRow) }).parse(JSON.parse(all.text)).items;
    expect(items.some((i) => i.environment === 'rk')).toBe(true);
    const theirs = await call(risksRoute.GET, '/api/v1/risks', viewerToken);
    const seen = z.object({ items: z.array(riskRow) }).parse(JSON.parse(theirs.text)).items;
    expect(seen.every((i) => i.environment === 'rs')).toBe(true);
    expect((await call(risksRoute.GET as Handler, `/api/v1/risks?environment=${env.get('rk')!}`, viewerToken)).status).toBe(403);
    for (const q of ['?severity=bad', '?kind=nope', '?environment=x', '?counted=2', '?other=1'])
      expect((await call(risksRoute.GET as Handler, `/api/v1/risks${q}`, rootToken)).status, q).toBe(400);
    const rootMetrics = await call(metricsRoute.GET, '/api/v1/metrics', rootToken);
    expect(rootMetrics.text).toMatch(/pgherd_risks\{environment="rk",kind="certificate",severity="critical"\} 1/);
    const viewerMetrics = await call(metricsRoute.GET, '/api/v1/metrics', viewerToken);
    expect(viewerMetrics.status).toBe(200);
    expect(viewerMetrics.text).toContain('pgherd_risks');
    expect(viewerMetrics.text).not.toMatch(/environment="rk"/);
    expect(rootMetrics.text).not.toMatch(/pgherd_queue_up|pgherd_workers|pgherd_inventory_up/);
    expect(viewerMetrics.text).not.toMatch(/pgherd_queue_up|pgherd_workers|pgherd_inventory_up/);
  });
});

/** The certificate and key files a member's Postgres names. */
const sslFiles = async (i: LabInstance) =>
  (
    await query<{ cert: string; key: string }>(
      url(i),
      "SELECT current_setting('ssl_cert_file') AS cert, current_setting('ssl_key_file') AS key",
    )
  )[0]!;

// Last: the rotation clears the certificate risk the scope test above counts on.
describe('Rotate certificate', () => {
  it("rotates it from the environment's CA: the key made on the host, the names pgherd's, taken by a reload, and the finding clears", async () => {
    const r = replicaOf('rk');
    const id = await instanceOf(r);
    const files = await sslFiles(r);
    const run = await runOperation(db, worker.queue, rotateCertificateAction, { instanceIds: [id] }, {});
    expect(run.op.status, JSON.stringify(run.steps.map((x) => [x.name, x.status, x.stderrTail]))).toBe('succeeded');
    const cert = new X509Certificate(readFileSync(files.cert));
    expect(cert.subject).toBe(`CN=${r.server}`);
    expect(cert.subjectAltName).toBe(`DNS:${r.server}, IP Address:${r.address}`);
    expect(cert.checkIssued(new X509Certificate(readFileSync(lab.tls!.caFile)))).toBe(true);
    // The key on the host is the certificate's, readable by its owner alone; the old ones are kept beside.
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(files.key)))).toBe(true);
    expect(statSync(files.key).mode & 0o077).toBe(0);
    // Nothing left beside: the old key is not kept once the new certificate is proved.
    for (const left of ['pgherd-old', 'pgherd-new'])
      expect([existsSync(`${files.key}.${left}`), existsSync(`${files.cert}.${left}`)]).toEqual([false, false]);
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(run.targets[0]!.outcome).toContain(`a new certificate for ${r.server}, ${r.address}, until`);
    // A handshake shows it (Postgres took it), and the risk clears at the next reading.
    expect((await probeCertificate({ host: r.address, port: r.port }, 5000))!.notAfter).toBe(new Date(cert.validTo).toISOString());
    await pass(true);
    expect((await risksOf('certificate')).filter((x) => x.instance?.endsWith(`:${r.port}`))).toEqual([]);
  });

  it('refuses a certificate and key in one file, and bad days, and changes nothing', async () => {
    const p = primaryOf('rk');
    const id = await instanceOf(p);
    const files = await sslFiles(p);
    const combined = path.join(path.dirname(files.cert), 'combined.pem');
    writeFileSync(combined, readFileSync(files.key, 'utf8') + readFileSync(files.cert, 'utf8'), { mode: 0o600 });
    chownSync(combined, labIdentity().uid, labIdentity().gid);
    await query(url(p), `ALTER SYSTEM SET ssl_cert_file = '${combined}'`);
    await query(url(p), `ALTER SYSTEM SET ssl_key_file = '${combined}'`);
    await query(url(p), 'SELECT pg_reload_conf()');
    try {
      expect(await refusalOf(rotateCertificateAction, [id], {})).toMatch(/ssl_cert_file and ssl_key_file are one file .*combined\.pem/);
    } finally {
      await query(url(p), 'ALTER SYSTEM RESET ssl_cert_file');
      await query(url(p), 'ALTER SYSTEM RESET ssl_key_file');
      await query(url(p), 'SELECT pg_reload_conf()');
    }
    for (const days of [0, 826, 'true', '0x1e', ' 25 ', 2.5])
      await expect(planOperation(db, SYSTEM_ACCESS, rotateCertificateAction, [id], { days }), String(days)).rejects.toThrow(/days|number/);
  });

  it("signs only the names pgherd gives, whatever a host's request asks, and refuses a request that is not one", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rk-csr-'));
    const keyFile = path.join(dir, 'k.pem');
    const csr = execFileSync('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-subj',
      '/CN=billing.production.example',
      '-addext',
      'subjectAltName=DNS:billing.production.example,IP:10.0.0.1',
    ]).toString();
    const signed = await signRequest({ certFile: lab.tls!.caFile, keyFile: lab.tls!.keyFile }, csr, ['db1.rk.example', '127.0.97.9'], 30);
    const cert = new X509Certificate(signed.pem);
    expect(cert.subject).toBe('CN=db1.rk.example');
    expect(cert.subjectAltName).toBe('DNS:db1.rk.example, IP Address:127.0.97.9');
    await expect(signRequest({ certFile: lab.tls!.caFile, keyFile: lab.tls!.keyFile }, 'not a request', ['db1'], 30)).rejects.toThrow(
      /no certificate request/,
    );
    await expect(
      signRequest({ certFile: lab.tls!.caFile, keyFile: lab.tls!.keyFile }, csr, ['db1 -extfile /etc/passwd'], 30),
    ).rejects.toThrow(/not a host name or address/);
    // A request whose signature does not match its key (altered on the way): refused.
    // (The last byte of its DER is the signature's: flipped, the request is still well formed, its signature wrong.)
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 1]! ^= 0x01;
    const altered = `-----BEGIN CERTIFICATE REQUEST-----\n${der
      .toString('base64')
      .replace(/(.{64})/g, '$1\n')
      .replace(/\n?$/, '\n')}-----END CERTIFICATE REQUEST-----\n`;
    await expect(signRequest({ certFile: lab.tls!.caFile, keyFile: lab.tls!.keyFile }, altered, ['db1'], 30)).rejects.toThrow(
      /self-signature did not match/,
    );
  });

  it("reads a PgBouncer's certificate, as its configuration names it, and finds it within the environment's bound", async () => {
    const b = lab.pgbouncer.find((x) => x.environment === 'rs')!;
    expect(await readEndpointCertificates(db)).toEqual({ read: 1, failed: 0 });
    const certFile = /^client_tls_cert_file = (.+)$/m.exec(readFileSync(b.configFile, 'utf8'))![1]!;
    const validTo = new Date(new X509Certificate(readFileSync(certFile)).validTo).toISOString();
    const [row] = (await db.execute<{ endpoint: string; not_after: string }>(sql`SELECT endpoint, not_after::text FROM tls_readings`)).rows;
    expect(row!.endpoint).toBe(`PgBouncer ${b.server}:${String(b.port)}`);
    expect(new Date(row!.not_after).toISOString()).toBe(validTo);
    // A year's certificate: nothing at the default bound; within a 400-day bound, a warning with its days.
    await judgeRisks(db);
    expect((await risksOf('certificate', 'rs')).filter((r) => r.subject.startsWith('PgBouncer'))).toEqual([]);
    const before = (await db.select().from(environments)).find((e) => e.name === 'rs')!.riskThresholds;
    await db.execute(sql`UPDATE environments SET risk_thresholds = risk_thresholds || '{"certificateWarningDays": 400}' WHERE name = 'rs'`);
    try {
      await judgeRisks(db);
      const found = (await risksOf('certificate', 'rs')).find((r) => r.subject.startsWith('PgBouncer'));
      expect(found, JSON.stringify(await risksOf('certificate', 'rs'))).toBeDefined();
      expect(found!.severity).toBe('warning');
      expect(Math.abs(found!.measure - (Date.parse(validTo) - Date.now()) / 86_400_000)).toBeLessThan(0.2);
      expect(found!.detail).toContain(`the certificate of PgBouncer ${b.server}:${String(b.port)}`);
    } finally {
      await db.execute(sql`UPDATE environments SET risk_thresholds = ${JSON.stringify(before)}::jsonb WHERE name = 'rs'`);
    }
    await judgeRisks(db);
    expect((await risksOf('certificate', 'rs')).filter((r) => r.subject.startsWith('PgBouncer'))).toEqual([]);
  });
});
