// Fires decided together (the path a fleet's thousands of rules due in the same second take): every
// rule sharing a cron expression and time zone is one fire group, recorded and decided in one batch,
// and each run still gets its own outcome: an operation, a refusal, a skip, an error. No worker runs
// here: the operations stay queued, which is what the overlap checks then see.
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditEntries,
  blackouts,
  environments,
  herds,
  instances,
  operations,
  operationTargets,
  roleBindings,
  ruleRuns,
  rules,
  servers,
  users,
} from '@/db/schema';
import { loadAccess } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { fireDue, fireGroup } from './fire';
import { ruleBody } from './rule-body';
import { createRule, updateRule } from './rules';
import type { Actor } from '@/lib/engine/access';

let t: TestDb;
let root: Actor;
let otto: Actor;
let staging: number;
let targets: number[];
const GROUP = 'UTC|0 3 * * *';
const deps = () => ({ db: t.db, queue: null, log: () => {} });
const body = (b: Record<string, unknown>) =>
  ruleBody.parse({ schedule: { cron: ['0  3 * * *'], timezone: 'UTC' }, action: 'reload', ...b });
const runsOf = (ids: number[]) => t.db.select().from(ruleRuns).where(inArray(ruleRuns.ruleId, ids)).orderBy(asc(ruleRuns.id));

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  const [r] = await t.db.insert(users).values({ username: 'root', source: 'local', isSuperuser: true }).returning();
  const [o] = await t.db.insert(users).values({ username: 'otto', source: 'local' }).returning();
  root = { id: r!.id, username: 'root', access: await loadAccess(t.db, r!.id) };
  staging = (await t.db.select().from(environments).where(eq(environments.name, 'staging')))[0]!.id;
  await t.db.insert(roleBindings).values({ role: 'operator', subjectType: 'user', subject: 'otto', environmentId: staging });
  otto = { id: o!.id, username: 'otto', access: await loadAccess(t.db, o!.id) };
  targets = (
    await t.db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(herds, eq(herds.id, instances.herdId))
      .where(eq(herds.environmentId, staging))
      .orderBy(asc(instances.id))
  ).map((x) => x.id);
});
afterAll(async () => {
  await ifAssigned(t)?.close();
});

