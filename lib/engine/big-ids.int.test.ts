// Ids past 2^31 through the engine and the rules: a fleet whose instances, operations, targets, steps,
// waves and rule runs all have such ids (their sequences moved there before anything was made) runs a
// rolling operation and a rule's run to the end, and what the console reads of them reads back.
import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environments, herdLeases, herds, instances, operationWaves, ruleRuns, users } from '@/db/schema';
import { loadAccess, SYSTEM_ACCESS } from '@/lib/engine/access';
import { seedLabFleet } from '@/lib/lab/seed';
import { fireRequested } from '@/lib/features/rules/fire';
import { ruleBody } from '@/lib/features/rules/rule-body';
import { createRule, requestRun, ruleRunsView } from '@/lib/features/rules/rules';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { submitPlanned, waitForOperation } from '@/lib/testing/operations';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { operationView } from '@/lib/engine/operation-view';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { wavesSchema } from '@/lib/engine/waves';
import { startWorker } from '@/jobs/start-worker';

const BIG = 2 ** 31;
const SEQUENCES = ['instances', 'operations', 'operation_targets', 'operation_steps', 'operation_waves', 'rule_runs'];

let t: TestDb;
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
let producer: ReturnType<typeof producerConnection>;
let queue: ReturnType<typeof targetQueue>;
let stable: { id: number; herdId: number }[] = [];

beforeAll(async () => {
  t = await freshDatabase();
  for (const [k, name] of SEQUENCES.entries()) await t.db.execute(sql`SELECT setval(${`${name}_id_seq`}, ${BIG + k * 1000})`);
  await seedLabFleet(t.db, t.lab);
  // The instances no other test file stops or promotes (a reload is harmless; a restart elsewhere is not).
  stable = (
    await t.db
      .select({ id: instances.id, herdId: instances.herdId, env: environments.name, herd: herds.name })
      .from(instances)
      .innerJoin(herds, eq(herds.id, instances.herdId))
      .innerJoin(environments, eq(environments.id, herds.environmentId))
      .orderBy(asc(instances.id))
  ).filter((i) => !isOpsTestHerd(i.env, i.herd));
  producer = producerConnection(t.lab.redis!.url);
  queue = targetQueue(producer, 'big-ids');
  worker = await startWorker({
    databaseUrl: t.url,
    redisUrl: t.lab.redis!.url,
    sshKeyPath: t.lab.ssh!.privateKeyPath,
    queuePrefix: 'big-ids',
    refreshEveryMs: 0,
    quiet: true,
  });
});
afterAll(async () => {
  await worker?.close();
  await ifAssigned(queue)?.close();
  ifAssigned(producer)?.disconnect();
  await ifAssigned(t)?.close();
});

describe('ids past 2^31', () => {
  it('runs an operation over instances with such ids: its targets, steps, lease and view', async () => {
    expect(stable.length).toBeGreaterThanOrEqual(2);
    expect(stable.every((i) => i.id > BIG)).toBe(true);
    const ids = stable.slice(0, 2).map((i) => i.id);
    const params = {};
    const plan = await planOperation(t.db, SYSTEM_ACCESS, reloadAction, ids, params);
    expect(plan.targets.map((x) => x.instanceId)).toEqual(ids);
    const id = await submitPlanned(t.db, queue, reloadAction, { instanceIds: ids }, params, plan);
    expect(id).toBeGreaterThan(BIG);
    const { op, targets, steps } = await waitForOperation(t.db, id, { timeoutMs: 60_000 });
    expect(op.status).toBe('succeeded');
    expect(targets.map((x) => x.instanceId)).toEqual(ids);
    expect(targets.every((x) => x.id > BIG + 1000 && x.status === 'succeeded')).toBe(true);
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.every((s) => s.id > BIG + 2000 && targets.some((x) => x.id === s.targetId))).toBe(true);
    expect(await t.db.select().from(herdLeases)).toEqual([]);
    const view = await operationView(t.db, id, SYSTEM_ACCESS);
    expect(view?.targets.map((x) => x.id)).toEqual(targets.map((x) => x.id));
  });

  it('runs one in waves past 2^31 too, its gate reading members with such ids', async () => {
    const ids = stable.slice(0, 2).map((i) => i.id);
    const spec = wavesSchema.parse({ size: 1, gate: { soakSeconds: 0 } });
    const plan = await planOperation(t.db, SYSTEM_ACCESS, reloadAction, ids, {}, spec);
    const { id } = await submitOperation(
      t.db,
      queue,
      reloadAction,
      { instanceIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'big-ids-waves', waves: spec },
      { id: null, username: 'big-ids', access: SYSTEM_ACCESS },
    );
    const { op } = await waitForOperation(t.db, id, { timeoutMs: 90_000 });
    expect(op.status).toBe('succeeded');
    const waves = await t.db.select().from(operationWaves).where(eq(operationWaves.operationId, id)).orderBy(asc(operationWaves.wave));
    expect(waves.map((w) => [w.id > BIG + 4000, w.status])).toEqual([
      [true, 'passed'],
      [true, 'ended'],
    ]);
  });

  it('records a rule\u2019s run with such an id, its operation, and pages its runs from it', async () => {
    const [r] = await t.db.insert(users).values({ username: 'big', source: 'local', isSuperuser: true }).returning();
    const owner = { id: r!.id, username: 'big', access: await loadAccess(t.db, r!.id) };
    const plan = await planOperation(t.db, SYSTEM_ACCESS, reloadAction, [stable[0]!.id], {});
    const rule = await createRule(
      t.db,
      owner,
      ruleBody.parse({
        name: 'big',
        action: 'reload',
        instanceIds: [stable[0]!.id],
        schedule: { cron: ['0 3 * * *'], timezone: 'UTC' },
        ...(plan.typeToConfirm ? { confirmation: plan.typeToConfirm } : {}),
      }),
    );
    const { runId } = await requestRun(t.db, owner, rule.id);
    expect(runId).toBeGreaterThan(BIG + 5000);
    // The worker hears of the run too: whichever takes it decides it.
    await fireRequested({ db: t.db, queue, log: () => {} }, runId);
    let run = (await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId)))[0]!;
    for (const deadline = Date.now() + 30_000; run.status === 'firing' || run.status === 'deciding';) {
      if (Date.now() > deadline) throw new Error(`run ${runId} still ${run.status}`);
      await new Promise((res) => setTimeout(res, 50));
      run = (await t.db.select().from(ruleRuns).where(eq(ruleRuns.id, runId)))[0]!;
    }
    expect(run.status, run.reason ?? '').toBe('started');
    expect(run.operationId).toBeGreaterThan(BIG);
    expect((await waitForOperation(t.db, run.operationId!, { timeoutMs: 60_000 })).op.status).toBe('succeeded');
    const page = await ruleRunsView(t.db, rule.id, 50, runId + 1);
    expect(page.map((x) => [x.id, x.operationId])).toEqual([[runId, run.operationId]]);
  });
});
