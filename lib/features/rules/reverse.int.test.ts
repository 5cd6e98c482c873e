// A rule's reverse: what it puts back and when, including a target aborted part way, a before read
// backwards, a rule and its reverse running at once, and a reverse turned on alone. The shared lab's
// moto gives the servers their EC2 identity (discovery in this file's own database: read-only calls).
// No worker runs: operations stay queued, and a worker's outcome is written by hand as it would end
// them, so nothing in the shared lab is stopped or resized (resize.int.test.ts runs one for real).
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herds, instances, operations, operationTargets, ruleRuns, rules, users } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import { loadAccess } from '@/lib/engine/access';
import { discoverEc2, discoveryConfig } from '@/lib/features/discovery/discovery';
import { seedLabFleet } from '@/lib/lab/seed';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, type TestDb } from '@/lib/testing/test-db';
import { fireRequested } from './fire';
import { ruleBody } from './rule-body';
import { createRule, requestRun, setRuleEnabled, updateRule } from './rules';
import type { Actor } from '@/lib/engine/access';

let t: TestDb;
let root: Actor;
let replicas: number[];
const deps = () => ({ db: t.db, queue: null, log: () => {} });
const reverse = { schedule: { cron: ['0 7 * * *'], timezone: 'UTC' } };
const sched = { cron: ['0 22 * * *'], timezone: 'UTC' };
const companionOf = async (id: number) => (await t.db.select().from(rules).where(eq(rules.reverseOf, id)))[0]!;
const opOf = async (id: number) => (await t.db.select().from(operations).where(eq(operations.id, id)))[0]!;

async function runNow(id: number) {
  const { runId } = await requestRun(t.db, root, id);
  await fireRequested(deps(), runId);
  return (await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId)))[0]!;
}
/** What a worker writes at the end: the operation and its targets (attempted or not, refused or not). */
async function finish(opId: number, status: 'succeeded' | 'failed' | 'cancelled', o: { attempts?: number; refusal?: string } = {}) {
  await t.db
    .update(operationTargets)
    .set({ status, attempts: o.attempts ?? (status === 'cancelled' ? 0 : 1), refusal: o.refusal ?? null })
    .where(eq(operationTargets.operationId, opId));
  await t.db.update(operations).set({ status, finishedAt: new Date() }).where(eq(operations.id, opId));
}

beforeAll(async () => {
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  const cfg = discoveryConfig({ PGHERD_AWS_DISCOVERY: JSON.stringify({ regions: [t.lab.aws!.region], tags: t.lab.aws!.discoveryTags }) })!;
  await discoverEc2(t.db, cfg, (region) => ec2Client(region));
  const [r] = await t.db.insert(users).values({ username: 'root', source: 'local', isSuperuser: true }).returning();
  root = { id: r!.id, username: 'root', access: await loadAccess(t.db, r!.id) };
  const staging = (await t.db.select().from(environments).where(eq(environments.name, 'staging')))[0]!.id;
  replicas = (
    await t.db
      .select({ id: instances.id })
      .from(instances)
      .innerJoin(herds, eq(herds.id, instances.herdId))
      .where(and(eq(herds.environmentId, staging), eq(instances.role, 'replica')))
      .orderBy(asc(instances.id))
  ).map((x) => x.id);
}, 120_000);
afterAll(async () => {
  await ifAssigned(t)?.close();
});

describe("a rule's reverse", () => {
  it('puts back a target aborted part way, once; neither it nor its rule starts while the other runs; removed and added again, it does not put back twice', async () => {
    const target = replicas[0]!;
    const body = (withReverse: boolean) =>
      ruleBody.parse({
        name: 'bigger',
        action: 'resize',
        params: { instanceType: 'm6i.xlarge' },
        instanceIds: [target],
        schedule: sched,
        ...(withReverse ? { reverse } : {}),
      });
    const rule = await createRule(t.db, root, body(true));
    const c = await companionOf(rule.id);
    const f1 = await runNow(rule.id);
    expect(f1.status, f1.reason ?? '').toBe('started');
    const had = f1.targets[0]!.before!.instanceType!;
    expect(had).not.toBe('m6i.xlarge');
    expect(await runNow(c.id)).toMatchObject({
      status: 'skipped',
      reason: expect.stringMatching(/^overlap: operation #\d+ of the rule it reverses/),
    });
    // Aborted after its first step (attempted: it may have changed): put back.
    await finish(f1.operationId!, 'cancelled', { attempts: 1 });
    const r1 = await runNow(c.id);
    expect(r1.status, r1.reason ?? '').toBe('started');
    expect((await opOf(r1.operationId!)).actionParams).toEqual({ backTo: { [String(target)]: had } });
    // The rule fires while its reverse runs: an overlap, not an operation on a target being put back.
    expect(await runNow(rule.id)).toMatchObject({
      status: 'skipped',
      reason: expect.stringMatching(/^overlap: operation #\d+ of its reverse/),
    });
    await finish(r1.operationId!, 'succeeded');
    expect((await runNow(c.id)).status).toBe('nothing');
    // The reverse removed and given again: a new companion, which puts back only what the rule changes from now on.
    await updateRule(t.db, root, rule.id, body(false));
    await updateRule(t.db, root, rule.id, body(true));
    const c2 = await companionOf(rule.id);
    expect(c2.id).not.toBe(c.id);
    expect(await runNow(c2.id)).toMatchObject({ status: 'nothing' });
  });

  it("reads only its rule's current action, never a before backwards; a target its reverse refused is done with", async () => {
    const target = replicas[1]!;
    const b = (action: string) => ruleBody.parse({ name: 'park', action, instanceIds: [target], schedule: sched, reverse });
    const rule = await createRule(t.db, root, b('power-off'));
    const f1 = await runNow(rule.id);
    expect(f1.targets[0]!.before).toEqual({ state: 'running' });
    await finish(f1.operationId!, 'failed'); // failed part way: the host may be off
    // Changed to power on: its companion now powers off, and must not power off what the power off found running.
    await updateRule(t.db, root, rule.id, b('power-on'));
    const c = await companionOf(rule.id);
    expect(c.action).toBe('power-off');
    expect(await runNow(c.id)).toMatchObject({ status: 'nothing' });
    // Back to power off; its reverse (power on) is refused by its plan (the host runs): done with, not pending for ever.
    await updateRule(t.db, root, rule.id, b('power-off'));
    const c2 = await companionOf(rule.id);
    const f2 = await runNow(rule.id);
    await finish(f2.operationId!, 'failed');
    const r = await runNow(c2.id);
    if (r.status === 'started') await finish(r.operationId!, 'failed', { refusal: 'not-applicable' });
    else expect(r.status).toBe('nothing'); // the plan refused it outright
    expect((await runNow(c2.id)).status).toBe('nothing');
  });

  it('is turned on and off with its rule, never alone', async () => {
    const rule = await createRule(
      t.db,
      root,
      ruleBody.parse({ name: 'toggle', action: 'power-off', instanceIds: [replicas[2]!], schedule: sched, reverse }),
    );
    const c = await companionOf(rule.id);
    await expect(setRuleEnabled(t.db, root, c.id, false)).rejects.toMatchObject({ status: 409 });
    expect(await setRuleEnabled(t.db, root, rule.id, false)).toBe(true);
    expect((await companionOf(rule.id)).enabled).toBe(false);
    expect(await setRuleEnabled(t.db, root, rule.id, true)).toBe(true);
    expect((await companionOf(rule.id)).enabled).toBe(true);
  });
});