describe('a fire group', () => {
  it('decides each of its rules on its own in one batch, records each due time once, and follows the rules table', async () => {
    // a and b in one herd, c in another (its herd blacked out below).
    const herdOf = new Map((await t.db.select({ id: instances.id, h: instances.herdId }).from(instances)).map((r) => [r.id, r.h]));
    const [a, b] = targets;
    const c = targets.find((x) => herdOf.get(x) !== herdOf.get(a!))!;
    expect(herdOf.get(b!)).toBe(herdOf.get(a!));
    const plain = await createRule(t.db, root, body({ name: 'plain', instanceIds: [a] }));
    const lost = await createRule(t.db, otto, body({ name: 'lost role', instanceIds: [b] }));
    const dark = await createRule(t.db, root, body({ name: 'dark herd', instanceIds: [c] }));
    const broken = await createRule(t.db, root, body({ name: 'broken', instanceIds: [a] }));
    const leaving = await createRule(t.db, root, body({ name: 'leaving', instanceIds: [b] }));
    const ids = [plain.id, lost.id, dark.id, broken.id, leaving.id];
    // The expressions were written with two spaces: one group all the same.
    expect((await t.db.select({ g: rules.fireGroups }).from(rules).where(inArray(rules.id, ids))).map((r) => r.g)).toEqual(
      ids.map(() => [GROUP]),
    );
    // otto keeps his role in production (he holds it somewhere) and loses it where his target is.
    const production = (await t.db.select().from(environments).where(eq(environments.name, 'production')))[0]!.id;
    await t.db.insert(roleBindings).values({ role: 'operator', subjectType: 'user', subject: 'otto', environmentId: production });
    await t.db.delete(roleBindings).where(and(eq(roleBindings.subject, 'otto'), eq(roleBindings.environmentId, staging)));
    const herdOfC = herdOf.get(c)!;
    const now = new Date();
    await t.db.insert(blackouts).values({
      name: 'freeze',
      herdId: herdOfC,
      startsAt: new Date(now.getTime() - 60_000),
      endsAt: new Date(now.getTime() + 3_600_000),
      createdBy: 'root',
    });
    await t.db.update(rules).set({ action: 'no-such-action' }).where(eq(rules.id, broken.id));

    const due = new Date(Math.ceil(now.getTime() / 1000) * 1000 + 1000);
    // Three workers hear of the same due time at once: each rule's due time is one run.
    const fired = await Promise.all([1, 2, 3].map(() => fireGroup(deps(), GROUP, due, 5000, due)));
    expect(fired.flat()).toHaveLength(5);
    const runs = await runsOf(ids);
    const of = (id: number) => runs.find((r) => r.ruleId === id)!;
    expect(of(plain.id)).toMatchObject({ status: 'started', kind: 'schedule', fireKey: `at:${due.getTime()}` });
    expect(of(plain.id).decidedAt).not.toBeNull();
    expect(of(leaving.id).status).toBe('started');
    expect(of(lost.id).status).toBe('refused');
    expect(of(lost.id).reason).toMatch(/^refused: Reload configuration needs the operator role in staging/);
    expect(of(dark.id)).toMatchObject({ status: 'nothing' });
    expect(of(dark.id).targets).toEqual([
      expect.objectContaining({ id: c, skipped: expect.stringMatching(/^inside the blackout "freeze"/) }),
    ]);
    expect(of(broken.id)).toMatchObject({ status: 'error', reason: 'the action no-such-action is not one this pgherd knows' });
    // Each started run has its own operation, requested by its rule, on its own target, audited.
    for (const [rule, target] of [
      [plain, a],
      [leaving, b],
    ] as const) {
      const [op] = await t.db
        .select()
        .from(operations)
        .where(eq(operations.id, of(rule.id).operationId!));
      expect(op).toMatchObject({
        ruleId: rule.id,
        requestedByName: `rule: ${rule.name}`,
        status: 'queued',
        idempotencyKey: `rule-run-${of(rule.id).id}`,
      });
      expect((await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, op!.id))).map((x) => x.instanceId)).toEqual(
        [target],
      );
      const audited = await t.db
        .select()
        .from(auditEntries)
        .where(and(eq(auditEntries.action, 'operation.reload'), eq(auditEntries.username, `rule: ${rule.name}`)));
      expect(audited.map((e) => e.objectType).sort()).toEqual(['instances', 'operations']);
    }
    expect(await t.db.$count(auditEntries, and(eq(auditEntries.action, 'rule.refused'), eq(auditEntries.objectId, String(lost.id))))).toBe(
      1,
    );

    // An older due time arriving late fires nothing; so does the same one again.
    expect(await fireGroup(deps(), GROUP, new Date(due.getTime() - 86_400_000), 5000, due)).toEqual([]);
    expect(await fireDue(deps(), plain.id, null, due, 'schedule', 5000, due)).toBeNull();

    // A rule moved to another schedule is no longer in the group's fires, even one its job was made for.
    await updateRule(
      t.db,
      root,
      leaving.id,
      body({ name: 'leaving', instanceIds: [b], schedule: { cron: ['0 4 * * *'], timezone: 'UTC' } }),
    );
    const next = new Date(due.getTime() + 60_000);
    await fireGroup(deps(), GROUP, next, 5000, next);
    expect(await fireDue(deps(), leaving.id, null, next, 'schedule', 5000, next)).not.toBeNull(); // its own fire, as a catch-up would
    const again = (await runsOf(ids)).filter((r) => r.dueAt.getTime() === next.getTime());
    // plain's operation is still queued (no worker here): its next run is an overlap, not a second operation.
    expect(again.find((r) => r.ruleId === plain.id)).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^overlap: /) });
    expect(again.filter((r) => r.ruleId === leaving.id)).toHaveLength(1);
  });

  it("keeps each rule's trouble its own: a stored condition that no longer reads and an owner left with no role fail alone", async () => {
    await t.db.delete(blackouts);
    const group = 'UTC|15 1 * * *';
    const sched = { schedule: { cron: ['15 1 * * *'], timezone: 'UTC' } };
    const [f] = await t.db.insert(users).values({ username: 'fay', source: 'local' }).returning();
    await t.db.insert(roleBindings).values({ role: 'operator', subjectType: 'user', subject: 'fay', environmentId: staging });
    const fay: Actor = { id: f!.id, username: 'fay', access: await loadAccess(t.db, f!.id) };
    const before = await createRule(t.db, root, body({ name: 'iso before', instanceIds: [targets[0]], ...sched }));
    const garbled = await createRule(
      t.db,
      root,
      body({ name: 'iso garbled', instanceIds: [targets[1]], conditions: [{ metric: 'lag_seconds', op: '<', value: 5 }], ...sched }),
    );
    const orphan = await createRule(t.db, fay, body({ name: 'iso orphan', filter: `environment=${String(staging)}`, ...sched }));
    const after = await createRule(t.db, root, body({ name: 'iso after', instanceIds: [targets[2]], ...sched }));
    // A condition written by hand that no schema reads; fay's only role taken away after she made her rule.
    await t.db
      .update(rules)
      .set({ conditions: [{ metric: 'moon_phase', op: '~', value: 'full' }] })
      .where(eq(rules.id, garbled.id));
    await t.db.delete(roleBindings).where(eq(roleBindings.subject, 'fay'));

    const due = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000);
    expect(await fireGroup(deps(), group, due, 5000, due)).toHaveLength(4);
    const runs = await runsOf([before.id, garbled.id, orphan.id, after.id]);
    const of = (id: number) => runs.find((r) => r.ruleId === id)!;
    expect(of(before.id).status).toBe('started');
    expect(of(after.id).status).toBe('started');
    expect(of(garbled.id)).toMatchObject({ status: 'error', reason: expect.stringMatching(/^pgherd could not fire it: /) });
    expect(of(garbled.id).operationId).toBeNull();
    // Not "nothing to run" (the filter matches nothing she may see): refused, with the reason, audited.
    expect(of(orphan.id)).toMatchObject({
      status: 'refused',
      reason: 'refused: Reload configuration needs the operator role: its owner fay holds it nowhere now',
    });
    const [audit] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.action, 'rule.refused'), eq(auditEntries.objectId, String(orphan.id))));
    expect(audit).toMatchObject({ username: 'rule: iso orphan', objectLabel: 'iso orphan' });
  });

  it("a load average condition reads the host's last agent report: met, not met with the value, unknown when the report is old", async () => {
    await t.db.delete(blackouts);
    const group = 'UTC|45 1 * * *';
    const [x, y, z, w] = targets.slice(3, 7);
    const serverOf = async (id: number) => (await t.db.select({ s: instances.serverId }).from(instances).where(eq(instances.id, id)))[0]!.s;
    const now = new Date();
    await t.db
      .update(servers)
      .set({ loadAverage: 0.4, loadAverageAt: now, agentIntervalSeconds: 60 })
      .where(eq(servers.id, await serverOf(x!)));
    await t.db
      .update(servers)
      .set({ loadAverage: 7.25, loadAverageAt: now, agentIntervalSeconds: 60 })
      .where(eq(servers.id, await serverOf(y!)));
    // z's agent last spoke ten minutes ago (three intervals of 60 s, five minutes at least, is the limit).
    await t.db
      .update(servers)
      .set({ loadAverage: 0.1, loadAverageAt: new Date(now.getTime() - 600_000), agentIntervalSeconds: 60 })
      .where(eq(servers.id, await serverOf(z!)));
    // w's agent claims to report once a day and last did 20 minutes ago: a load is never taken for now after 15.
    await t.db
      .update(servers)
      .set({ loadAverage: 0.1, loadAverageAt: new Date(now.getTime() - 1_200_000), agentIntervalSeconds: 86_400 })
      .where(eq(servers.id, await serverOf(w!)));
    const rule = await createRule(
      t.db,
      root,
      body({
        name: 'idle hosts only',
        instanceIds: [x, y, z, w],
        conditions: [{ metric: 'load_average', op: '<', value: 2 }],
        schedule: { cron: ['45 1 * * *'], timezone: 'UTC' },
      }),
    );
    const due = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000);
    await fireGroup(deps(), group, due, 5000, due);
    const [run] = await runsOf([rule.id]);
    expect(run!.status, run!.reason ?? '').toBe('started');
    const byId = new Map(run!.targets.map((t) => [t.id, t]));
    expect(byId.get(x!)!.skipped).toBeUndefined();
    expect(byId.get(y!)).toMatchObject({
      skipped: expect.stringContaining("the host's 1-minute load average (its agent's last report) is 7.25, not < 2"),
      values: { load_average: 7.25 },
    });
    expect(byId.get(z!)).toMatchObject({ skipped: expect.stringContaining('is unknown'), values: { load_average: null } });
    expect(byId.get(w!)).toMatchObject({ skipped: expect.stringContaining('is unknown'), values: { load_average: null } });
  });

  it('600 rules due at once (two chunks): 600 runs, each with its own operation, target and audit entries', async () => {
    const N = 600;
    await t.db.delete(blackouts); // the first test's, over one of these targets' herd
    const group = 'UTC|30 2 * * *';
    await t.db.execute(sql`
      INSERT INTO rules (name, owner_id, owner_name, action, scope, schedule, fire_groups, confirmed_environments)
      SELECT 'many-' || g, ${root.id}, 'root', 'reload', jsonb_build_object('instanceIds', jsonb_build_array((${sql.param(targets)}::int[])[1 + g % ${targets.length}])),
             '{"cron": ["30 2 * * *"], "timezone": "UTC"}'::jsonb, ARRAY[${group}], ARRAY[${staging}::int]
      FROM generate_series(1, ${N}::int) g`);
    const ids = (
      await t.db
        .select({ id: rules.id })
        .from(rules)
        .where(sql`${rules.name} LIKE 'many-%'`)
    ).map((r) => r.id);
    const due = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000);
    const made = await fireGroup(deps(), group, due, 5000, due);
    expect(made).toHaveLength(N);
    const runs = await runsOf(ids);
    expect(runs.map((r) => r.status)).toEqual(ids.map(() => 'started'));
    const opIds = runs.map((r) => r.operationId!);
    expect(new Set(opIds).size).toBe(N);
    expect(await t.db.$count(operationTargets, inArray(operationTargets.operationId, opIds))).toBe(N);
    expect(
      await t.db.$count(auditEntries, sql`${auditEntries.username} LIKE 'rule: many-%' AND ${auditEntries.action} = 'operation.reload'`),
    ).toBe(2 * N);
    // Each operation on the target its rule names.
    const pairs = await t.db.execute<{ ok: boolean }>(sql`
      SELECT bool_and((r.scope->'instanceIds'->>0)::int = ot.instance_id AND o.rule_id = r.id) AS ok
      FROM rule_runs rr JOIN rules r ON r.id = rr.rule_id JOIN operations o ON o.id = rr.operation_id JOIN operation_targets ot ON ot.operation_id = o.id
      WHERE r.id = ANY(${sql.param(ids)}::int[])`);
    expect(pairs.rows[0]!.ok).toBe(true);
  });
});
