// The operations engine against the lab: plan -> confirm -> enqueue (BullMQ on the lab's Redis) ->
// execute (workers over SSH) -> observe, with herd leases and crash recovery.
// Restarts use the production/orders herd, which the other test files leave alone.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { and, asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntries, herdLeases, instances, operations, operationSteps, operationTargets } from '@/db/schema';
import { seedLabFleet } from '@/lib/inventory/seed-lab';
import { PROJECT_ROOT } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { restartAction } from './actions/restart.action';
import { reloadAction } from './actions/reload.action';
import type { ActionDef } from './define-action';
import { loadInstanceRefs, type InstanceRef } from './instance-ref';
import { planOperation } from './plan';
import { producerConnection, targetQueue } from './queue';
import { ConfirmationError, StalePlanError, submitOperation } from './submit';
import { cancelOperation, retryOperation } from './control';
import { stopAction } from './actions/stop.action';
import { startAction } from './actions/start.action';
import { startWorker } from './worker';
import { SYSTEM_ACCESS } from '@/lib/auth/access';

let t: TestDb;
let refs: InstanceRef[] = [];
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
const conn = () => producerConnection(t.lab.redis!.url);
let queue: ReturnType<typeof targetQueue>;
let child: ReturnType<typeof spawn> | null = null;
const actor = { id: null, username: 'engine-test', access: SYSTEM_ACCESS };

const orders = () => refs.filter((r) => r.environment === 'production' && r.herd === 'orders');
const dsn = (r: InstanceRef) => `postgres://postgres@${r.host}:${r.port}/postgres`;
const startTime = async (r: InstanceRef) => (await query<{ t: Date }>(dsn(r), 'SELECT pg_postmaster_start_time() AS t'))[0].t.getTime();

async function submit(action: ActionDef, ids: number[], key = Math.random().toString(36)) {
  const plan = await planOperation(t.db, SYSTEM_ACCESS, action, ids);
  const res = await submitOperation(t.db, queue, action, { instanceIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: key }, actor);
  return { plan, ...res };
}

