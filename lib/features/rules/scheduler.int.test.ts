// Rules fired by the worker pool, on the lab: real BullMQ job schedulers in the lab's Redis, real
// reloads over SSH, pgherd's database as the truth. Reloads only (and on the staging orders and billing
// herds, which no other file stops): what is asserted is what the rules engine decides.
import { randomBytes } from 'node:crypto';
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import IORedis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, blackouts, environments, herds, instances, operations, roleBindings, ruleRuns, rules, users } from '@/db/schema';
import { loadAccess } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { query } from '@/lib/lab/postgres';
import { startWorker } from '@/jobs/start-worker';
import { producerConnection } from '@/lib/engine/queue';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { waitFor } from '@/lib/testing/wait';
import { fireDue, fireRequested } from './fire';
import { withHeartbeat } from './rule-runs';
import { ruleBody } from './rule-body';
import { createRule, requestRun, updateRule } from './rules';
import type { Actor } from '@/lib/engine/access';
import { reconcileRuns } from './scheduler';
import { groupSchedulerId, ruleQueue } from './rule-queue';

let t: TestDb;
const prefix = `rules-${randomBytes(4).toString('hex')}`;
let sched: number;
let rita: Actor;
const workers: Awaited<ReturnType<typeof startWorker>>[] = [];
const quietDeps = () => ({ db: t.db, queue: null, log: () => {} });

const herdId = async (env: string, name: string) =>
  (
    await t.db
      .select({ id: herds.id })
      .from(herds)
      .innerJoin(environments, eq(environments.id, herds.environmentId))
      .where(and(eq(environments.name, env), eq(herds.name, name)))
  )[0]!.id;
const membersOf = async (herd: number) =>
  (await t.db.select({ id: instances.id }).from(instances).where(eq(instances.herdId, herd)).orderBy(asc(instances.id))).map((r) => r.id);

const startOne = () =>
  startWorker({
    databaseUrl: t.url,
    redisUrl: t.lab.redis!.url,
    sshKeyPath: t.lab.ssh!.privateKeyPath,
    concurrency: 4,
    refreshEveryMs: 0,
    reconcileEveryMs: 500,
    queuePrefix: prefix,
    ruleCatchUpSlackMs: 1500,
    quiet: true,
  }).then((w) => (workers.push(w), w));
const stopAll = async () => {
  while (workers.length) await workers.pop()!.close();
};

const body = (b: Record<string, unknown>) => ruleBody.parse({ schedule: { cron: ['0 3 * * *'], timezone: 'UTC' }, action: 'reload', ...b });
const runsOf = (ruleId: number) => t.db.select().from(ruleRuns).where(eq(ruleRuns.ruleId, ruleId)).orderBy(asc(ruleRuns.id));
/** How long a state is waited for here: fires, their decisions and the operations they start. */
const WAIT_MS = 60_000;
const finished = (opId: number) =>
  waitFor(
    `operation ${opId}`,
    async () => {
      const [op] = await t.db.select().from(operations).where(eq(operations.id, opId));
      return op?.finishedAt ? op : null;
    },
    WAIT_MS,
  );

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  // An environment of its own, with staging's orders herd moved into it: what the rules' filter names.
  const [env] = await t.db.insert(environments).values({ name: 'sched' }).returning();
  sched = env!.id;
  await t.db
    .update(herds)
    .set({ environmentId: sched })
    .where(eq(herds.id, await herdId('staging', 'orders')));
  const [u] = await t.db.insert(users).values({ username: 'rita', source: 'local' }).returning();
  const [staging] = await t.db.select().from(environments).where(eq(environments.name, 'staging'));
  // Rita runs what is in sched; its servers are staging's, where a target's roles are checked too.
  await t.db.insert(roleBindings).values([
    { role: 'operator', subjectType: 'user', subject: 'rita', environmentId: sched },
    { role: 'operator', subjectType: 'user', subject: 'rita', environmentId: staging!.id },
  ]);
  rita = { id: u!.id, username: 'rita', access: await loadAccess(t.db, u!.id) };
});
afterAll(async () => {
  await stopAll();
  const redis = ifAssigned(t) ? new IORedis(t.lab.redis!.url) : null;
  if (redis) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  await ifAssigned(t)?.close();
});

