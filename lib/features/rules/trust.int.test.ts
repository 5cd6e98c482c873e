// What a rule may carry to a later fire: no attestation and no unschedulable action (a DR failover, an
// upgrade's cut-over, roll back and cleanup, Tear down: refused when saved and again when it fires), no environment nobody confirmed, nothing pending from before it was saved
// or disabled, and no webhook its new owner did not keep.
import { and, asc, eq, inArray, ne, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blackouts,
  environments,
  herds,
  instances,
  operations,
  operationTargets,
  ruleRuns,
  rules,
  servers,
  users,
  webhookDeliveries,
} from '@/db/schema';
import { loadAccess } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { fireDue, fireRequested } from './fire';
import { ruleBody } from './rule-body';
import { createRule, requestRun, RuleError, setRuleEnabled, updateRule } from './rules';
import type { Actor } from '@/lib/engine/access';
import { createWebhook, keepWebhook, processEvents, webhookBody } from './webhooks';

let t: TestDb;
let root: Actor;
let env: { staging: number; production: number };
const deps = () => ({ db: t.db, queue: null, log: () => {} });
const body = (b: Record<string, unknown>) => ruleBody.parse({ schedule: { cron: ['0 3 * * *'], timezone: 'UTC' }, action: 'reload', ...b });
const runOf = async (id: number | null) => (await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, id!)))[0]!;
const fireNow = (ruleId: number) => {
  const now = new Date();
  return fireDue(deps(), ruleId, null, now, 'schedule', 60_000, now);
};
const replicaIn = async (environmentId: number, offset = 0) =>
  (
    await t.db
      .select({ id: instances.id })
      .from(instances)
      .where(and(eq(instances.environmentId, environmentId), eq(instances.role, 'replica')))
      .orderBy(asc(instances.id))
      .offset(offset)
      .limit(1)
  )[0]!.id;

/** An instance's server moved to a site of this test's own (an instance's site is its server's). */
const moveToSite = async (instanceId: number) => {
  const [i] = await t.db.select({ serverId: instances.serverId }).from(instances).where(eq(instances.id, instanceId));
  await t.db.update(servers).set({ site: 'trust-test' }).where(eq(servers.id, i!.serverId));
};

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  const [r] = await t.db.insert(users).values({ username: 'root', source: 'local', isSuperuser: true }).returning();
  root = { id: r!.id, username: 'root', access: await loadAccess(t.db, r!.id) };
  const envs = new Map((await t.db.select().from(environments)).map((e) => [e.name, e.id]));
  env = { staging: envs.get('staging')!, production: envs.get('production')! };
});
afterAll(async () => ifAssigned(t)?.close());

