// Switchover and DR failover through the engine, on a lab of their own (environment "dr", herds
// alpha, beta and gamma on 127.0.4.x, PgBouncer in front of alpha, BIND for their write names):
// these tests kill primaries and refuse SSH, which the shared lab's other users must not see.
import pg from 'pg';
import { appendFileSync, lstatSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@/db/client';
import {
  drDrills,
  herds,
  instances,
  operations,
  operationSteps,
  operationTargets,
  servers,
  webhookDeliveries,
  webhooks,
} from '@/db/schema';
import { fleetHealth, healthy } from '@/lib/features/agents/health';
import { registerFleetGauges } from '@/lib/features/metrics/fleet';
import { seededDatabase } from '@/lib/lab/seed';
import { lookup } from '@/lib/adapters/dns/rfc2136';
import {
  allowSsh,
  dnsConfigWithWrongKey,
  crash as crashInstance,
  livePrimary as labPrimary,
  refuseSsh,
  restoredCopy,
} from '@/lib/lab/faults';
import { PROJECT_ROOT, startLab, stopLab, useLabSettings, type LabInfo, type LabInstance } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { labIdentity, run as runAs } from '@/lib/lab/proc';
import { showDatabases } from '@/lib/adapters/pgbouncer/admin';
import { poolerConsole } from '@/lib/fleet/pooler';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { startWebhookReceiver } from '@/lib/testing/webhook-receiver';
import { runOperation, startTestWorker, type TestWorker } from '@/lib/testing/operations';
import { startWriter } from '@/lib/testing/writer';
import { waitFor } from '@/lib/testing/wait';
import type { AnyAction } from '@/lib/engine/define-action';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { planOperation } from '@/lib/engine/plan';
import { refreshFleet } from '@/lib/fleet/refresher';
import { drFailoverAction } from '@/lib/actions/topology/dr-failover.action';
import { drDrillAction } from '@/lib/actions/topology/dr-drill.action';
import { drScorecard } from '@/lib/features/dr/scorecard';
import { rebuildAction } from './rebuild.action';
import { remasterAction } from './remaster.action';
import { startAction } from '@/lib/actions/control/start.action';
import { switchoverAction } from '@/lib/actions/topology/switchover.action';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import { sessionTo } from '@/lib/fleet/observe';
import { promoteNow } from '@/lib/actions/steps/topology-steps';
import { repointPooler } from '@/lib/actions/steps/pooler-steps';
import { repointEntries } from '@/lib/adapters/pgbouncer/ini';
import { SshPool } from '@/lib/adapters/ssh/ssh-client';
import { loadHerdRefs } from '@/lib/fleet/herd-ref';

const LAB_FILE = path.join(PROJECT_ROOT, '.lab', `vitest-failover-${process.pid}.json`);
let lab: LabInfo;
let db: Db;
let closeDb: () => Promise<void>;
let worker: TestWorker | null = null;
const herdIds = new Map<string, number>();

beforeAll(async () => {
  lab = await startLab({
    aws: false,
    file: LAB_FILE,
    fleet: { environments: ['dr'], herds: ['alpha', 'beta', 'gamma'], replicas: 2, sites: ['dc-east', 'dc-west'], subnet: '127.0.4' },
    pgbouncer: [{ environment: 'dr', herd: 'alpha' }],
  });
  const c = await seededDatabase(lab, 4);
  db = c.db;
  closeDb = () => c.pool.end();
  for (const h of await db.select({ id: herds.id, name: herds.name }).from(herds)) herdIds.set(h.name, h.id);
  worker = await startTestWorker(lab, 'failover', 8);
}, 180_000);

afterAll(async () => {
  await worker?.close();
  await ifAssigned(closeDb)?.();
  await stopLab(LAB_FILE);
});

const runOp = (action: AnyAction, ids: number[], params: Record<string, unknown> = {}) =>
  runOperation(db, worker!.queue, action, { herdIds: ids }, params, { username: 'failover-test', timeoutMs: 60_000 });

const members = (herd: string) => lab.instances.filter((i) => i.herd === herd);
const url = (i: Pick<LabInstance, 'address' | 'port'>) => `postgres://postgres@${i.address}:${i.port}/postgres`;
const inRecovery = async (i: LabInstance) => (await query<{ r: boolean }>(url(i), 'SELECT pg_is_in_recovery() AS r'))[0]!.r;
const senderOf = async (i: LabInstance) =>
  (await query<{ h: string | null }>(url(i), "SELECT sender_host AS h FROM pg_stat_wal_receiver WHERE status = 'streaming'"))[0]?.h ?? null;
const writeName = (herd: string) => lab.dns!.herds.find((h) => h.herd === herd)!.writeName;
const answer = async (herd: string) => lookup({ host: lab.dns!.server, port: lab.dns!.port }, writeName(herd), 'CNAME');
const refs = async (herd: string) => loadInstanceRefs(db, [], { herdIds: [herdIds.get(herd)!] });
const byServer = async (herd: string) => new Map((await refs(herd)).map((r) => [r.hostname, r]));

const livePrimary = (herd: string) => labPrimary(lab, herd);

const crash = (i: LabInstance) => crashInstance(lab, i);

/** The postmaster's PID, as its data directory says. */
const postmasterPid = (i: LabInstance) => Number(readFileSync(path.join(i.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);

/**
 * The stop signals (SIGINT: fast, SIGQUIT: immediate, SIGTERM: smart) waiting in a process: what a
 * pg_ctl stop sent to a stopped postmaster leaves there, to act when it resumes.
 */
function pendingStops(pid: number): string[] {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mask = ['SigPnd', 'ShdPnd']
    .map((k) => BigInt(`0x${new RegExp(`^${k}:\\s*([0-9a-f]+)`, 'm').exec(status)![1]!}`))
    .reduce((a, b) => a | b);
  return (
    [
      ['SIGINT', 2],
      ['SIGQUIT', 3],
      ['SIGTERM', 15],
    ] as const
  )
    .filter(([, n]) => mask & (1n << BigInt(n - 1)))
    .map(([name]) => name);
}

/** A gauge of environment "dr", as a scrape reads it. */
async function scraped(name: string): Promise<number | undefined> {
  const registry = new Registry();
  registerFleetGauges(
    registry,
    () => db,
    () => [],
  );
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric as { values: { labels: Record<string, string>; value: number }[] } | undefined)?.values.find(
    (v) => v.labels.environment === 'dr',
  )?.value;
}

const noPrimaryOf = async (herd: string) => (await fleetHealth(db, null, { herdId: herdIds.get(herd)! })).noPrimary;

/** Inserts 2,000 rows of 2 kB again and again until stopped (errors once its primary is gone are expected). */
function startBallast(dsn: string) {
  let stopping = false;
  let batches = 0;
  // A named function, not an IIFE: TypeScript would read `stopping` as the false it starts as.
  const insertUntilStopped = async () => {
    const c = new pg.Client({ connectionString: dsn });
    c.on('error', () => {});
    await c.connect();
    while (!stopping) {
      try {
        await c.query("INSERT INTO ballast_load SELECT g, repeat('x', 2000) FROM generate_series(1, 2000) g");
        batches++;
      } catch {
        break;
      }
    }
    await c.end().catch(() => {});
  };
  const done = insertUntilStopped();
  return {
    batches: () => batches,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

describe('switchover', () => {
  it('moves alpha to a replica under a continuous write load through PgBouncer: no acknowledged row lost, no error, DNS and pooler follow, the old primary streams', async () => {
    const pooler = lab.pgbouncer[0];
    const old = await livePrimary('alpha');
    await query(pooler!.dsn, 'CREATE TABLE writes (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const writer = startWriter(pooler!.dsn);
    await waitFor('the writer commits', async () => writer.acked.length > 50);
    const before = writer.acked.length;

    const { op, targets, steps, plan } = await runOp(switchoverAction, [herdIds.get('alpha')!]);
    await waitFor('the writer commits after the switch', async () => writer.acked.length > before + 200);
    await writer.stop();

    expect(plan.targets[0]!.facts?.find((f) => f.label === 'Old primary')?.value).toBe(`${old.server}:${old.port}`);
    expect(targets[0]!.error).toBeNull();
    expect(op.status).toBe('succeeded');
    const neu = await livePrimary('alpha');
    expect(neu.server).not.toBe(old.server);
    expect(targets[0]!.outcome).toBe(
      `${neu.server}:${neu.port} is the primary; ${old.server}:${old.port} streams from it; no committed transaction lost`,
    );
    // Every acknowledged commit is on the new primary; the writer never saw an error.
    expect(writer.errors).toEqual([]);
    const { n } = (await query<{ n: string }>(url(neu), 'SELECT count(*) AS n FROM writes WHERE n = ANY($1::int[])', [writer.acked]))[0]!;
    expect(Number(n)).toBe(writer.acked.length);
    console.log(`switchover under load: ${writer.acked.length} commits, longest gap ${writer.maxGapMs.toFixed(0)} ms`);
    expect(writer.maxGapMs).toBeLessThan(10_000); // the benchmark holds the 1 s target; this guards the mechanism
    // The old primary is a replica of the new one and gets what is written there.
    expect(await inRecovery(old)).toBe(true);
    expect(await senderOf(old)).toBe(neu.address);
    await query(url(neu), 'INSERT INTO writes (n) VALUES (-1)');
    await waitFor('the row reaches the old primary', async () => (await query(url(old), 'SELECT 1 FROM writes WHERE n = -1')).length === 1);
    // The third member follows the new primary too.
    const third = members('alpha').find((m) => m.server !== old.server && m.server !== neu.server)!;
    expect(await senderOf(third)).toBe(neu.address);
    // DNS, asked of BIND, and PgBouncer, asked of itself, point at the new primary.
    expect(await answer('alpha')).toEqual([neu.server]);
    const entry = (
      await showDatabases(
        poolerConsole({ host: pooler!.address, port: pooler!.port, adminUser: pooler!.adminUser, serverEnvironment: pooler!.environment }),
      )
    ).get(pooler!.databases[0]!)!;
    expect(entry).toMatchObject({ host: neu.address, port: neu.port, paused: false });
    // The inventory says so.
    const inv = await byServer('alpha');
    expect(inv.get(neu.server)).toMatchObject({ role: 'primary', state: 'running', upstreamId: null });
    expect(inv.get(old.server)).toMatchObject({ role: 'replica', upstreamId: inv.get(neu.server)!.id });
    expect(steps.filter((s) => s.status === 'failed').map((s) => s.name)).toEqual([]);
    // PgBouncer's configuration (it may hold passwords) was read and rewritten, never recorded.
    expect(steps.filter((s) => s.stdoutTail.includes('[databases]') || s.command.includes('[databases]')).map((s) => s.name)).toEqual([]);
  }, 120_000);

  it.each([
    // An SSH command's output is kept up to 64 KiB: a larger ini read through it would be rewritten cut short.
    [
      'too large to read whole over SSH',
      Buffer.from(Array.from({ length: 2000 }, (_, i) => `; padding ${String(i)} ${'x'.repeat(40)}\n`).join('')),
    ],
    // Bytes that are not UTF-8 come back as U+FFFD (three bytes for three here): the size alone would not tell.
    ['not in UTF-8', Buffer.from([0x3b, 0x20, 0xf0, 0x9f, 0x98, 0x0a])],
  ])(
    'refuses at the pre-flight a PgBouncer ini %s, and leaves the file as it was',
    async (_what, tail) => {
      const pooler = lab.pgbouncer[0]!;
      const original = readFileSync(pooler.configFile);
      appendFileSync(pooler.configFile, tail);
      const grown = readFileSync(pooler.configFile);
      const primary = await livePrimary('alpha');
      try {
        const { op, targets, steps } = await runOp(switchoverAction, [herdIds.get('alpha')!]);
        expect(op.status).toBe('failed');
        expect(targets[0]!.error).toMatch(
          /^refused: .*pgbouncer\.ini did not come back whole over SSH \(larger than 64 KiB, or not UTF-8\): pgherd rewrites only a file it read whole; nothing was changed$/,
        );
        expect(steps.map((s) => s.name)).toEqual(['pre-flight']);
        expect(readFileSync(pooler.configFile).equals(grown)).toBe(true);
        expect(await inRecovery(primary)).toBe(false);
      } finally {
        writeFileSync(pooler.configFile, original);
      }
    },
    60_000,
  );

  it('re-points PgBouncer from its ini as it is when the file changed after the pause read it: nothing of the change is lost', async () => {
    const pooler = lab.pgbouncer[0]!;
    const [herd] = await loadHerdRefs(db, [herdIds.get('alpha')!]);
    const to = (await byServer('alpha')).get((await livePrimary('alpha')).server)!;
    const known = readFileSync(pooler.configFile, 'utf8');
    const original = Buffer.from(known);
    appendFileSync(pooler.configFile, '; added by hand while the pause held\n');
    const changed = readFileSync(pooler.configFile, 'utf8');
    // Kept where a symbolic link names it: the file it names is rewritten, the link stays.
    const real = `${pooler.configFile}.real`;
    renameSync(pooler.configFile, real);
    symlinkSync(real, pooler.configFile);
    const ssh = new SshPool({ privateKey: readFileSync(lab.ssh!.privateKeyPath) });
    try {
      const notes: string[] = [];
      const ctx = { note: (r: { command?: string }) => void (r.command && notes.push(r.command)), signal: new AbortController().signal };
      await repointPooler(herd!.poolers[0]!, to, { db, ssh }, ctx, { known });
      expect(readFileSync(pooler.configFile, 'utf8')).toBe(repointEntries(changed, pooler.databases, { host: to.host, port: to.port }));
      expect(readFileSync(pooler.configFile, 'utf8')).toContain('; added by hand while the pause held');
      // Tried in one round trip against what was read, found changed, read again and written.
      expect(notes.filter((c) => c.includes('exit 9'))).toHaveLength(1);
      expect(notes.filter((c) => c.includes('cat -- '))).toHaveLength(1);
      expect(lstatSync(pooler.configFile).isSymbolicLink()).toBe(true);
    } finally {
      await ssh.close();
      rmSync(pooler.configFile);
      renameSync(real, pooler.configFile);
      writeFileSync(pooler.configFile, original);
    }
  }, 60_000);

  it('is refused with a lagging candidate: at execution by the pre-flight, at planning once the inventory knows; nothing changes', async () => {
    const primary = await livePrimary('beta');
    const lagging = members('beta').find((m) => m.server !== primary.server)!;
    const inv = await byServer('beta');
    const plan = await planOperation(db, SYSTEM_ACCESS, switchoverAction, [herdIds.get('beta')!], {
      candidateInstanceId: inv.get(lagging.server)!.id,
    });
    expect(plan.targets[0]!.refused).toBeUndefined();
    await query(url(lagging), 'SELECT pg_wal_replay_pause()');
    try {
      await query(url(primary), "CREATE TABLE ballast AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 25000) g");
      await waitFor('the candidate received the ballast', async () => {
        const [r] = await query<{ behind: string }>(
          url(lagging),
          'SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS behind',
        );
        return Number(r!.behind) > 16 * 1024 * 1024;
      });
      const { op, targets, steps } = await runOp(switchoverAction, [herdIds.get('beta')!], {
        candidateInstanceId: inv.get(lagging.server)!.id,
      });
      expect(op.status).toBe('failed');
      expect(targets[0]!.error).toMatch(
        new RegExp(`refused: ${lagging.server}:\\d+ has [\\d.]+ MB left to replay \\(limit 16.0 MB\\); nothing was changed`),
      );
      expect(steps.map((s) => s.name)).toEqual(['pre-flight']);
      expect(await inRecovery(primary)).toBe(false);
      expect(await answer('beta')).toEqual([primary.server]);
      // Once the refresher has seen the lag, the plan itself refuses.
      await refreshFleet(db, { ids: [...inv.values()].map((r) => r.id), timeoutMs: 2000 });
      const again = await planOperation(db, SYSTEM_ACCESS, switchoverAction, [herdIds.get('beta')!], {
        candidateInstanceId: inv.get(lagging.server)!.id,
      });
      expect(again.targets[0]!.refused).toMatch(/is [\d.]+ MB behind \(limit 16.0 MB\)/);
    } finally {
      await query(url(lagging), 'SELECT pg_wal_replay_resume()');
      // The herd as it is again, and the inventory knowing it (the refresher would, within its period).
      await query(url(primary), 'DROP TABLE IF EXISTS ballast');
      await waitFor('the candidate caught up', async () => {
        const [r] = await query<{ behind: string }>(
          url(lagging),
          'SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) AS behind',
        );
        return Number(r!.behind) === 0;
      });
      await refreshFleet(db, { ids: [...inv.values()].map((r) => r.id), timeoutMs: 2000 });
    }
  }, 120_000);

  it('fails in the pre-flight, changing nothing, when BIND rejects the key', async () => {
    const primary = await livePrimary('gamma');
    const wrong = path.join(lab.dir, 'dns-wrong-key.json');
    dnsConfigWithWrongKey(lab, wrong);
    process.env.PGHERD_DNS_CONFIG = wrong;
    try {
      const { op, targets } = await runOp(switchoverAction, [herdIds.get('gamma')!]);
      expect(op.status).toBe('failed');
      expect(targets[0]!.error).toMatch(
        /refused: .* refused a signed UPDATE of zone lab\.internal: NOTAUTH .*\(key pgherd-lab\); nothing was changed/,
      );
    } finally {
      useLabSettings(lab);
    }
    expect(await inRecovery(primary)).toBe(false);
    expect(await answer('gamma')).toEqual([primary.server]);
  }, 60_000);
});

describe('DR drill', () => {
  it('switches beta over to its member in the other site under a writer, and back: figures recorded, 0 lost, its primary again, the scratch table gone; the scorecard shows it', async () => {
    const old = await livePrimary('beta');
    const h = herdIds.get('beta')!;
    const [env] = await db.select({ id: herds.environmentId }).from(herds).where(eq(herds.id, h));
    const card = async () => (await drScorecard(db, env!.id)).find((r) => r.herdId === h)!;
    expect(await card()).toMatchObject({ verdict: 'never', last: null });
    const { op, targets, steps } = await runOperation(
      db,
      worker!.queue,
      drDrillAction,
      { herdIds: [h] },
      {},
      { username: 'drill-test', timeoutMs: 180_000 },
    );
    expect([op.status, targets[0]!.error], JSON.stringify(steps.map((s) => [s.name, s.status, s.stdoutTail, s.stderrTail]))).toEqual([
      'succeeded',
      null,
    ]);
    const [d] = await db.select().from(drDrills).where(eq(drDrills.operationId, op.id));
    const dr = members('beta').find((m) => m.site !== old.site && d!.candidateLabel.includes(m.server))!;
    expect(dr).toBeDefined();
    expect(d).toMatchObject({ herdId: h, lost: 0, candidateSite: dr.site });
    expect(d!.acknowledged).toBeGreaterThan(20);
    expect(d!.firstWriteMs).toBeGreaterThan(0);
    expect(d!.longestGapMs).toBeGreaterThanOrEqual(d!.firstWriteMs! > 0 ? 1 : 0);
    expect(targets[0]!.outcome).toMatch(
      /^first write on .* after \d+ ms; longest gap \d+ ms; \d+ commits acknowledged, 0 lost; .* is the primary again$/,
    );
    // The herd is back on its primary of before, its write name too, every other member streaming from it.
    expect((await livePrimary('beta')).server).toBe(old.server);
    expect(await answer('beta')).toEqual([old.server]);
    for (const m of members('beta').filter((x) => x.server !== old.server)) {
      expect(await inRecovery(m)).toBe(true);
      await waitFor(`${m.server} streaming from ${old.server}`, async () => (await senderOf(m)) === old.address);
    }
    const left = await query<{ n: number }>(
      url(old),
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'pgherd' AND tablename LIKE 'drill_%'",
    );
    expect(left[0]!.n).toBe(0);
    expect(await card()).toMatchObject({ verdict: 'ok', last: { operationId: op.id, status: 'succeeded', lost: 0 } });
    // A later drill that a refusal stopped part way (its target failed with a refusal code) is the last one: failed.
    const [failed] = await db
      .insert(operations)
      .values({ action: 'dr-drill', status: 'failed', planDigest: 'x', requestedByName: 'drill-test', finishedAt: new Date() })
      .returning();
    await db
      .insert(operationTargets)
      .values({ operationId: failed!.id, herdId: h, label: 'dr/beta', status: 'failed', refusal: 'unreachable', attempts: 1 });
    expect(await card()).toMatchObject({ verdict: 'failed', note: 'its last drill failed', last: { operationId: failed!.id } });
  }, 240_000);

  it('writes nothing where another role planted the scratch table: a trigger that would make its owner SUPERUSER never runs as pgherd', async () => {
    const old = await livePrimary('beta');
    const h = herdIds.get('beta')!;
    const su = url(old);
    const isSuper = async () => (await query<{ s: boolean }>(su, "SELECT rolsuper AS s FROM pg_roles WHERE rolname = 'mallory'"))[0]!.s;
    // The next operation's id is public (viewers see ids), and so is the scratch table's name of old.
    const nextId = async () =>
      Number(
        (
          await db.execute<{ n: string }>(
            sql`SELECT (last_value + CASE WHEN is_called THEN 1 ELSE 0 END)::text AS n FROM operations_id_seq`,
          )
        ).rows[0]!.n,
      );
    const planted = (schema: string, table: string) => `
      SET ROLE mallory;
      CREATE TABLE ${schema}.${table} (seq bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE TRIGGER pwn BEFORE INSERT ON ${schema}.${table} FOR EACH ROW EXECUTE FUNCTION public.mallory_pwn();
      RESET ROLE;`;
    await query(
      su,
      `CREATE ROLE mallory NOLOGIN; GRANT CREATE ON SCHEMA public TO mallory;
       CREATE FUNCTION public.mallory_pwn() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN ALTER ROLE mallory SUPERUSER; RETURN NEW; END$$;
       ALTER FUNCTION public.mallory_pwn() OWNER TO mallory;
       CREATE SCHEMA pgherd_planted AUTHORIZATION mallory;`,
    );
    try {
      // 1. A schema named pgherd that mallory made first (a database owner can): refused before any write.
      await query(su, `ALTER SCHEMA pgherd RENAME TO pgherd_own_kept`).catch(() => {});
      await query(su, `ALTER SCHEMA pgherd_planted RENAME TO pgherd; ${planted('pgherd', `drill_${String(await nextId())}`)}`);
      const refused = await runOperation(
        db,
        worker!.queue,
        drDrillAction,
        { herdIds: [h] },
        {},
        { username: 'drill-test', timeoutMs: 120_000 },
      );
      expect(refused.op.status).toBe('failed');
      expect(refused.targets[0]!.error).toMatch(/schema pgherd belongs to role mallory, not to \w+: pgherd writes nothing there/);
      expect(await isSuper()).toBe(false);
      expect((await query<{ n: number }>(su, `SELECT count(*)::int AS n FROM pgherd.drill_${String(refused.op.id)}`))[0]!.n).toBe(0);
      expect((await livePrimary('beta')).server).toBe(old.server);
      await query(su, 'DROP SCHEMA pgherd CASCADE');
      await query(su, `ALTER SCHEMA pgherd_own_kept RENAME TO pgherd`).catch(() => {});
      // 2. The unqualified name of old, planted in public: the drill writes to its own schema and never there.
      const id = await nextId();
      await query(su, planted('public', `pgherd_drill_${String(id)}`));
      const ran = await runOperation(
        db,
        worker!.queue,
        drDrillAction,
        { herdIds: [h] },
        {},
        { username: 'drill-test', timeoutMs: 180_000 },
      );
      expect([ran.op.id, ran.op.status, ran.targets[0]!.error]).toEqual([id, 'succeeded', null]);
      expect(await isSuper()).toBe(false);
      expect((await query<{ n: number }>(su, `SELECT count(*)::int AS n FROM public.pgherd_drill_${String(id)}`))[0]!.n).toBe(0);
    } finally {
      await query(
        su,
        `DO $$DECLARE t text; BEGIN
           FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'pgherd\\_drill\\_%' LOOP
             EXECUTE format('DROP TABLE public.%I', t);
           END LOOP; END$$;
         DROP SCHEMA IF EXISTS pgherd_planted CASCADE;
         DROP FUNCTION IF EXISTS public.mallory_pwn() CASCADE; REVOKE ALL ON SCHEMA public FROM mallory; DROP ROLE IF EXISTS mallory;`,
      );
    }
  }, 360_000);

  it("is refused for a herd with no member outside its primary's site, saying so; the scorecard says it cannot be drilled", async () => {
    const h = herdIds.get('gamma')!;
    const ids = members('gamma').map((m) => m.server);
    const before = await db.select({ id: servers.id, site: servers.site }).from(servers);
    try {
      for (const host of ids) await db.update(servers).set({ site: 'dc-east' }).where(eq(servers.hostname, host));
      const plan = await planOperation(db, SYSTEM_ACCESS, drDrillAction, [h], {});
      expect(plan.targets[0]!.refused).toMatch(
        /^no member outside the primary's site \(dc-east\): a DR drill switches over to a member in another site/,
      );
      const [env] = await db.select({ id: herds.environmentId }).from(herds).where(eq(herds.id, h));
      expect((await drScorecard(db, env!.id)).find((r) => r.herdId === h)).toMatchObject({ verdict: 'no-dr-member' });
    } finally {
      for (const s of before) await db.update(servers).set({ site: s.site }).where(eq(servers.id, s.id));
    }
  });
});

describe('switchover undone', () => {
  it('starts the old primary again and resumes PgBouncer when the candidate never catches up; the writer sees no error', async () => {
    const pooler = lab.pgbouncer[0];
    const old = await livePrimary('alpha');
    const cand = members('alpha').find((m) => m.server !== old.server)!;
    const inv = await byServer('alpha');
    await query(pooler!.dsn, 'CREATE TABLE undo_writes (n int PRIMARY KEY)');
    await query(url(cand), 'SELECT pg_wal_replay_pause()');
    const writer = startWriter(pooler!.dsn, 'undo_writes');
    try {
      await waitFor('the writer commits', async () => writer.acked.length > 20);
      const { op, targets, steps } = await runOp(switchoverAction, [herdIds.get('alpha')!], {
        candidateInstanceId: inv.get(cand.server)!.id,
        catchUpDeadlineMs: 1500,
      });
      const before = writer.acked.length;
      await waitFor('the writer commits again', async () => writer.acked.length > before + 50);
      await writer.stop();
      expect(op.status).toBe('failed');
      expect(targets[0]!.error).toMatch(/did not reach "replayed past/);
      const undo = steps.find((s) => s.name === `start ${old.server}:${old.port} again as primary if no replica was promoted`)!;
      expect(undo).toMatchObject({ status: 'succeeded', stdoutTail: `${old.server}:${old.port} is the primary again` });
      // Undo ran before the resume: newest first.
      expect(steps.findIndex((s) => s === undo)).toBeLessThan(
        steps.findIndex((s) => s.name === `PgBouncer ${pooler!.server}:${pooler!.port}: resume (always)`),
      );
      expect(await inRecovery(old)).toBe(false);
      expect(await inRecovery(cand)).toBe(true);
      expect(writer.errors).toEqual([]);
      const { n } = (
        await query<{ n: string }>(url(old), 'SELECT count(*) AS n FROM undo_writes WHERE n = ANY($1::int[])', [writer.acked])
      )[0]!;
      expect(Number(n)).toBe(writer.acked.length);
      expect(
        (
          await showDatabases(
            poolerConsole({
              host: pooler!.address,
              port: pooler!.port,
              adminUser: pooler!.adminUser,
              serverEnvironment: pooler!.environment,
            }),
          )
        ).get(pooler!.databases[0]!),
      ).toMatchObject({ host: old.address, paused: false });
      expect(await answer('alpha')).toEqual([old.server]);
    } finally {
      await writer.stop();
      await query(url(cand), 'SELECT pg_wal_replay_resume()');
    }
  }, 90_000);
});

describe('switchover whose promotion outlives its deadline', () => {
  it('never starts the old primary again once pg_promote was sent: one primary at the end, PgBouncer resumed and pointing at it', async () => {
    const pooler = lab.pgbouncer[0];
    const old = await livePrimary('alpha');
    const cand = members('alpha').find((m) => m.server !== old.server)!;
    const third = members('alpha').find((m) => m.server !== old.server && m.server !== cand.server)!;
    const inv = await byServer('alpha');
    const { op, targets, steps } = await runOp(switchoverAction, [herdIds.get('alpha')!], {
      candidateInstanceId: inv.get(cand.server)!.id,
      promoteDeadlineMs: 1,
    });
    expect(op.status).toBe('failed');
    expect(targets[0]!.error).toMatch(/did not finish its promotion within 0.001 s of pg_promote/);
    const undo = steps.find((x) => x.name === `start ${old.server}:${old.port} again as primary if no replica was promoted`)!;
    expect(undo.stdoutTail + undo.stderrTail).not.toContain('is the primary again');
    // Whatever the promotion did since, the herd never has two primaries. The operation has ended, so
    // nothing of it can start the old primary any more: once the promotion finished, count.
    await waitFor('the candidate finished its promotion', async () => !(await inRecovery(cand)));
    // Its postmaster is not running at all (pg_ctl status exits 3), not merely slow to answer.
    expect(
      await runAs(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', old.dataDirectory, 'status']).then(
        () => 'running',
        () => 'stopped',
      ),
    ).toBe('stopped');
    const primaries = [];
    for (const m of members('alpha')) {
      const r = await query<{ r: boolean }>(url(m), 'SELECT pg_is_in_recovery() AS r').catch(() => null);
      if (r && !r[0]!.r) primaries.push(m.server);
    }
    expect(primaries).toEqual([cand.server]);
    expect(targets[0]!.outcome).toMatch(
      new RegExp(`${cand.server}:\\d+ finished its promotion after the switchover gave up on it|pg_promote was sent to ${cand.server}`),
    );
    // PgBouncer was resumed, pointing at the one primary; the old primary is fenced in the inventory.
    expect(
      (
        await showDatabases(
          poolerConsole({
            host: pooler!.address,
            port: pooler!.port,
            adminUser: pooler!.adminUser,
            serverEnvironment: pooler!.environment,
          }),
        )
      ).get(pooler!.databases[0]!),
    ).toMatchObject({ host: cand.address, paused: false });
    expect((await byServer('alpha')).get(old.server)!.state).toBe('fenced');
    // Mend alpha for the tests after this one: the old primary rebuilt from the new, the third re-pointed.
    expect((await runRebuild((await byServer('alpha')).get(old.server)!)).status).toBe('succeeded');
    await runInstanceOp(remasterAction, (await byServer('alpha')).get(third.server)!.id);
    expect(await senderOf(third)).toBe(cand.address);
    await refreshFleet(db, { ids: (await refs('alpha')).map((r) => r.id), timeoutMs: 2000 });
  }, 180_000);
});

describe('a herd whose primary stops after pgherd last looked', () => {
  it('is said to have no primary by the next refresh: a herd.no_primary webhook, the metric, the health finding; once, and gone when its primary is back', async () => {
    const primary = await livePrimary('gamma');
    const gamma = herdIds.get('gamma')!;
    const ids = (await refs('gamma')).map((r) => r.id);
    const receiver = await startWebhookReceiver();
    const { received } = receiver;
    const [hook] = await db
      .insert(webhooks)
      .values({
        name: 'no primary',
        url: receiver.url('/alarms'),
        secret: 'failover-test',
        events: ['herd.no_primary'],
      })
      .returning();
    const pgCtl = (...args: string[]) => runAs(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', primary.dataDirectory, ...args]);
    try {
      // pgherd's last look: the primary runs.
      await refreshFleet(db, { ids, timeoutMs: 2000 });
      expect(await noPrimaryOf('gamma')).toMatchObject({ total: 0 });
      expect(await scraped('pgherd_herds_no_primary')).toBe(0);

      // Stopped behind pgherd's back (by hand, or a stop that waited in a stopped postmaster).
      await pgCtl('-m', 'fast', '-w', 'stop');
      await refreshFleet(db, { ids, timeoutMs: 2000 });
      const health = await fleetHealth(db, null, { herdId: gamma });
      expect(healthy(health)).toBe(false);
      expect(health.noPrimary.total).toBe(1);
      const [row] = health.noPrimary.rows;
      expect(row).toMatchObject({
        herdId: gamma,
        herd: 'dr/gamma',
        primaries: [
          { id: (await byServer('gamma')).get(primary.server)!.id, label: `${primary.server}:${primary.port}`, state: 'stopped' },
        ],
      });
      expect(row!.since).toBeInstanceOf(Date);
      expect(await scraped('pgherd_herds_no_primary')).toBe(1);
      await waitFor('the herd.no_primary delivery', async () => received.some((r) => r.event === 'herd.no_primary'));
      const [t] = received.filter((r) => r.event === 'herd.no_primary');
      expect(t!.body).toMatchObject({
        event: 'herd.no_primary',
        herd: { id: gamma, name: 'gamma', environment: 'dr' },
        operation: null,
        text: expect.stringMatching(new RegExp(`^pgherd: herd dr/gamma has no primary: .*${primary.server}:${primary.port} \\(stopped\\)`)),
      });
      const deliveries = async () =>
        (await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, hook!.id))).map((d) => [d.event, d.status]);
      await waitFor('the delivery recorded as delivered', async () => (await deliveries()).some(([, s]) => s === 'delivered'));
      expect(await deliveries()).toEqual([['herd.no_primary', 'delivered']]);
      // Events of the herd told or still to tell, in one snapshot (the worker turns one into the other in one transaction).
      const told = async () =>
        (
          await db.execute<{ n: number }>(sql`
            SELECT ((SELECT count(*) FROM notification_events WHERE kind = 'herd.no_primary' AND herd_id = ${gamma})
                 + (SELECT count(*) FROM webhook_deliveries WHERE webhook_id = ${hook!.id}))::int AS n`)
        ).rows[0]!.n;

      // A second pass that finds it the same says nothing new: the finding keeps the time it was made.
      await refreshFleet(db, { ids, timeoutMs: 2000 });
      expect((await noPrimaryOf('gamma')).rows[0]!.since).toEqual(row!.since);

      // Started again: the next pass finds its primary back, and the finding is gone.
      await pgCtl('-l', `${primary.dataDirectory}/pg_ctl.log`, '-w', '-t', '60', 'start');
      await waitFor('the primary answers again', async () => !(await inRecovery(primary)));
      await refreshFleet(db, { ids, timeoutMs: 2000 });
      expect(await noPrimaryOf('gamma')).toMatchObject({ total: 0 });
      expect(await scraped('pgherd_herds_no_primary')).toBe(0);
      expect((await byServer('gamma')).get(primary.server)).toMatchObject({ role: 'primary', state: 'running' });
      // Nothing more is told: the second pass made no event, and clearing makes none.
      expect(await told()).toBe(1);
    } finally {
      await pgCtl('-l', `${primary.dataDirectory}/pg_ctl.log`, '-w', '-t', '60', 'start').catch(() => {});
      await db.delete(webhooks).where(eq(webhooks.id, hook!.id));
      await receiver.close();
    }
  }, 120_000);
});

describe('DR failover with the old primary alive but silent', () => {
  it('sends no stop to a primary whose postmaster is stopped: refused saying so, the herd said to have no primary; resumed, it is still the primary', async () => {
    const old = await livePrimary('gamma');
    const pid = postmasterPid(old);
    expect(await noPrimaryOf('gamma')).toMatchObject({ total: 0 });
    process.kill(pid, 'SIGSTOP');
    try {
      const refused = await runOp(drFailoverAction, [herdIds.get('gamma')!]);
      expect(refused.op.status).toBe('failed');
      // Nothing waits in the stopped postmaster to stop it when it resumes.
      expect(pendingStops(pid)).toEqual([]);
      expect(refused.targets[0]!.error).toMatch(
        new RegExp(
          `^refused: ${old.server}:\\d+ is not proven fenced: it did not answer within 1.5 s .*, and its postmaster is stopped \\(SIGSTOP\\): no stop was sent; .*Nothing was promoted\\.`,
        ),
      );
      expect(refused.steps.map((x) => x.name)).not.toContain('promote the candidate');
      // Looked at again after the refusal: no member answers as a primary, and the herd says so.
      const none = await noPrimaryOf('gamma');
      expect(none.total).toBe(1);
      expect(none.rows[0]).toMatchObject({ herdId: herdIds.get('gamma'), herd: 'dr/gamma' });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Resumed, the same postmaster answers as the primary once it has run again (a stop waiting in it
    // would have been acted on first: the signal is delivered as it resumes, before it accepts anything).
    await waitFor('the old primary answers again', async () => !(await inRecovery(old)));
    expect(postmasterPid(old)).toBe(pid);
    expect(await inRecovery(old)).toBe(false);
    for (const m of members('gamma').filter((x) => x.server !== old.server)) expect(await inRecovery(m)).toBe(true);
    expect(await answer('gamma')).toEqual([old.server]);
    // The refresher finds the primary back: the herd no longer says it has none.
    await refreshFleet(db, { ids: (await refs('gamma')).map((r) => r.id), timeoutMs: 2000 });
    expect(await noPrimaryOf('gamma')).toMatchObject({ total: 0 });
    expect((await byServer('gamma')).get(old.server)).toMatchObject({ role: 'primary', state: 'running' });
  }, 120_000);

  it('refuses before promoting when the old primary does not answer and cannot be stopped; proceeds once the operator says it is fenced; never two primaries', async () => {
    const old = await livePrimary('gamma');
    const others = members('gamma').filter((m) => m.server !== old.server);
    const pid = postmasterPid(old);
    // Alive but answering nothing: connections are accepted by the kernel and then hang.
    process.kill(pid, 'SIGSTOP');
    try {
      const refused = await runOp(drFailoverAction, [herdIds.get('gamma')!]);
      expect(refused.op.status).toBe('failed');
      expect(refused.targets[0]!.error).toMatch(
        new RegExp(
          `^refused: ${old.server}:\\d+ is not proven fenced: it did not answer within 1.5 s .*and its postmaster is stopped \\(SIGSTOP\\): no stop was sent; .*Nothing was promoted\\. If you have fenced it yourself`,
        ),
      );
      expect(refused.steps.map((x) => x.name)).not.toContain('promote the candidate');
      // Nothing changed: both replicas still replicas, DNS on the old primary, the inventory not fenced.
      for (const m of others) expect(await inRecovery(m)).toBe(true);
      expect(await answer('gamma')).toEqual([old.server]);
      expect((await byServer('gamma')).get(old.server)).toMatchObject({ role: 'primary', state: 'running' });

      // The operator has fenced it (the test plays the part: it stays stopped, then is powered off below).
      const { op, targets, steps } = await runOp(drFailoverAction, [herdIds.get('gamma')!], { fencedByOperator: true });
      expect(targets[0]!.error).toBeNull();
      expect(op.status).toBe('succeeded');
      expect(steps.find((x) => x.name === `fence ${old.server}:${old.port}`)?.stdoutTail).toMatch(
        /^fenced by the operator \(failover-test: powered off or cut off/,
      );
      const answering = [];
      for (const m of members('gamma')) {
        const r = await query<{ r: boolean }>(url(m), 'SELECT pg_is_in_recovery() AS r').catch(() => null);
        if (r && !r[0]!.r) answering.push(m.server);
      }
      expect(answering).toHaveLength(1);
      expect(answering[0]).not.toBe(old.server);
    } finally {
      process.kill(pid, 'SIGKILL'); // powered off
      process.kill(pid, 'SIGCONT');
    }
    await waitFor('the old postmaster is gone', async () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
    // Rebuilt from the new primary, gamma is whole again for the tests after this one.
    const rebuilt = await runRebuild((await byServer('gamma')).get(old.server)!);
    expect(rebuilt.status).toBe('succeeded');
    expect(await inRecovery(old)).toBe(true);
  }, 180_000);
});

describe('DR failover in a herd where a replica already answers as a primary', () => {
  it('refuses before fencing anything: the old primary keeps running, nothing is promoted, DNS unchanged', async () => {
    const old = await livePrimary('beta');
    const source = members('beta').find((m) => m.server !== old.server)!;
    // A member promoted outside pgherd (by hand, by another tool) that the inventory still lists as a replica.
    const copy = await restoredCopy(lab, LAB_FILE, source, 'db-dr-beta-rogue.lab.internal', '127.0.4.200');
    const [env] = await db
      .select({ id: herds.environmentId })
      .from(herds)
      .where(eq(herds.id, herdIds.get('beta')!));
    const [srv] = await db
      .insert(servers)
      .values({
        hostname: 'db-dr-beta-rogue.lab.internal',
        environmentId: env!.id,
        address: '127.0.4.200',
        sshUser: lab.osUser,
        sshPort: lab.ssh!.port,
        sshHostKeyFingerprint: lab.ssh!.hostKeyFingerprint,
      })
      .returning();
    const [rogue] = await db
      .insert(instances)
      .values({
        herdId: herdIds.get('beta')!,
        serverId: srv!.id,
        port: copy.node.port,
        dataDirectory: copy.node.dataDirectory,
        pgVersion: 15,
        role: 'replica',
        state: 'running',
        upstreamInstanceId: (await byServer('beta')).get(old.server)!.id,
      })
      .returning();
    try {
      const { op, targets, steps } = await runOp(drFailoverAction, [herdIds.get('beta')!]);
      expect(op.status).toBe('failed');
      expect(targets[0]!.error).toMatch(
        /^refused: db-dr-beta-rogue\.lab\.internal:\d+ answers as a primary \(timeline \d+\), though the inventory has db-dr-beta-1\.lab\.internal:\d+ as the herd's primary: it was promoted outside this failover\. Nothing was changed\./,
      );
      expect(steps.map((x) => x.name)).toEqual(['ask the replicas and the DNS servers']);
      expect(await inRecovery(old)).toBe(false);
      for (const m of members('beta').filter((x) => x.server !== old.server)) expect(await inRecovery(m)).toBe(true);
      expect(await answer('beta')).toEqual([old.server]);
      expect((await byServer('beta')).get(old.server)).toMatchObject({ role: 'primary', state: 'running' });
    } finally {
      await db.delete(instances).where(eq(instances.id, rogue!.id));
      await db.delete(servers).where(eq(servers.id, srv!.id));
      await copy.remove();
    }
  }, 120_000);
});

describe('DR failover', () => {
  it('with the primary killed and its SSH refused: the replica with the most WAL is promoted, DNS moves, the other follows, the old primary is fenced until rebuilt', async () => {
    const old = await livePrimary('beta');
    // b is the replica the inventory would pick (first by id, the same position as a when last seen);
    // it lags on purpose: it receives the rows but replays nothing more, then stops receiving. The failover
    // must see that.
    const [b, a] = members('beta').filter((m) => m.server !== old.server);
    await query(url(old), 'CREATE TABLE dr_rows (n int PRIMARY KEY)');
    await waitFor(
      'both have the table',
      async () =>
        (await query(url(b!), "SELECT 1 FROM pg_class WHERE relname = 'dr_rows'")).length === 1 &&
        (await query(url(a!), "SELECT 1 FROM pg_class WHERE relname = 'dr_rows'")).length === 1,
    );
    await refreshFleet(db, { ids: (await refs('beta')).map((r) => r.id), timeoutMs: 2000 });
    await query(url(b!), 'SELECT pg_wal_replay_pause()');
    await query(url(old), 'INSERT INTO dr_rows SELECT generate_series(1, 1000)');
    const { lsn } = (await query<{ lsn: string }>(url(old), 'SELECT pg_current_wal_lsn()::text AS lsn'))[0]!;
    await waitFor('a replayed the rows', async () => (await query(url(a!), 'SELECT count(*)::int AS n FROM dr_rows'))[0]!.n === 1000);
    await waitFor(
      'b received them',
      async () => (await query<{ ok: boolean }>(url(b!), `SELECT pg_last_wal_receive_lsn() >= '${lsn}'::pg_lsn AS ok`))[0]!.ok,
    );
    // Which of the two has received more at the kill must not be left to timing: b's stream is cut, then one
    // more commit reaches a alone. a has the most WAL received and replayed; b has the rows but replays nothing.
    // Its replay paused, its startup process starts no new WAL receiver once this one is gone.
    const [receiver] = await query<{ pid: number }>(url(b!), 'SELECT pid FROM pg_stat_wal_receiver');
    process.kill(receiver!.pid, 'SIGTERM');
    await waitFor('b stopped receiving', async () => (await query(url(b!), 'SELECT 1 FROM pg_stat_wal_receiver')).length === 0);
    await query(url(old), 'CREATE TABLE dr_mark ()');
    const { mark } = (await query<{ mark: string }>(url(old), 'SELECT pg_current_wal_lsn()::text AS mark'))[0]!;
    await waitFor(
      'a received the mark',
      async () => (await query<{ ok: boolean }>(url(a!), `SELECT pg_last_wal_receive_lsn() >= '${mark}'::pg_lsn AS ok`))[0]!.ok,
    );
    await crash(old);
    await refuseSsh(lab, LAB_FILE, old.address);
    try {
      const { op, targets, steps, ms, plan } = await runOp(drFailoverAction, [herdIds.get('beta')!]);
      console.log(`DR failover of one herd, primary gone: confirm -> done ${ms.toFixed(0)} ms`);
      // The plan, from the inventory, named b; the failover measured and chose a.
      expect(plan.targets[0]!.facts?.find((f) => f.label === 'Candidate')?.value).toMatch(
        new RegExp(`^${b!.server}:\\d+ .*chosen again when it runs`),
      );
      expect(steps.find((s) => s.name === 'choose the candidate')?.stdoutTail).toContain(`chosen: ${a!.server}`);
      expect(targets[0]!.error).toBeNull();
      expect(op.status).toBe('succeeded');
      expect(await inRecovery(a!)).toBe(false);
      expect(await answer('beta')).toEqual([a!.server]);
      expect(await senderOf(b!)).toBe(a!.address);
      expect(await inRecovery(b!)).toBe(true);
      expect((await query(url(a!), 'SELECT count(*)::int AS n FROM dr_rows'))[0]!.n).toBe(1000);
      expect(targets[0]!.outcome).toMatch(
        new RegExp(`^${a!.server}:\\d+ is the primary; ${old.server}:\\d+ is fenced; possible data loss: 0 bytes`),
      );
      expect(steps.find((s) => s.name === `fence ${old.server}:${old.port}`)?.stdoutTail).toContain(
        `its host refuses connections on port ${old.port}: nothing listens there`,
      );
      const inv = await byServer('beta');
      expect(inv.get(old.server)!.state).toBe('fenced');
      expect(inv.get(a!.server)).toMatchObject({ role: 'primary', state: 'running' });
      // A fenced instance is not started by pgherd (execution plans again, with the same refusal).
      const start = await planOperation(db, SYSTEM_ACCESS, startAction, [inv.get(old.server)!.id]);
      expect(start.targets[0]!.refused).toBe('fenced after a failover: rebuild it before starting it again');
    } finally {
      await allowSsh(lab, LAB_FILE, old.address);
    }
    // Rebuilt from the new primary, it streams from it.
    const inv = await byServer('beta');
    const rebuilt = await runRebuild(inv.get(old.server)!);
    expect(rebuilt.status).toBe('succeeded');
    expect(await senderOf(old)).toBe(a!.address);
    expect((await query(url(old), 'SELECT count(*)::int AS n FROM dr_rows'))[0]!.n).toBe(1000);
    expect((await byServer('beta')).get(old.server)).toMatchObject({ role: 'replica', state: 'running' });
  }, 180_000);

  it('of three herds in one operation, their primaries killed under a write load: no candidate waits out a deadline, the other replicas follow the new timeline', async () => {
    const olds = await Promise.all(['alpha', 'beta', 'gamma'].map(livePrimary));
    // Large records written without pause: a primary killed mid-record has sent WAL that ends past its
    // last complete record, which its replicas receive but can never replay.
    const loads = await Promise.all(
      olds.map(async (o) => {
        await query(url(o), 'CREATE TABLE IF NOT EXISTS ballast_load (g int, pad text)');
        return startBallast(url(o));
      }),
    );
    await waitFor('the loads write', async () => loads.every((l) => l.batches() > 2));
    await Promise.all(olds.map(crash));
    await Promise.all(loads.map((l) => l.stop()));
    const ids = ['alpha', 'beta', 'gamma'].map((h) => herdIds.get(h)!);
    const { op, targets, steps, ms, plan } = await runOp(drFailoverAction, ids, { replayDeadlineMs: 60_000 });
    console.log(`DR failover of three herds in one operation: confirm -> done ${ms.toFixed(0)} ms`);
    const replays = steps.filter((x) => x.name === 'let the candidate replay all it can');
    console.log(replays.map((x) => x.stdoutTail).join('\n'));
    console.log(
      steps
        .filter((x) => x.name === 're-point the other replicas')
        .map((x) => `${x.stdoutTail}\n${x.stderrTail}`)
        .join('\n'),
    );
    expect(plan.typeToConfirm).toBe('3');
    expect(targets.map((x) => x.error)).toEqual([null, null, null]);
    expect(op.status).toBe('succeeded');
    // Each candidate replayed what it could and was promoted: none waited for WAL it could never replay.
    expect(replays).toHaveLength(3);
    for (const r of replays) expect(r.stdoutTail).toMatch(/replayed all of it|replay stopped there/);
    for (const [k, herd] of ['alpha', 'beta', 'gamma'].entries()) {
      const neu = await livePrimary(herd);
      expect(neu.server).not.toBe(olds[k]!.server);
      expect(await answer(herd)).toEqual([neu.server]);
      const { tli } = (
        await query<{ tli: number }>(url(neu), "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli")
      )[0]!;
      const inv = await byServer(herd);
      expect(inv.get(neu.server)).toMatchObject({ role: 'primary', timeline: tli });
      for (const m of members(herd).filter((x) => x.server !== neu.server && x.server !== olds[k]!.server)) {
        if (inv.get(m.server)!.state === 'needs_rebuild') {
          // It holds the start of a record the old primary never finished, across a WAL segment boundary:
          // PostgreSQL cannot replay past the new primary's OVERWRITE_CONTRECORD. Named, marked, and a
          // rebuild brings it back onto the new timeline.
          expect(targets[k]!.outcome).toContain(`not following the new primary, marked needs rebuild: ${m.server}:${m.port}`);
          expect((await runRebuild(inv.get(m.server)!)).status).toBe('succeeded');
        }
        // Streaming from it is not enough: it receives the new primary's timeline, and the inventory says so.
        expect(await senderOf(m)).toBe(neu.address);
        const [w] = await query<{ tli: number }>(url(m), "SELECT received_tli AS tli FROM pg_stat_wal_receiver WHERE status = 'streaming'");
        expect(w!.tli).toBe(tli);
        await refreshFleet(db, { ids: [inv.get(m.server)!.id], timeoutMs: 2000 });
        expect((await byServer(herd)).get(m.server)).toMatchObject({ role: 'replica', state: 'running', timeline: tli });
      }
      expect(inv.get(olds[k]!.server)!.state).toBe('fenced');
    }
    // A replica marked needs rebuild is rebuilt from a fresh copy (pg_rewind could find nothing to rewind
    // in the WAL that kept it from following) and then streams the new timeline.
    const gammaNew = await livePrimary('gamma');
    const follower = members('gamma').find((m) => m.server !== gammaNew.server && m.server !== olds[2]!.server)!;
    const fInv = (await byServer('gamma')).get(follower.server)!;
    await db.update(instances).set({ state: 'needs_rebuild' }).where(eq(instances.id, fInv.id));
    const rebuilt = await runRebuild({ ...fInv, state: 'needs_rebuild' });
    expect(rebuilt.status).toBe('succeeded');
    const rebuildSteps = await db
      .select()
      .from(operationSteps)
      .innerJoin(operationTargets, eq(operationTargets.id, operationSteps.targetId))
      .where(eq(operationTargets.operationId, rebuilt.id));
    expect(rebuildSteps.find((x) => x.operation_steps.name === 'pg_rewind')?.operation_steps.stdoutTail).toBe(
      'skipped: a fresh copy is made instead',
    );
    expect(await senderOf(follower)).toBe(gammaNew.address);
    // alpha's PgBouncer follows too.
    const pooler = lab.pgbouncer[0];
    const alpha = await livePrimary('alpha');
    expect(
      (
        await showDatabases(
          poolerConsole({
            host: pooler!.address,
            port: pooler!.port,
            adminUser: pooler!.adminUser,
            serverEnvironment: pooler!.environment,
          }),
        )
      ).get(pooler!.databases[0]!),
    ).toMatchObject({ host: alpha.address, port: alpha.port });
    await query(pooler!.dsn, 'INSERT INTO writes (n) VALUES (-2)');
  }, 180_000);

  it('promotes over the session that watched the candidate only while its postmaster takes new connections', async () => {
    // The DR failover looks at its replicas, chooses and watches the replay over one session each, and
    // promotes over it: a postmaster frozen meanwhile keeps that session answering, yet no client could
    // connect to the primary it would become. Nothing is promoted then.
    let cand: LabInstance | undefined;
    for (const i of members('alpha')) if (await inRecovery(i).catch(() => false)) cand = i;
    const ref = (await byServer('alpha')).get(cand!.server)!;
    const session = sessionTo(ref);
    expect((await session.look()).inRecovery).toBe(true);
    const pid = postmasterPid(cand!);
    const noted: string[] = [];
    process.kill(pid, 'SIGSTOP');
    try {
      await expect(
        promoteNow(ref, { note: (r) => noted.push(r.command ?? r.stdout ?? ''), signal: new AbortController().signal }, { over: session }),
      ).rejects.toThrow(new RegExp(`^${ref.label} was not promoted: .*\\(an open session still answers\\)$`));
    } finally {
      process.kill(pid, 'SIGCONT');
      session.close();
    }
    expect(await inRecovery(cand!)).toBe(true);
    expect(noted.join('\n')).toContain('pg_promote(false)');
  });

  it('is refused, changing nothing, for a herd with no reachable replica', async () => {
    const primary = await livePrimary('gamma');
    const others = members('gamma').filter((m) => m.server !== primary.server);
    // One is the fenced old primary (stopped); stop the other replica too.
    for (const m of others)
      await runAs(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', m.dataDirectory, '-m', 'fast', '-w', 'stop']).catch(() => {});
    const { op, targets } = await runOp(drFailoverAction, [herdIds.get('gamma')!]);
    expect(op.status).toBe('failed');
    expect(targets[0]!.error).toBe('refused: no replica answers; nothing was changed');
    expect(await inRecovery(primary)).toBe(false);
    expect((await byServer('gamma')).get(primary.server)!.state).toBe('running');
    expect(await answer('gamma')).toEqual([primary.server]);
    // Once the inventory has seen them stopped, the plan refuses.
    await refreshFleet(db, { ids: (await refs('gamma')).map((r) => r.id), timeoutMs: 2000 });
    const plan = await planOperation(db, SYSTEM_ACCESS, drFailoverAction, [herdIds.get('gamma')!]);
    expect(plan.targets[0]!.refused).toBe('the herd has no running replica to fail over to');
  }, 60_000);
});

async function runInstanceOp(action: AnyAction, id: number) {
  const r = await runOperation(db, worker!.queue, action, { instanceIds: [id] }, {}, { username: 'failover-test' });
  expect(r.plan.targets[0]!.refused).toBeUndefined();
  return r.op;
}

const runRebuild = (target: InstanceRef) => runInstanceOp(rebuildAction, target.id);