describe('rules fired by the worker pool', () => {
  it("fires on its cron a saved filter's instances as an operation requested by the rule; a herd added to the filter's set is in the next fire; two workers run each fire once", async () => {
    await startOne();
    await startOne();
    const orders = await herdId('sched', 'orders');
    const rule = await createRule(
      t.db,
      rita,
      body({ name: 'reload sched', filter: `environment=${sched}`, schedule: { cron: ['*/3 * * * * *'], timezone: 'UTC' } }),
    );
    const ordersMembers = await membersOf(orders);
    const dsn = t.lab.instances.find((x) => x.environment === 'staging' && x.herd === 'orders' && x.role === 'replica')!.dsn;
    const [before] = await query<{ at: Date }>(dsn, 'SELECT pg_conf_load_time() AS at');

    const first = await waitFor('a started run', async () => (await runsOf(rule.id)).find((r) => r.status === 'started'), WAIT_MS);
    const op1 = await finished(first.operationId!);
    const errors = await t.db.execute<{ error: string }>(
      sql`SELECT error FROM operation_targets WHERE operation_id = ${op1.id} AND error IS NOT NULL`,
    );
    expect(errors.rows).toEqual([]);
    expect(op1.status).toBe('succeeded');
    expect(op1.requestedByName).toBe('rule: reload sched');
    expect(op1.requestedBy).toBe(rita.id);
    expect(op1.ruleId).toBe(rule.id);
    expect(first.targets.map((x) => x.id).sort()).toEqual(ordersMembers);
    const [after] = await query<{ at: Date }>(dsn, 'SELECT pg_conf_load_time() AS at');
    expect(after!.at.getTime()).toBeGreaterThan(before!.at.getTime());

    // Billing joins the environment the filter names: the next fire includes its members.
    const billing = await herdId('staging', 'billing');
    await t.db.update(herds).set({ environmentId: sched }).where(eq(herds.id, billing));
    const billingMembers = await membersOf(billing);
    const widened = await waitFor(
      'a run with billing',
      async () => (await runsOf(rule.id)).find((r) => r.status === 'started' && r.targets.some((x) => billingMembers.includes(x.id))),
      WAIT_MS,
    );
    expect(widened.targets.map((x) => x.id).sort((a, b) => a - b)).toEqual([...ordersMembers, ...billingMembers].sort((a, b) => a - b));
    expect((await finished(widened.operationId!)).status).toBe('succeeded');
    await t.db
      .update(herds)
      .set({ environmentId: (await t.db.select().from(environments).where(eq(environments.name, 'staging')))[0]!.id })
      .where(eq(herds.id, billing));

    // Stop it, and let what fired end: disabled under the rule's row lock, which a fire takes to record
    // itself, so no fire records after this; those recorded before it are decided.
    await updateRule(
      t.db,
      rita,
      rule.id,
      body({
        name: 'reload sched',
        filter: `environment=${sched}`,
        schedule: { cron: ['*/3 * * * * *'], timezone: 'UTC' },
        enabled: false,
      }),
    );
    const runs = await waitFor(
      'every fire recorded before it was disabled decided',
      async () => {
        const rs = await runsOf(rule.id);
        return rs.every((r) => r.status !== 'firing' && r.status !== 'deciding') && rs;
      },
      WAIT_MS,
    );
    const started = runs.filter((r) => r.status === 'started');
    for (const r of started) await finished(r.operationId!);
    // Each due time once, 3 s apart, however many workers: one operation per started run, no more.
    const due = runs.map((r) => r.dueAt.getTime());
    expect(new Set(due).size).toBe(due.length);
    for (const d of due) expect(d % 3000).toBe(0);
    const ops = await t.db.select({ id: operations.id }).from(operations).where(eq(operations.ruleId, rule.id));
    expect(ops.length).toBe(started.length);
    expect(started.length).toBeGreaterThanOrEqual(2);
    // Runs that found the previous one still going say so rather than start a second.
    for (const r of runs.filter((x) => x.status === 'skipped'))
      expect(r.reason).toMatch(/^overlap: its earlier run \(operation #\d+\) is still going$/);
    // Disabled: its group's scheduler is gone from Redis (no other rule fires every 3 s).
    const conn = producerConnection(t.lab.redis!.url);
    const q = ruleQueue(conn, prefix);
    try {
      await waitFor(
        'the schedulers removed',
        async () => !(await q.getJobSchedulers(0, -1)).some((s) => s.key === groupSchedulerId('UTC|*/3 * * * * *')),
        WAIT_MS,
      );
    } finally {
      await q.close();
      conn.disconnect();
    }
  });

  it('a due time seen by two workers at once is one run and one operation', async () => {
    const rule = await createRule(
      t.db,
      rita,
      body({ name: 'twice', instanceIds: (await membersOf(await herdId('sched', 'orders'))).slice(1, 2) }),
    );
    const due = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000);
    const got = await Promise.all([1, 2, 3].map(() => fireDue(quietDeps(), rule.id, rule.version, due, 'schedule', 5000)));
    expect(got.filter((x) => x !== null)).toHaveLength(1);
    const runs = await runsOf(rule.id);
    expect(runs.map((r) => r.status)).toEqual(['started']);
    // An older due time arriving late (a job from before) is not run after a newer one.
    expect(await fireDue(quietDeps(), rule.id, rule.version, new Date(due.getTime() - 60_000), 'schedule', 5000)).toBeNull();
    // A job of the rule's version before a change fires nothing.
    expect(await fireDue(quietDeps(), rule.id, rule.version - 1 || 99, new Date(due.getTime() + 1000), 'schedule', 5000)).toBeNull();
    await finished(runs[0]!.operationId!);
  });

  it('refuses a fire once its owner lost the role, records why and audits it; nothing runs', async () => {
    // No worker: a run asked for is announced to the workers, and this test decides it itself.
    await stopAll();
    const [u] = await t.db.insert(users).values({ username: 'otto', source: 'local' }).returning();
    const [binding] = await t.db
      .insert(roleBindings)
      .values({ role: 'operator', subjectType: 'user', subject: 'otto', environmentId: sched })
      .returning();
    const otto = { id: u!.id, username: 'otto', access: await loadAccess(t.db, u!.id) };
    const rule = await createRule(
      t.db,
      otto,
      body({ name: 'otto reloads', instanceIds: (await membersOf(await herdId('sched', 'orders'))).slice(0, 1) }),
    );
    await t.db.delete(roleBindings).where(eq(roleBindings.id, binding!.id));
    const opsBefore = (await t.db.select({ n: sql<number>`count(*)::int` }).from(operations))[0]!.n;
    const { runId } = await requestRun(t.db, otto, rule.id);
    expect(await fireRequested(quietDeps(), runId)).toBe(true);
    expect(await fireRequested(quietDeps(), runId)).toBe(false); // a second delivery finds it taken
    const [run] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId));
    expect(run!.status).toBe('refused');
    // Her only role is gone: she holds it nowhere (a role kept elsewhere names the environment: fire.int.test.ts).
    expect(run!.reason).toBe('refused: Reload configuration needs the operator role: its owner otto holds it nowhere now');
    expect(run!.operationId).toBeNull();
    expect((await t.db.select({ n: sql<number>`count(*)::int` }).from(operations))[0]!.n).toBe(opsBefore);
    const [entry] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'rule.refused'), eq(auditEntries.objectId, String(rule.id))));
    expect(entry!.username).toBe('rule: otto reloads');
    expect(entry!.userId).toBe(otto.id);
    expect(entry!.changes.owner).toEqual([null, 'otto']);
  });

  it('inside a blackout nothing fires and the history says why; a herd in maintenance or an environment blacked out is skipped target by target', async () => {
    await stopAll();
    const orders = await herdId('sched', 'orders');
    const identity = await herdId('staging', 'identity');
    await t.db.insert(roleBindings).values({ role: 'operator', subjectType: 'user', subject: 'rita', environmentId: null });
    rita = { ...rita, access: await loadAccess(t.db, rita.id!) };
    const orderTargets = (await membersOf(orders)).slice(0, 2);
    const identityTarget = (await membersOf(identity)).slice(0, 1);
    // Two environments: the count is typed, as on the console.
    const rule = await createRule(
      t.db,
      rita,
      body({ name: 'blacked out', instanceIds: [...orderTargets, ...identityTarget], confirmation: '3' }),
    );
    try {
      const now = Date.now();
      const [global] = await t.db
        .insert(blackouts)
        .values({ name: 'year-end freeze', startsAt: new Date(now - 3600_000), endsAt: new Date(now + 3600_000) })
        .returning();
      const { runId } = await requestRun(t.db, rita, rule.id);
      expect(await fireRequested(quietDeps(), runId)).toBe(true);
      let [run] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId));
      expect(run!.status).toBe('skipped');
      expect(run!.reason).toBe(`inside the blackout "year-end freeze" (until ${new Date(global!.endsAt).toISOString()})`);
      expect(run!.operationId).toBeNull();

      // The freeze over; the sched environment blacked out and staging's identity herd in maintenance: nothing left to run.
      await t.db.delete(blackouts).where(eq(blackouts.id, global!.id));
      await t.db
        .insert(blackouts)
        .values({ name: 'sched quiet', startsAt: new Date(now - 60_000), endsAt: new Date(now + 3600_000), environmentId: sched });
      await t.db.update(herds).set({ automation: 'maintenance' }).where(eq(herds.id, identity));
      const second = await requestRun(t.db, rita, rule.id);
      expect(await fireRequested(quietDeps(), second.runId)).toBe(true);
      [run] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, second.runId));
      expect(run!.status).toBe('nothing');
      expect(run!.reason).toBe('nothing to run: every target was skipped (3)');
      expect(run!.targets.map((x) => x.skipped)).toEqual([
        expect.stringMatching(/^inside the blackout "sched quiet"/),
        expect.stringMatching(/^inside the blackout "sched quiet"/),
        'herd identity is in maintenance',
      ]);

      // The environment's blackout lifted: the orders targets run, identity's is still skipped.
      await t.db.delete(blackouts);
      const third = await requestRun(t.db, rita, rule.id);
      expect(await fireRequested(quietDeps(), third.runId)).toBe(true);
      [run] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, third.runId));
      expect(run!.status).toBe('started');
      expect(run!.reason).toBe(`operation #${String(run!.operationId)}: 2 targets run, 1 skipped`);
      const targets = await t.db.execute<{ instance_id: number }>(
        sql`SELECT instance_id FROM operation_targets WHERE operation_id = ${run!.operationId}`,
      );
      expect(targets.rows.map((r) => r.instance_id).sort()).toEqual([...orderTargets].sort());
    } finally {
      await t.db.update(herds).set({ automation: 'enabled' }).where(eq(herds.id, identity));
      await t.db.delete(blackouts);
    }
  });

  it('Redis flushed while no worker ran: a starting worker rebuilds the schedulers from the database, runs the fire missed inside the grace once, records the one outside it as missed', async () => {
    await stopAll();
    const target = (await membersOf(await herdId('sched', 'orders'))).slice(2, 3);
    const inGrace = await createRule(
      t.db,
      rita,
      body({ name: 'catch me up', instanceIds: target, schedule: { cron: ['*/5 * * * * *'], timezone: 'UTC' }, graceSeconds: 120 }),
    );
    const tooLate = await createRule(
      t.db,
      rita,
      body({ name: 'too late', instanceIds: target, schedule: { cron: ['*/5 * * * * *'], timezone: 'UTC' }, graceSeconds: 0 }),
    );
    // As if made 30 s ago while no worker ran, and Redis lost everything under this prefix.
    await t.db
      .update(rules)
      .set({ firesFrom: new Date(Date.now() - 30_000) })
      .where(inArray(rules.id, [inGrace.id, tooLate.id]));
    const redis = new IORedis(t.lab.redis!.url);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();

    await startOne();
    const conn = producerConnection(t.lab.redis!.url);
    const q = ruleQueue(conn, prefix);
    try {
      // Both rules fire every 5 s in UTC: one scheduler fires them both.
      const keysNow = (await q.getJobSchedulers(0, -1)).map((s) => s.key);
      expect(keysNow).toContain(groupSchedulerId('UTC|*/5 * * * * *'));
    } finally {
      await q.close();
      conn.disconnect();
    }
    const caught = await waitFor('the catch-up run', async () => (await runsOf(inGrace.id)).find((r) => r.kind === 'catch-up'), WAIT_MS);
    await waitFor(
      'the catch-up decided',
      async () => (await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, caught.id)))[0]!.status !== 'deciding',
      WAIT_MS,
    );
    // Stop before the schedulers fire more, then read what the start did.
    await updateRule(t.db, rita, inGrace.id, body({ name: 'catch me up', instanceIds: target, enabled: false }));
    await updateRule(t.db, rita, tooLate.id, body({ name: 'too late', instanceIds: target, enabled: false }));
    const runs = (await runsOf(inGrace.id)).filter((r) => r.dueAt.getTime() <= caught.dueAt.getTime());
    expect(runs.filter((r) => r.kind === 'catch-up')).toHaveLength(1);
    const [missed] = runs.filter((r) => r.status === 'missed');
    expect(missed!.reason).toMatch(/^missed: \d+ fires up to this one fell while no worker fired them$/);
    expect((await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, caught.id)))[0]!.status).toBe('started');
    const late = await runsOf(tooLate.id);
    expect(late.filter((r) => r.kind === 'catch-up').map((r) => r.status)).toEqual(['missed']);
    expect(late.filter((r) => r.operationId !== null && r.dueAt.getTime() <= caught.dueAt.getTime())).toHaveLength(0);
    await finished((await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, caught.id)))[0]!.operationId!);
  });
});