describe('a rule replays no attestation', () => {
  it('refuses a DR failover saying fencedByOperator when saved, and such a stored rule again when it fires', async () => {
    const [herd] = await t.db.select({ id: herds.id }).from(herds).where(eq(herds.environmentId, env.staging)).limit(1);
    const err = await createRule(
      t.db,
      root,
      body({ name: 'nightly failover', action: 'dr-failover', herdIds: [herd!.id], params: { fencedByOperator: true } }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuleError);
    expect((err as RuleError).details).toEqual([
      { path: 'action', message: 'DR failover cannot be scheduled: a person decides it at the moment, on the console' },
      { path: 'params.fencedByOperator', message: expect.stringMatching(/^fencedByOperator is a person's attestation/) },
    ]);
    expect(await t.db.$count(rules, eq(rules.name, 'nightly failover'))).toBe(0);
    // A row that got past the save (written by hand): its fire is refused, nothing planned.
    const rule = await createRule(
      t.db,
      root,
      body({ name: 'became a failover', herdIds: undefined, instanceIds: [await replicaIn(env.staging)] }),
    );
    await t.db
      .update(rules)
      .set({ action: 'dr-failover', params: { fencedByOperator: true }, scope: { herdIds: [herd!.id] } })
      .where(eq(rules.id, rule.id));
    const run = await runOf(await fireNow(rule.id));
    expect(run.status).toBe('refused');
    expect(run.reason).toMatch(/^refused: DR failover cannot be scheduled.*; fencedByOperator is a person's attestation/);
    expect(await t.db.$count(operations, eq(operations.ruleId, rule.id))).toBe(0);
  });

  it('asks for the typed confirmation a plan needs, and skips targets in an environment it was not confirmed for', async () => {
    const prod = await replicaIn(env.production);
    await expect(createRule(t.db, root, body({ name: 'prod reload', instanceIds: [prod] }))).rejects.toMatchObject({
      status: 400,
      details: [{ path: 'confirmation', message: expect.stringMatching(/^its plan runs on 1 target in production: type "production"/) }],
    });
    const typed = await createRule(t.db, root, body({ name: 'prod reload', instanceIds: [prod], confirmation: 'production' }));
    expect(typed.confirmedEnvironments).toEqual([env.production]);
    // A filter that matches one staging replica when saved (nothing to type), and a production one later.
    const stg = await replicaIn(env.staging);
    await moveToSite(stg);
    const rule = await createRule(t.db, root, body({ name: 'by site', filter: 'site=trust-test' }));
    expect(rule.confirmedEnvironments).toEqual([env.staging]);
    const later = await replicaIn(env.production, 1);
    await moveToSite(later);
    const run = await runOf(await fireNow(rule.id));
    expect(run.status).toBe('started');
    const byId = new Map(run.targets.map((x) => [x.id, x]));
    expect(byId.get(stg)?.skipped).toBeUndefined();
    expect(byId.get(later)?.skipped).toBe(
      'not confirmed in production: the rule was saved for staging; save it again, with its confirmation, to run there',
    );
    const planned = await t.db
      .select({ id: operationTargets.instanceId })
      .from(operationTargets)
      .where(eq(operationTargets.operationId, run.operationId!));
    expect(planned.map((x) => x.id)).toEqual([stg]);
  });
});

describe('a person\u2019s decisions stay a person\u2019s', () => {
  const decisions = [
    ['upgrade-cutover', 'Cut over to the upgraded herd'],
    ['upgrade-rollback', 'Roll back to the herd before the upgrade'],
    ['upgrade-cleanup', 'Clean up a major upgrade'],
    ['tear-down-restored', 'Tear down a restored herd'],
  ] as const;

  it.each(decisions)('%s: refused when a rule is saved with it, and when a stored rule with it fires', async (action, label) => {
    const [herd] = await t.db.select({ id: herds.id }).from(herds).where(eq(herds.environmentId, env.staging)).limit(1);
    const name = `scheduled ${action}`;
    const err = await createRule(t.db, root, body({ name, action, herdIds: [herd!.id] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuleError);
    expect((err as RuleError).status).toBe(400);
    expect((err as RuleError).details).toEqual([
      { path: 'action', message: `${label} cannot be scheduled: a person decides it at the moment, on the console` },
    ]);
    expect(await t.db.$count(rules, eq(rules.name, name))).toBe(0);
    // A row that got past the save (written by hand, or saved before the action was a person's): refused at its fire.
    const rule = await createRule(t.db, root, body({ name: `became ${action}`, instanceIds: [await replicaIn(env.staging)] }));
    await t.db
      .update(rules)
      .set({ action, params: {}, scope: { herdIds: [herd!.id] } })
      .where(eq(rules.id, rule.id));
    const run = await runOf(await fireNow(rule.id));
    expect(run.status).toBe('refused');
    expect(run.reason).toBe(`refused: ${label} cannot be scheduled: a person decides it at the moment, on the console`);
    expect(await t.db.$count(operations, eq(operations.ruleId, rule.id))).toBe(0);
  });
});

describe('a saved or disabled rule cancels what it had pending', () => {
  it('a retry pending when its rule is disabled is refused as stale when it comes, and so is a run now asked before a save', async () => {
    const stg = await replicaIn(env.staging, 1);
    const rule = await createRule(
      t.db,
      root,
      body({
        name: 'waits for lag',
        instanceIds: [stg],
        conditions: [{ metric: 'lag_seconds', op: '>', value: 1_000_000 }],
        retry: { afterSeconds: 600, times: 2 },
      }),
    );
    const first = await runOf(await fireNow(rule.id));
    expect(first.status).toBe('nothing');
    const [retry] = await t.db
      .select()
      .from(ruleRuns)
      .where(and(eq(ruleRuns.ruleId, rule.id), eq(ruleRuns.kind, 'retry')));
    expect(retry).toMatchObject({ status: 'firing', ruleVersion: rule.version });
    expect(await setRuleEnabled(t.db, root, rule.id, false)).toBe(true);
    // What the worker does when the retry's job comes due.
    expect(await fireRequested(deps(), retry!.id)).toBe(true);
    const refused = await runOf(retry!.id);
    expect(refused.status).toBe('refused');
    expect(refused.reason).toBe(
      `refused: stale: the rule was saved or disabled since this retry was asked for (version ${String(rule.version)}, now ${String(rule.version + 1)}); nothing was run`,
    );
    expect(await t.db.$count(operations, eq(operations.ruleId, rule.id))).toBe(0);
    // Run now, then a save before a worker took it: refused the same way.
    await setRuleEnabled(t.db, root, rule.id, true);
    const { runId } = await requestRun(t.db, root, rule.id);
    await updateRule(t.db, root, rule.id, body({ name: 'waits for lag', instanceIds: [stg] }));
    await fireRequested(deps(), runId);
    expect(await runOf(runId)).toMatchObject({
      status: 'refused',
      reason: expect.stringMatching(/^refused: stale: .* this run was asked for/),
    });
    expect(await t.db.$count(operations, eq(operations.ruleId, rule.id))).toBe(0);
  });
});

describe("a rule's webhooks follow its owner", () => {
  it('stop when the rule changes owner, until the new owner keeps them', async () => {
    const [o] = await t.db.insert(users).values({ username: 'olga', source: 'local' }).returning();
    await t.db.execute(sql`INSERT INTO role_bindings (role, subject_type, subject) VALUES ('operator', 'user', 'olga')`);
    const olga: Actor = { id: o!.id, username: 'olga', access: await loadAccess(t.db, o!.id) };
    const rule = await createRule(t.db, olga, body({ name: 'olga nightly', instanceIds: [await replicaIn(env.staging, 2)] }));
    const events = ['rule.run.skipped'];
    const hook = await createWebhook(
      t.db,
      olga,
      webhookBody.parse({ name: 'olga pager', url: 'http://127.0.0.1:9/olga', ruleId: rule.id, events }),
    );
    // A global webhook hears every run: its delivery proves the event was handed out.
    const all = await createWebhook(t.db, root, webhookBody.parse({ name: 'everyone', url: 'http://127.0.0.1:9/all', events }));
    const [freeze] = await t.db
      .insert(blackouts)
      .values({ name: 'freeze', startsAt: new Date(Date.now() - 60_000), endsAt: new Date(Date.now() + 3_600_000) })
      .returning();
    const fireAndTell = async () => {
      expect((await runOf(await fireNow(rule.id))).status).toBe('skipped');
      while ((await processEvents(t.db)) > 0);
    };
    const count = (id: number) => t.db.$count(webhookDeliveries, eq(webhookDeliveries.webhookId, id));
    // The runs of the tests before are told first (to the global webhook), so that each fire below is one event.
    while ((await processEvents(t.db)) > 0);
    await t.db.delete(webhookDeliveries);
    try {
      await fireAndTell();
      expect([await count(hook.id), await count(all.id)]).toEqual([1, 1]);
      await updateRule(t.db, root, rule.id, body({ name: 'olga nightly', instanceIds: [await replicaIn(env.staging, 2)] }));
      await fireAndTell();
      expect([await count(hook.id), await count(all.id)]).toEqual([1, 2]);
      // Olga no longer owns the rule: she cannot keep it; its new owner can.
      await expect(keepWebhook(t.db, olga, hook.id)).rejects.toBeInstanceOf(RuleError);
      await keepWebhook(t.db, root, hook.id);
      await fireAndTell();
      expect([await count(hook.id), await count(all.id)]).toEqual([2, 3]);
    } finally {
      await t.db.delete(blackouts).where(eq(blackouts.id, freeze!.id));
    }
    expect(
      await t.db.$count(webhookDeliveries, and(inArray(webhookDeliveries.webhookId, [hook.id]), ne(webhookDeliveries.event, events[0]!))),
    ).toBe(0);
  });
});