async function waitSettled(id: number, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [op] = await t.db.select().from(operations).where(eq(operations.id, id));
    if (op.finishedAt) return op;
    if (Date.now() > deadline) throw new Error(`operation ${id} still ${op.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Each target's running window, from its first step's start to its last step's end. */
async function windows(operationId: number) {
  return t.db.select({
    targetId: operationTargets.id,
    herdId: operationTargets.herdId,
    from: sql`min(${operationSteps.startedAt})`.mapWith((v) => new Date(v)),
    to: sql`max(${operationSteps.finishedAt})`.mapWith((v) => new Date(v)),
  }).from(operationTargets).innerJoin(operationSteps, eq(operationSteps.targetId, operationTargets.id))
    .where(eq(operationTargets.operationId, operationId)).groupBy(operationTargets.id).orderBy(asc(operationTargets.id));
}
const overlap = (a: { from: Date; to: Date }, b: { from: Date; to: Date }) => a.from < b.to && b.from < a.to;

beforeAll(async () => {
  process.env.PGHERD_LEASE_TTL_MS = '2000';
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  refs = await loadInstanceRefs(t.db, (await t.db.select({ id: instances.id }).from(instances)).map((r) => r.id));
  queue = targetQueue(conn());
  await queue.obliterate({ force: true });
  worker = await startWorker({ databaseUrl: t.url, redisUrl: t.lab.redis!.url, sshKeyPath: t.lab.ssh!.privateKeyPath, concurrency: 8, reconcileEveryMs: 500 });
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await worker?.close();
  await queue?.close();
  await t?.close();
});

describe('plan and confirm', () => {
  it('asks production targets to type the environment name, and many targets their count', async () => {
    const p = await planOperation(t.db, SYSTEM_ACCESS, restartAction, [orders()[1].id]);
    expect(p.typeToConfirm).toBe('production');
    expect(p.targets[0].warnings).toContain('production: production');
    const many = await planOperation(t.db, SYSTEM_ACCESS, reloadAction, refs.slice(0, 12).map((r) => r.id));
    expect(many.typeToConfirm).toBe('12');
  });

  it('refuses a stale plan (409 in the API), a wrong confirmation, and runs nothing', async () => {
    const r = orders()[1];
    const plan = await planOperation(t.db, SYSTEM_ACCESS, restartAction, [r.id]);
    // What will happen changes (it is now the herd's primary, clients lose their connections): stale.
    await t.db.update(instances).set({ role: 'primary' }).where(eq(instances.id, r.id));
    await expect(submitOperation(t.db, queue, restartAction, { instanceIds: [r.id], digest: plan.digest, confirmation: 'production', idempotencyKey: 'k-stale' }, actor)).rejects.toBeInstanceOf(StalePlanError);
    await t.db.update(instances).set({ role: 'replica' }).where(eq(instances.id, r.id));
    // So does where it goes (another port).
    await t.db.update(instances).set({ port: r.port + 1000 }).where(eq(instances.id, r.id));
    await expect(submitOperation(t.db, queue, restartAction, { instanceIds: [r.id], digest: plan.digest, confirmation: 'production', idempotencyKey: 'k-stale2' }, actor)).rejects.toBeInstanceOf(StalePlanError);
    await t.db.update(instances).set({ port: r.port }).where(eq(instances.id, r.id));
    // An observation alone (seen unreachable, its LSN moved) does not: the plan is the same.
    await t.db.update(instances).set({ state: 'unreachable', lsn: 123456 }).where(eq(instances.id, r.id));
    expect((await planOperation(t.db, SYSTEM_ACCESS, restartAction, [r.id])).digest).toBe(plan.digest);
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, r.id));
    await expect(submitOperation(t.db, queue, restartAction, { instanceIds: [r.id], digest: plan.digest, confirmation: 'staging', idempotencyKey: 'k-conf' }, actor)).rejects.toBeInstanceOf(ConfirmationError);
    expect(await t.db.$count(operations)).toBe(0);
  });
});

describe('through the queue and the workers', () => {
  it('restarts a herd\u2019s members one at a time, each really restarted, a double submit enqueuing once', async () => {
    const members = orders();
    const before = await Promise.all(members.map(startTime));
    const ids = members.map((m) => m.id);
    const plan = await planOperation(t.db, SYSTEM_ACCESS, restartAction, ids);
    const input = { instanceIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'double-click' };
    const [a, b] = await Promise.all([submitOperation(t.db, queue, restartAction, input, actor), submitOperation(t.db, queue, restartAction, input, actor)]);
    expect(a.id).toBe(b.id);
    expect(await t.db.$count(operationTargets, eq(operationTargets.operationId, a.id))).toBe(3);
    const op = await waitSettled(a.id);
    expect(op.status).toBe('succeeded');
    const after = await Promise.all(members.map(startTime));
    after.forEach((x, i) => expect(x).toBeGreaterThan(before[i]));
    const w = await windows(a.id);
    expect(w).toHaveLength(3);
    for (let i = 1; i < w.length; i++) expect(overlap(w[i - 1], w[i])).toBe(false);
    const [audit] = await t.db.select().from(auditEntries).where(and(eq(auditEntries.objectType, 'operations'), eq(auditEntries.objectId, String(a.id))));
    expect(audit.action).toBe('operation.restart');
    expect(audit.changes.confirmation).toEqual([null, 'production']);
  });

  it('runs one operation over several herds in parallel', async () => {
    const primaries = refs.filter((r) => r.role === 'primary' && !isOpsTestHerd(r.environment, r.herd));
    const { id } = await submit(reloadAction, primaries.map((r) => r.id));
    expect((await waitSettled(id)).status).toBe('succeeded');
    const w = await windows(id);
    expect(new Set(w.map((x) => x.herdId)).size).toBe(3);
    expect(w.some((x, i) => w.some((y, j) => i !== j && overlap(x, y)))).toBe(true);
  });

  it('never interleaves two operations on one herd', async () => {
    const [, r2, r3] = orders();
    const first = await submit(restartAction, [r2.id]);
    const second = await submit(restartAction, [r3.id]);
    await waitSettled(first.id);
    await waitSettled(second.id);
    const [w1] = await windows(first.id);
    const [w2] = await windows(second.id);
    expect(overlap(w1, w2)).toBe(false);
    expect(w2.from.getTime()).toBeGreaterThanOrEqual(w1.to.getTime());
  });
});

describe('cancel, retry, and Redis losing its data', () => {
  it('retries a failed target after the cause is fixed, its steps numbered after the first attempt\u2019s', async () => {
    const r = orders()[2];
    expect((await waitSettled((await submit(stopAction, [r.id])).id)).status).toBe('succeeded');
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, r.id)); // a stale inventory
    const { id } = await submit(restartAction, [r.id]);
    const failed = await waitSettled(id);
    expect(failed.status).toBe('failed');
    expect((await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id)))[0].error).toMatch(/not running/);
    expect((await waitSettled((await submit(startAction, [r.id])).id)).status).toBe('succeeded');
    expect(await retryOperation(t.db, queue, id, actor)).toHaveLength(1);
    const retried = await waitSettled(id);
    expect(retried.status).toBe('succeeded');
    const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    expect(target.attempts).toBe(2);
    const seqs = (await t.db.select({ seq: operationSteps.seq, status: operationSteps.status }).from(operationSteps).where(eq(operationSteps.targetId, target.id)).orderBy(operationSteps.seq));
    expect(seqs[0]).toEqual({ seq: 1, status: 'failed' });
    expect(seqs.slice(1).every((x) => x.status === 'succeeded') && seqs.length > 2).toBe(true);
  });

  it('cancels queued targets at once', async () => {
    await worker!.close();
    worker = null;
    const { id } = await submit(reloadAction, [orders()[0].id]);
    await cancelOperation(t.db, id, actor);
    const op = await waitSettled(id, 5000);
    expect(op.status).toBe('cancelled');
    worker = await startWorker({ databaseUrl: t.url, redisUrl: t.lab.redis!.url, sshKeyPath: t.lab.ssh!.privateKeyPath, reconcileEveryMs: 500 });
  });

  it('loses no operation when Redis loses its data: the worker re-enqueues what Postgres says is queued', async () => {
    await worker!.close();
    worker = null;
    const { id } = await submit(reloadAction, [orders()[1].id]);
    await queue.obliterate({ force: true }); // what a Redis restart without persistence does
    expect(await queue.count()).toBe(0);
    worker = await startWorker({ databaseUrl: t.url, redisUrl: t.lab.redis!.url, sshKeyPath: t.lab.ssh!.privateKeyPath, reconcileEveryMs: 500 });
    expect((await waitSettled(id)).status).toBe('succeeded');
  });
});

describe('a worker killed mid-operation', () => {
  it('leaves no target running and frees the herd\u2019s lease within its bound', async () => {
    await worker!.close();
    worker = null;
    const r = orders()[0];
    // node --import tsx: one process (the tsx CLI would run the worker in a child SIGKILL misses).
    child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'jobs/worker.ts')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, DATABASE_URL: t.url, REDIS_URL: t.lab.redis!.url, PGHERD_SSH_KEY: t.lab.ssh!.privateKeyPath, PGHERD_LEASE_TTL_MS: '2000', PGHERD_FAULT_HOLD_RUNNING_MS: '60000' },
      stdio: 'ignore',
    });
    const { id } = await submit(restartAction, [r.id]);
    const deadline = Date.now() + 30_000;
    let status = '';
    while (status !== 'running' && Date.now() < deadline) {
      status = (await t.db.select({ s: operationTargets.status }).from(operationTargets).where(eq(operationTargets.operationId, id)))[0].s;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(status).toBe('running');
    expect(await t.db.$count(herdLeases, eq(herdLeases.herdId, r.herdId))).toBe(1);
    child.kill('SIGKILL');
    const killedAt = Date.now();
    worker = await startWorker({ databaseUrl: t.url, redisUrl: t.lab.redis!.url, sshKeyPath: t.lab.ssh!.privateKeyPath, reconcileEveryMs: 300 });
    const op = await waitSettled(id, 15_000);
    const bound = Date.now() - killedAt;
    expect(bound).toBeLessThan(2000 + 3000); // lease TTL plus a reconcile period and slack
    const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    expect(target.status).toBe('interrupted');
    expect(op.status).toBe('failed');
    expect(await t.db.$count(herdLeases, eq(herdLeases.herdId, r.herdId))).toBe(0);
    expect(await t.db.$count(operationTargets, eq(operationTargets.status, 'running'))).toBe(0);
    // The herd is free again: the next operation on it runs.
    const next = await submit(reloadAction, [r.id]);
    expect((await waitSettled(next.id)).status).toBe('succeeded');
  });
});