describe('one-time rules and run now through the workers', () => {
  it('a rule with one time fires once then; run now reaches a worker by its notification alone', async () => {
    if (!workers.length) await startOne();
    const target = (await membersOf(await herdId('sched', 'orders'))).slice(1, 2);
    const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 3000);
    const once = await createRule(t.db, rita, body({ name: 'just once', instanceIds: target, schedule: { at: at.toISOString() } }));
    const fired = await waitFor('the one-time fire', async () => (await runsOf(once.id)).find((r) => r.status !== 'deciding'), WAIT_MS);
    expect(fired).toMatchObject({ kind: 'schedule', status: 'started', fireKey: `at:${String(at.getTime())}` });
    expect(fired.firedAt.getTime()).toBeGreaterThanOrEqual(at.getTime());
    await finished(fired.operationId!);

    // No job added by the caller: the worker hears of the run and takes it.
    const { runId } = await requestRun(t.db, rita, once.id);
    const run = await waitFor(
      'the run taken',
      async () => {
        const [r] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId));
        return r && !['firing', 'deciding'].includes(r.status) ? r : null;
      },
      WAIT_MS,
    );
    expect(run).toMatchObject({ kind: 'manual', status: 'started', requestedBy: 'rita' });
    expect((await finished(run.operationId!)).status).toBe('succeeded');
    // It fired once: by the time the run asked for after its fire has ended, it has those two runs alone.
    expect((await runsOf(once.id)).map((r) => [r.id, r.kind])).toEqual([
      [fired.id, 'schedule'],
      [runId, 'manual'],
    ]);
  });
});

