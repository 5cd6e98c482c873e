// Managing rules without firing one that nobody meant: turning one off or on is only that; a schedule
// firing more often than the minimum is refused; a stored schedule that no longer reads fires never and
// harms no other rule.
import { randomBytes } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import IORedis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, instances, rules, users } from '@/db/schema';
import { loadAccess } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { producerConnection } from '@/lib/engine/queue';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { ruleBody } from './rule-body';
import { createRule, deleteRule, getRule, RuleError, ruleView, setRuleEnabled, updateRule } from './rules';
import type { Actor } from '@/lib/engine/access';
import { reconcileSchedulers } from './scheduler';
import { groupSchedulerId, ruleQueue } from './rule-queue';

let t: TestDb;
let root: Actor;
let rita: Actor;
let replica: number;
const prefix = `rules-mgmt-${randomBytes(4).toString('hex')}`;
const body = (b: Record<string, unknown>) =>
  // Its replica is in production: the confirmation the console asks for is given.
  ruleBody.parse({
    schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
    action: 'reload',
    instanceIds: [replica],
    confirmation: 'production',
    ...b,
  });

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  const [r] = await t.db.insert(users).values({ username: 'root', source: 'local', isSuperuser: true }).returning();
  const [u] = await t.db.insert(users).values({ username: 'rita', source: 'local' }).returning();
  root = { id: r!.id, username: 'root', access: await loadAccess(t.db, r!.id) };
  rita = { id: u!.id, username: 'rita', access: await loadAccess(t.db, u!.id) };
  replica = (
    await t.db.select({ id: instances.id }).from(instances).where(eq(instances.role, 'replica')).orderBy(asc(instances.id)).limit(1)
  )[0]!.id;
});
afterAll(async () => {
  const redis = ifAssigned(t) ? new IORedis(t.lab.redis!.url) : null;
  if (redis) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  await ifAssigned(t)?.close();
});