describe('conditions and retries', () => {
  it('a replica whose replay is paused fails a lag condition and is skipped with its measured lag; the retry after the replay resumes runs it', async () => {
    if (!workers.length) await startOne();
    const replica = t.lab.instances.find((x) => x.environment === 'staging' && x.herd === 'orders' && x.role === 'replica')!;
    const primary = t.lab.instances.find((x) => x.environment === 'staging' && x.herd === 'orders' && x.role === 'primary')!;
    const [target] = (
      await t.db.execute<{ id: number }>(
        sql`SELECT i.id FROM instances i JOIN servers s ON s.id = i.server_id WHERE s.hostname = ${replica.server}`,
      )
    ).rows;
    const rule = await createRule(
      t.db,
      rita,
      body({
        name: 'only when caught up',
        instanceIds: [target!.id],
        conditions: [
          { metric: 'lag_seconds', op: '<', value: 1 },
          { metric: 'active_connections', op: '<', value: 50, users: ['nobody-*'] },
        ],
        retry: { afterSeconds: 2, times: 3 },
      }),
    );
    // A commit the replica replays (its last replayed transaction's time), then replay paused.
    await query(primary.dsn, 'CREATE TABLE IF NOT EXISTS rules_lag_probe (n int)');
    const [{ lsn } = { lsn: '' }] = await query<{ lsn: string }>(primary.dsn, 'SELECT pg_current_wal_lsn()::text AS lsn');
    await waitFor(
      'the commit replayed',
      async () => {
        const [r] = await query<{ ok: boolean }>(replica.dsn, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AS ok`);
        return r?.ok;
      },
      WAIT_MS,
    );
    await query(replica.dsn, 'SELECT pg_wal_replay_pause()');
    try {
      // Writes the replica receives and does not replay: it falls behind.
      await query(primary.dsn, 'INSERT INTO rules_lag_probe VALUES (1)');
      await waitFor(
        'the replica behind',
        async () => {
          const [r] = await query<{ behind: boolean }>(
            replica.dsn,
            'SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn() AS behind',
          );
          return r?.behind;
        },
        WAIT_MS,
      );
      // Its last replayed transaction (the commit above) over a second old: the lag the condition measures.
      await waitFor(
        'the replica over a second behind',
        async () => {
          const [r] = await query<{ over: boolean }>(
            replica.dsn,
            "SELECT now() - pg_last_xact_replay_timestamp() > interval '1 second' AS over",
          );
          return r?.over;
        },
        WAIT_MS,
      );
      const { runId } = await requestRun(t.db, rita, rule.id);
      const skipped = await waitFor(
        'the run decided',
        async () => {
          const [r] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId));
          return r && !['firing', 'deciding'].includes(r.status) ? r : null;
        },
        WAIT_MS,
      );
      expect(skipped.status).toBe('nothing');
      expect(skipped.operationId).toBeNull();
      expect(skipped.reason).toMatch(/^nothing to run: no target met the conditions; retry 1 of 3 at \S+ \(run #\d+\)$/);
      const [t0] = skipped.targets;
      expect(t0!.values!.lag_seconds).toBeGreaterThan(1);
      expect(t0!.values!['active_connections[nobody-*]']).toBe(0);
      expect(t0!.skipped).toMatch(/^conditions not met: replay lag \(s\) is [\d.]+, not < 1$/);
    } finally {
      await query(replica.dsn, 'SELECT pg_wal_replay_resume()');
      await query(primary.dsn, 'DROP TABLE IF EXISTS rules_lag_probe');
    }
    // The retry, once the replica caught up: it runs, on that target.
    const retried = await waitFor(
      'a retry that ran',
      async () => (await runsOf(rule.id)).find((r) => r.kind === 'retry' && r.status === 'started'),
      30_000,
    );
    expect(retried.targets.map((x) => x.id)).toEqual([target!.id]);
    expect(retried.targets[0]!.values!.lag_seconds).toBeLessThan(1);
    expect((await finished(retried.operationId!)).status).toBe('succeeded');
    // Earlier retries, if the replica had not caught up yet when one came, are listed in order.
    const retries = (await runsOf(rule.id)).filter((r) => r.kind === 'retry');
    expect(retries.map((r) => r.attempt)).toEqual(retries.map((_, k) => k + 1));
  });

  it("a rule's operation that fails has its failed targets fired again after the retry delay, which runs them once they answer", async () => {
    if (!workers.length) await startOne();
    const [target] = (await membersOf(await herdId('sched', 'orders'))).slice(0, 1);
    const [row] = await t.db.select({ port: instances.port }).from(instances).where(eq(instances.id, target!));
    const rule = await createRule(t.db, rita, body({ name: 'try again', instanceIds: [target!], retry: { afterSeconds: 3, times: 2 } }));
    // Where pgherd looks for it, nothing answers: the reload's first step fails.
    await t.db.update(instances).set({ port: 1 }).where(eq(instances.id, target!));
    let firstRun: number;
    try {
      const { runId } = await requestRun(t.db, rita, rule.id);
      firstRun = runId;
      const first = await waitFor(
        'the run started',
        async () => {
          const [r] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId));
          return r?.status === 'started' ? r : null;
        },
        WAIT_MS,
      );
      expect((await finished(first.operationId!)).status).toBe('failed');
    } finally {
      await t.db.update(instances).set({ port: row!.port }).where(eq(instances.id, target!));
    }
    const retry = await waitFor(
      'the retry ran',
      async () => (await runsOf(rule.id)).find((r) => r.kind === 'retry' && r.status === 'started'),
      30_000,
    );
    expect(retry).toMatchObject({ attempt: 1, retryOf: firstRun });
    expect(retry.targets.map((x) => x.id)).toEqual([target]);
    expect((await finished(retry.operationId!)).status).toBe('succeeded');
    const [first] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, firstRun));
    expect(first!.reason).toMatch(/; failed targets: retry 1 of 2 at \S+ \(run #\d+\)$/);
    // Once, however often the operation's end is heard of.
    expect((await runsOf(rule.id)).filter((r) => r.kind === 'retry')).toHaveLength(1);
  });

  it('two fires of one rule decided at the same moment start one operation; the other is skipped as an overlap', async () => {
    // No worker: the two decisions are this test's own, side by side.
    await stopAll();
    const [target] = (await membersOf(await herdId('sched', 'orders'))).slice(1, 2);
    const rule = await createRule(t.db, rita, body({ name: 'double click', instanceIds: [target!] }));
    const a = await requestRun(t.db, rita, rule.id);
    const b = await requestRun(t.db, rita, rule.id);
    await Promise.all([fireRequested(quietDeps(), a.runId), fireRequested(quietDeps(), b.runId)]);
    const runs = await t.db
      .select()
      .from(ruleRuns)
      .where(inArray(ruleRuns.id, [a.runId, b.runId]));
    expect(runs.map((r) => r.status).sort()).toEqual(['skipped', 'started']);
    expect(runs.find((r) => r.status === 'skipped')!.reason).toMatch(/^overlap: /);
    const open = await t.db
      .select({ id: operations.id })
      .from(operations)
      .where(and(eq(operations.ruleId, rule.id), isNull(operations.finishedAt)));
    expect(open).toHaveLength(1);
  });

  it('a run still being decided is never closed, however long it takes; a silent one is; an operation another requester made with its key is not taken for its', async () => {
    await stopAll();
    const rule = await createRule(
      t.db,
      rita,
      body({ name: 'slow decider', instanceIds: (await membersOf(await herdId('sched', 'orders'))).slice(0, 1) }),
    );
    const old = new Date(Date.now() - 3_600_000);
    const insertRun = async (key: string) =>
      (
        await t.db
          .insert(ruleRuns)
          .values({ ruleId: rule.id, kind: 'manual', fireKey: key, dueAt: old, firedAt: old, status: 'deciding' })
          .returning()
      )[0]!;
    const beating = await insertRun('manual:beating');
    const silent = await insertRun('manual:silent');
    // Someone who knows the key format makes an operation with the silent run's key, as themselves.
    const [mallory] = await t.db.insert(users).values({ username: 'mallory', source: 'local' }).returning();
    const [forged] = await t.db
      .insert(operations)
      .values({
        action: 'reload',
        params: { instanceIds: [] },
        status: 'succeeded',
        planDigest: 'x',
        requestedBy: mallory!.id,
        requestedByName: 'mallory',
        idempotencyKey: `rule-run-${silent.id}`,
        finishedAt: new Date(),
      })
      .returning();
    process.env.PGHERD_RULE_HEARTBEAT_MS = '50';
    const q = ruleQueue(producerConnection(t.lab.redis!.url), prefix);
    try {
      // The decider of `beating` is at work (an hour already), saying so every 50 ms.
      await withHeartbeat(t.db, [beating.id], async () => {
        await waitFor(
          "the decider's heartbeat",
          async () => (await t.db.select({ at: ruleRuns.heartbeatAt }).from(ruleRuns).where(eq(ruleRuns.id, beating.id)))[0]?.at,
          WAIT_MS,
        );
        await reconcileRuns(t.db, q);
      });
    } finally {
      delete process.env.PGHERD_RULE_HEARTBEAT_MS;
      await q.close();
    }
    const [b] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, beating.id));
    const [s] = await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, silent.id));
    expect(b!.status).toBe('deciding');
    expect(b!.heartbeatAt!.getTime()).toBeGreaterThan(Date.now() - 5000);
    expect(s!.status).toBe('error');
    expect(s!.reason).toMatch(/went silent before it made an operation/);
    expect(s!.operationId).toBeNull();
    expect(forged!.ruleId).toBeNull();
  });
});