describe('managing rules', () => {
  it('turning a rule off keeps its owner and needs no plan (its targets may be gone); on again starts from now; others may not', async () => {
    const rule = await createRule(t.db, root, body({ name: 'orphan' }));
    // Its only target is gone: a save through the body (PUT) would be refused as naming an unknown instance.
    await t.db
      .update(rules)
      .set({ scope: { instanceIds: [2_000_000_000] } })
      .where(eq(rules.id, rule.id));
    const admin2 = { ...root, id: null, username: 'someone-else' };
    expect(await setRuleEnabled(t.db, admin2, rule.id, false)).toBe(true);
    expect(await setRuleEnabled(t.db, admin2, rule.id, false)).toBe(false); // already off: nothing written
    const off = await getRule(t.db, rule.id);
    expect(off.enabled).toBe(false);
    expect(off.ownerName).toBe('root');
    expect(off.version).toBe(rule.version + 1);
    await expect(setRuleEnabled(t.db, rita, rule.id, true)).rejects.toThrow(RuleError); // not hers, no global role
    expect((await getRule(t.db, rule.id)).enabled).toBe(false);
    const before = new Date();
    expect(await setRuleEnabled(t.db, root, rule.id, true)).toBe(true);
    const on = await getRule(t.db, rule.id);
    expect(on.enabled).toBe(true);
    expect(on.firesFrom.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);
    const audit = await t.db
      .select({ action: auditEntries.action, user: auditEntries.username, changes: auditEntries.changes })
      .from(auditEntries)
      .where(and(eq(auditEntries.objectType, 'rules'), eq(auditEntries.objectId, String(rule.id))))
      .orderBy(asc(auditEntries.id));
    expect(audit.map((a) => `${a.action} by ${a.user}`)).toEqual([
      'rule.created by root',
      'rule.disabled by someone-else',
      'rule.enabled by root',
    ]);
    expect(audit[1]!.changes).toEqual({ enabled: [true, false] });
  });

  it('refuses a schedule firing more often than the minimum, with the shortest gap; the lab allows its fast ones', async () => {
    process.env.PGHERD_RULE_MIN_INTERVAL_SECONDS = '60';
    try {
      const err = await createRule(t.db, root, body({ name: 'hammer', schedule: { cron: ['*/3 * * * * *'], timezone: 'UTC' } })).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RuleError);
      expect((err as RuleError).details).toEqual([
        { path: 'schedule.cron', message: expect.stringMatching(/^fires 3 s apart .*at least 60 s apart$/) },
      ]);
      expect((await t.db.select().from(rules).where(eq(rules.name, 'hammer'))).length).toBe(0);
      await expect(
        createRule(t.db, root, body({ name: 'every minute', schedule: { cron: ['* * * * *'], timezone: 'UTC' } })),
      ).resolves.toBeTruthy();
    } finally {
      process.env.PGHERD_RULE_MIN_INTERVAL_SECONDS = '1';
    }
    await expect(
      createRule(t.db, root, body({ name: 'lab fast', schedule: { cron: ['*/3 * * * * *'], timezone: 'UTC' } })),
    ).resolves.toBeTruthy();
  });

  it('a stored schedule that no longer reads fires never and says why; the other rules keep their schedulers', async () => {
    const good = await createRule(t.db, root, body({ name: 'good one', schedule: { cron: ['0 4 * * *'], timezone: 'UTC' } }));
    const bad = await createRule(t.db, root, body({ name: 'bad one' }));
    await t.db
      .update(rules)
      .set({ schedule: { cron: ['0 3 * * *'], timezone: 'Mars/Olympus_Mons' }, fireGroups: ['Mars/Olympus_Mons|0 3 * * *'] })
      .where(eq(rules.id, bad.id));
    const conn = producerConnection(t.lab.redis!.url);
    const q = ruleQueue(conn, prefix);
    try {
      await reconcileSchedulers(t.db, q);
      const keys = (await q.getJobSchedulers(0, -1)).map((s) => s.key);
      expect(keys).toContain(groupSchedulerId('UTC|0 4 * * *'));
      expect(keys).not.toContain(groupSchedulerId('Mars/Olympus_Mons|0 3 * * *'));
    } finally {
      await q.close();
      conn.disconnect();
    }
    const view = await ruleView(t.db, await getRule(t.db, bad.id));
    expect(view.nextFires).toEqual([]);
    expect(view.problem).toMatch(/^its stored schedule does not read: .*time zone/);
    expect((await ruleView(t.db, await getRule(t.db, good.id))).problem).toBeNull();
    const n = await t.db.execute<{ n: number }>(sql`SELECT count(*)::int AS n FROM rules`);
    expect(n.rows[0]!.n).toBeGreaterThanOrEqual(2);
  });
  it('a reverse is a companion rule made, changed and deleted with its rule, never on its own; only what can be put back has one', async () => {
    const reverse = { schedule: { cron: ['0 7 * * *'], timezone: 'Europe/Paris' } };
    await expect(createRule(t.db, root, body({ name: 'reload and back', reverse }))).rejects.toMatchObject({
      status: 400,
      details: [
        {
          path: 'reverse',
          message: expect.stringMatching(/^Reload configuration has nothing to put back: a reverse is for resize, power-off, power-on/),
        },
      ],
    });
    const rule = await createRule(t.db, root, body({ name: 'park', action: 'power-off', reverse }));
    const companionOf = async () => (await t.db.select().from(rules).where(eq(rules.reverseOf, rule.id)))[0];
    const c = (await companionOf())!;
    expect(c).toMatchObject({
      name: 'park (reverse)',
      action: 'power-on',
      scope: { reverseOf: rule.id },
      fireGroups: ['Europe/Paris|0 7 * * *'],
      ownerName: 'root',
      enabled: true,
    });
    expect((await ruleView(t.db, rule)).reverseRule).toEqual({ id: c.id, name: 'park (reverse)' });
    expect(await ruleView(t.db, c)).toMatchObject({ reverseOf: rule.id });
    // The companion is changed through its rule only.
    await expect(updateRule(t.db, root, c.id, body({ name: 'park (reverse)', action: 'power-on' }))).rejects.toMatchObject({
      status: 409,
      message: `"park (reverse)" is the reverse of rule #${String(rule.id)}: change that rule's reverse instead`,
    });
    await expect(deleteRule(t.db, root, c.id)).rejects.toMatchObject({ status: 409 });
    // A new reverse schedule moves the companion (same row); none deletes it, audited.
    await updateRule(
      t.db,
      root,
      rule.id,
      body({ name: 'park', action: 'power-off', reverse: { schedule: { cron: ['30 6 * * 1-5'], timezone: 'UTC' } } }),
    );
    const moved = (await companionOf())!;
    expect([moved.id, moved.fireGroups, moved.version]).toEqual([c.id, ['UTC|30 6 * * 1-5'], c.version + 1]);
    await updateRule(t.db, root, rule.id, body({ name: 'park', action: 'power-off' }));
    expect(await companionOf()).toBeUndefined();
    expect(await t.db.$count(auditEntries, and(eq(auditEntries.action, 'rule.deleted'), eq(auditEntries.objectId, String(c.id))))).toBe(1);
    // Deleting the rule deletes its reverse.
    await updateRule(t.db, root, rule.id, body({ name: 'park', action: 'power-off', reverse }));
    const again = (await companionOf())!;
    await deleteRule(t.db, root, rule.id);
    expect(await t.db.$count(rules, eq(rules.id, again.id))).toBe(0);
    // A reverse's name taken by another rule: refused, saying which names.
    await createRule(t.db, root, body({ name: 'nap (reverse)' }));
    await expect(createRule(t.db, root, body({ name: 'nap', action: 'power-off', reverse }))).rejects.toMatchObject({
      status: 409,
      message: 'a rule named "nap" or "nap (reverse)" (its reverse\'s name) exists',
    });
    expect(await t.db.$count(rules, eq(rules.name, 'nap'))).toBe(0);
  });
});
