// The operations engine against the lab: plan -> confirm -> enqueue (BullMQ on the lab's Redis) ->
// execute (workers over SSH) -> observe, with herd leases and crash recovery.
// Restarts use the production/orders herd, which the other test files leave alone.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { and, asc, eq, sql } from 'drizzle-orm';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  auditEntries,
  environments,
  herdLeases,
  instances,
  operations,
  operationSteps,
  operationTargets,
  roleBindings,
  servers,
  users,
  webhookDeliveries,
  webhooks,
} from '@/db/schema';
import { seedLabFleet } from '@/lib/lab/seed';
import { PROJECT_ROOT } from '@/lib/lab/lab';
import { query } from '@/lib/lab/postgres';
import { labIdentity, stopPid } from '@/lib/lab/proc';
import { waitFor } from '@/lib/testing/wait';
import { freePort } from '@/lib/lab/ports';
import { startRedis } from '@/lib/lab/redis';
import { ifAssigned } from '@/lib/testing/if-assigned';
import { freshDatabase, isOpsTestHerd, type TestDb } from '@/lib/testing/test-db';
import { restartAction } from '@/lib/actions/control/restart.action';
import { remasterAction } from '@/lib/actions/topology/remaster.action';
import { reloadAction } from '@/lib/actions/control/reload.action';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { defineAction, type InstanceAction } from '@/lib/engine/define-action';
import { registerAction } from '@/lib/actions/registry';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { ConfirmationError, StalePlanError, submitOperation } from '@/lib/engine/submit';
import { cancelOperation, retryInput } from '@/lib/features/operations/operation-control';
import { stopAction } from '@/lib/actions/control/stop.action';
import { startAction } from '@/lib/actions/control/start.action';
import { observe } from '@/lib/fleet/observe';
import { checkSshAction } from '@/lib/actions/control/check-ssh.action';
import { replaceHostKeyAction } from '@/lib/actions/control/replace-host-key.action';
import { startWorker } from '@/jobs/start-worker';
import { operationView } from '@/lib/engine/operation-view';
import { startTcpProxy } from '@/lib/testing/tcp-proxy';
import { RideOverError } from '@/db/client';
import { loadAccess, SYSTEM_ACCESS } from '@/lib/engine/access';
import { asks } from '@/lib/actions/drivers';

let t: TestDb;
let refs: InstanceRef[] = [];
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
const conn = () => producerConnection(t.lab.redis!.url);
let queue: ReturnType<typeof targetQueue>;
let child: ReturnType<typeof spawn> | null = null;
const actor = { id: null, username: 'engine-test', access: SYSTEM_ACCESS };

const orders = () => refs.filter((r) => r.environment === 'production' && r.herd === 'orders');
const dsn = (r: InstanceRef) => `postgres://postgres@${r.host}:${r.port}/postgres`;
const startTime = async (r: InstanceRef) => (await query<{ t: Date }>(dsn(r), 'SELECT pg_postmaster_start_time() AS t'))[0]!.t.getTime();

async function submit(
  action: InstanceAction,
  ids: number[],
  key = Math.random().toString(36),
  q = queue,
  params: Record<string, unknown> = {},
) {
  const plan = await planOperation(t.db, SYSTEM_ACCESS, action, ids, params);
  const res = await submitOperation(
    t.db,
    q,
    action,
    { instanceIds: ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: key, params },
    actor,
  );
  return { plan, ...res };
}

/** The file's own worker, on the lab's database and Redis (tests that stop it start it again with this). */
const defaultWorker = () =>
  startWorker({ databaseUrl: t.url, redisUrl: t.lab.redis!.url, sshKeyPath: t.lab.ssh!.privateKeyPath, reconcileEveryMs: 500 });

/** Operation `id` once it has finished; at the deadline, where each of its targets is. */
async function waitSettled(id: number, timeoutMs = 50_000) {
  const settled = async () => {
    const [op] = await t.db.select().from(operations).where(eq(operations.id, id));
    return op?.finishedAt ? op : undefined;
  };
  return waitFor(`operation ${id} to settle`, settled, timeoutMs).catch(async (err: unknown) => {
    throw new Error(`${(err as Error).message}:\n${await whereItIs([id])}`);
  });
}

/** `p`, or an error saying where the operations' targets are when it takes longer than `ms`. */
async function within<T>(ms: number, p: Promise<T>, what: string, operationIds: number[]): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void whereItIs(operationIds).then((where) => reject(new Error(`waited ${ms} ms for ${what}:\n${where}`)), reject);
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Where the operations' targets are, step by step (a test that gives up says what it waited for). */
async function whereItIs(operationIds: number[]) {
  const lines: string[] = [];
  for (const id of operationIds) {
    const ts = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id)).orderBy(operationTargets.id);
    for (const x of ts) {
      lines.push(`  operation ${id} target ${x.id}: ${x.status}${x.error ? ` (${x.error})` : ''}`);
      const steps = await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, x.id)).orderBy(operationSteps.seq);
      for (const s of steps)
        lines.push(
          `    ${s.seq} ${s.name}: ${s.status} ${s.startedAt.toISOString()} .. ${s.finishedAt?.toISOString() ?? 'now'} ${JSON.stringify((s.stdoutTail + s.stderrTail).slice(-300))}`,
        );
    }
  }
  const leases = await t.db.select().from(herdLeases);
  lines.push(`  leases: ${JSON.stringify(leases)}`);
  return lines.join('\n');
}

/** Each target's running window, from its first step's start to its last step's end. */
async function windows(operationId: number) {
  return t.db
    .select({
      targetId: operationTargets.id,
      herdId: operationTargets.herdId,
      from: sql`min(${operationSteps.startedAt})`.mapWith((v) => new Date(v)),
      to: sql`max(${operationSteps.finishedAt})`.mapWith((v) => new Date(v)),
    })
    .from(operationTargets)
    .innerJoin(operationSteps, eq(operationSteps.targetId, operationTargets.id))
    .where(eq(operationTargets.operationId, operationId))
    .groupBy(operationTargets.id)
    .orderBy(asc(operationTargets.id));
}
const overlap = (a: { from: Date; to: Date }, b: { from: Date; to: Date }) => a.from < b.to && b.from < a.to;

/** Until target `targetId` has one of the statuses `want`; at the deadline, where its operation's targets are. */
async function waitStatus(targetId: number, want: string[], timeoutMs = 30_000) {
  const target = async () => (await t.db.select().from(operationTargets).where(eq(operationTargets.id, targetId)))[0]!;
  await waitFor(`target ${targetId} ${want.join('/')}`, async () => want.includes((await target()).status), timeoutMs).catch(
    async (err: unknown) => {
      const x = await target();
      throw new Error(`${(err as Error).message} (still ${x.status}):\n${await whereItIs([x.operationId])}`);
    },
  );
}

const waitJob = (jobId: string) =>
  waitFor(
    `job ${jobId} to end`,
    async () => {
      const state = await queue.getJobState(jobId);
      return (state === 'completed' || state === 'failed') && state;
    },
    10_000,
  );

const dbEndpoint = () => {
  const u = new URL(t.url);
  return { host: u.hostname, port: Number(u.port) };
};
const viaProxy = (port: number) => {
  const u = new URL(t.url);
  u.host = `127.0.0.1:${port}`;
  return u.toString();
};

/** A quiet worker whose connections to pgherd's database go through a fault-injecting proxy. */
const proxiedWorker = (port: number, opts: Partial<Parameters<typeof startWorker>[0]> = {}) =>
  startWorker({
    databaseUrl: viaProxy(port),
    redisUrl: t.lab.redis!.url,
    sshKeyPath: t.lab.ssh!.privateKeyPath,
    reconcileEveryMs: 500,
    quiet: true,
    ...opts,
  });

beforeAll(async () => {
  process.env.PGHERD_LEASE_TTL_MS = '2000';
  t = await freshDatabase();
  await seedLabFleet(t.db, t.lab);
  refs = await loadInstanceRefs(
    t.db,
    (await t.db.select({ id: instances.id }).from(instances)).map((r) => r.id),
  );
  queue = targetQueue(conn());
  await queue.obliterate({ force: true });
  worker = await startWorker({
    databaseUrl: t.url,
    redisUrl: t.lab.redis!.url,
    sshKeyPath: t.lab.ssh!.privateKeyPath,
    concurrency: 8,
    reconcileEveryMs: 500,
  });
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await worker?.close();
  await ifAssigned(queue)?.close();
  await ifAssigned(t)?.close();
});

describe('plan and confirm', () => {
  it('asks production targets to type the environment name, and many targets their count', async () => {
    const p = await planOperation(t.db, SYSTEM_ACCESS, restartAction, [orders()[1]!.id]);
    expect(p.typeToConfirm).toBe('production');
    expect(p.targets[0]!.warnings).toContain('production: production');
    const many = await planOperation(
      t.db,
      SYSTEM_ACCESS,
      reloadAction,
      refs.slice(0, 12).map((r) => r.id),
    );
    expect(many.typeToConfirm).toBe('12');
  });

  it('refuses a stale plan (409 in the API), a wrong confirmation, and runs nothing', async () => {
    const r = orders()[1];
    const plan = await planOperation(t.db, SYSTEM_ACCESS, restartAction, [r!.id]);
    // What will happen changes (it is now the herd's primary, clients lose their connections): stale.
    await t.db.update(instances).set({ role: 'primary' }).where(eq(instances.id, r!.id));
    await expect(
      submitOperation(
        t.db,
        queue,
        restartAction,
        { instanceIds: [r!.id], digest: plan.digest, confirmation: 'production', idempotencyKey: 'k-stale' },
        actor,
      ),
    ).rejects.toBeInstanceOf(StalePlanError);
    await t.db.update(instances).set({ role: 'replica' }).where(eq(instances.id, r!.id));
    // So does where it goes (another port).
    await t.db
      .update(instances)
      .set({ port: r!.port + 1000 })
      .where(eq(instances.id, r!.id));
    await expect(
      submitOperation(
        t.db,
        queue,
        restartAction,
        { instanceIds: [r!.id], digest: plan.digest, confirmation: 'production', idempotencyKey: 'k-stale2' },
        actor,
      ),
    ).rejects.toBeInstanceOf(StalePlanError);
    await t.db.update(instances).set({ port: r!.port }).where(eq(instances.id, r!.id));
    // An observation alone (seen unreachable, its LSN moved) does not: the plan is the same.
    await t.db.update(instances).set({ state: 'unreachable', lsn: 123456 }).where(eq(instances.id, r!.id));
    expect((await planOperation(t.db, SYSTEM_ACCESS, restartAction, [r!.id])).digest).toBe(plan.digest);
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, r!.id));
    await expect(
      submitOperation(
        t.db,
        queue,
        restartAction,
        { instanceIds: [r!.id], digest: plan.digest, confirmation: 'staging', idempotencyKey: 'k-conf' },
        actor,
      ),
    ).rejects.toBeInstanceOf(ConfirmationError);
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
    const [a, b] = await Promise.all([
      submitOperation(t.db, queue, restartAction, input, actor),
      submitOperation(t.db, queue, restartAction, input, actor),
    ]);
    expect(a.id).toBe(b.id);
    expect(await t.db.$count(operationTargets, eq(operationTargets.operationId, a.id))).toBe(3);
    const op = await waitSettled(a.id);
    expect(op.status).toBe('succeeded');
    const after = await Promise.all(members.map(startTime));
    after.forEach((x, i) => expect(x).toBeGreaterThan(before[i]!));
    const w = await windows(a.id);
    expect(w).toHaveLength(3);
    for (let i = 1; i < w.length; i++) expect(overlap(w[i - 1]!, w[i]!)).toBe(false);
    const [audit] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.objectType, 'operations'), eq(auditEntries.objectId, String(a.id))));
    expect(audit!.action).toBe('operation.restart');
    expect(audit!.changes.confirmation).toEqual([null, 'production']);
  });

  it('runs one operation over several herds in parallel', async () => {
    const primaries = refs.filter((r) => r.role === 'primary' && !isOpsTestHerd(r.environment, r.herd));
    const { id } = await submit(
      reloadAction,
      primaries.map((r) => r.id),
    );
    expect((await waitSettled(id)).status).toBe('succeeded');
    const w = await windows(id);
    expect(new Set(w.map((x) => x.herdId)).size).toBe(3);
    expect(w.some((x, i) => w.some((y, j) => i !== j && overlap(x, y)))).toBe(true);
  });

  it('logs one JSON line per event, each carrying the operation, target and step it was written in (parallel targets kept apart)', async () => {
    const lines: Record<string, unknown>[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
      if (typeof line === 'string' && line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const primaries = refs.filter((r) => r.role === 'primary' && !isOpsTestHerd(r.environment, r.herd));
    let id = 0;
    try {
      id = (
        await submit(
          reloadAction,
          primaries.map((r) => r.id),
        )
      ).id;
      expect((await waitSettled(id)).status).toBe('succeeded');
      // A target's end is logged once it is written, and the operation settles with that write: the last line may follow.
      const ended = () => lines.filter((l) => l.operationId === id && l.event === 'target.end').length;
      for (let i = 0; i < 100 && ended() < primaries.length; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      spy.mockRestore();
    }
    const targets = await t.db.select({ id: operationTargets.id }).from(operationTargets).where(eq(operationTargets.operationId, id));
    const steps = await t.db
      .select({ targetId: operationSteps.targetId, seq: operationSteps.seq, name: operationSteps.name })
      .from(operationSteps)
      .innerJoin(operationTargets, eq(operationTargets.id, operationSteps.targetId))
      .where(eq(operationTargets.operationId, id));
    const mine = lines.filter((l) => l.operationId === id);
    for (const l of mine) {
      expect(l.event).toMatch(/^[a-z_]+(\.[a-z_]+)+$/);
      expect(l.action).toBe('reload');
      expect(targets.map((x) => x.id)).toContain(l.targetId);
    }
    // Each step's start and end, naming the step as it is recorded (its number within its target).
    const ends = mine.filter((l) => l.event === 'step.end');
    expect(ends.map((l) => `${String(l.targetId)}/${String(l.step)} ${String(l.stepName)}`).sort()).toEqual(
      steps.map((x) => `${x.targetId}/${x.seq} ${x.name}`).sort(),
    );
    expect(ends.every((l) => l.status === 'succeeded' && typeof l.ms === 'number')).toBe(true);
    expect(new Set(mine.filter((l) => l.event === 'target.end').map((l) => l.targetId))).toEqual(new Set(targets.map((x) => x.id)));
    // Outside a step, no step is named.
    expect(mine.filter((l) => l.event === 'target.end').every((l) => l.step === undefined)).toBe(true);
  });

  it('never interleaves two operations on one herd', async () => {
    const [, r2, r3] = orders();
    const first = await submit(restartAction, [r2!.id]);
    const second = await submit(restartAction, [r3!.id]);
    await waitSettled(first.id);
    await waitSettled(second.id);
    const [w1] = await windows(first.id);
    const [w2] = await windows(second.id);
    expect(overlap(w1!, w2!)).toBe(false);
    expect(w2!.from.getTime()).toBeGreaterThanOrEqual(w1!.to.getTime());
  });
});

describe('what a command prints is recorded, whatever it prints', () => {
  // A binary file printed by mistake, a tool that writes NUL-separated lists: Postgres stores no NUL
  // byte in text, and a statement that tries fails whole, with the record of how the target ended.
  const binaryAction: InstanceAction = defineAction({
    name: 'engine-test-binary',
    control: asks(null),
    label: 'Print NUL bytes',
    permission: 'operator',
    dangerous: false,
    plan: (r) => ({
      steps: [
        {
          name: 'print',
          does: { kind: 'print' },
          says: 'printf with NUL bytes',
          run: async (x) => void (await execNoted(x.deps, r, x, ['printf', 'bin\\000ary'])),
        },
        {
          name: 'fail',
          does: { kind: 'fail' },
          says: 'exit 3 after NUL bytes on stderr',
          run: async (x) => void (await execNotedOk(x.deps, r, x, ['sh', '-c', "printf 'err\\000or' >&2; exit 3"])),
        },
      ],
      warnings: [],
    }),
  });

  it('stores NUL bytes as U+FFFD: the steps’ output and the target’s error are on record, the operation ends', async () => {
    registerAction(binaryAction);
    const { id } = await submit(binaryAction, [orders()[0]!.id]);
    expect((await waitSettled(id)).status).toBe('failed');
    const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    expect(target!.error).toContain('err\uFFFDor');
    const steps = await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, target!.id)).orderBy(asc(operationSteps.seq));
    expect(steps.map((s) => [s.name, s.status, s.stdoutTail, s.stderrTail])).toEqual([
      ['print', 'succeeded', 'bin\uFFFDary', ''],
      ['fail', 'failed', '', expect.stringMatching(/^err\uFFFDor\n.* exited 3: err\uFFFDor$/)],
    ]);
  });
});

describe('a failed cleanup is never hidden', () => {
  // A step that pauses something and a cleanup that cannot put it back (a PgBouncer that does not
  // answer its RESUME): the target must say so beside its own error, and the failure be announced.
  const pausing = (name: string, then: () => Promise<void>): InstanceAction =>
    defineAction({
      name,
      control: asks(null),
      label: name,
      permission: 'operator',
      dangerous: false,
      plan: (r) => ({
        steps: [
          {
            name: `pause PgBouncer before ${r.label}`,
            does: { kind: 'pgbouncer.pause' },
            says: 'pause the pooler',
            run: async () => {},
            always: {
              name: `resume PgBouncer before ${r.label}`,
              does: { kind: 'pgbouncer.resume' },
              says: 'resume the pooler',
              run: async () => {
                throw new Error('RESUME: connection refused');
              },
            },
          },
          { name: 'promote', does: { kind: 'promote' }, says: 'the step itself', run: then },
        ],
        warnings: [],
      }),
    });
  const failing = pausing('engine-test-cleanup-after-failure', async () => {
    throw new Error('promote timed out');
  });
  const succeeding = pausing('engine-test-cleanup-after-success', async () => {});
  let hook: number;
  beforeAll(async () => {
    registerAction(failing);
    registerAction(succeeding);
    // A global webhook for failures: its deliveries are the failure event as receivers get it.
    const [w] = await t.db
      .insert(webhooks)
      .values({ name: 'cleanup failures', url: 'http://127.0.0.1:9/failures', secret: 'x', events: ['operation.failed'] })
      .returning();
    hook = w!.id;
  });
  afterAll(async () => {
    await t.db.delete(webhooks).where(eq(webhooks.id, hook));
  });

  /** The failure event for operation `id`, once the worker has turned the outbox into a delivery. */
  async function failureDelivery(id: number) {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const rows = await t.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, hook));
      const mine = rows.find((d) => (d.payload as { operation?: { id?: number } }).operation?.id === id);
      if (mine) return mine;
    }
    throw new Error(`no operation.failed delivery for operation ${id}`);
  }

  it.each([
    [
      'beside the step\u2019s own error when the step failed',
      failing,
      /^promote timed out; and a cleanup failed: resume PgBouncer before \S+: RESUME: connection refused \u2014 do it by hand$/,
    ],
    [
      'as the target\u2019s failure when every step succeeded',
      succeeding,
      /^no step failed, but a cleanup failed: resume PgBouncer before \S+: RESUME: connection refused \u2014 do it by hand$/,
    ],
  ])('%s: in the target\u2019s error, on the operation page, and in the failure webhook', async (_, action, error) => {
    const { id } = await submit(action, [orders()[0]!.id]);
    const op = await waitSettled(id);
    expect(op.status).toBe('failed');
    const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    expect(target!.status).toBe('failed');
    expect(target!.error).toMatch(error);
    const steps = await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, target!.id)).orderBy(asc(operationSteps.seq));
    expect(steps.map((s) => s.status)).toEqual(['succeeded', action === failing ? 'failed' : 'succeeded', 'failed']);
    const view = await operationView(t.db, id, SYSTEM_ACCESS);
    expect(view!.targets[0]).toMatchObject({ status: 'failed', error: target!.error, cleanupFailed: true });
    const delivery = await failureDelivery(id);
    expect(delivery.event).toBe('operation.failed');
    expect(delivery.payload).toMatchObject({ event: 'operation.failed', operation: { id, status: 'failed' } });
  });
});

describe('cancel, retry, and Redis losing its data', () => {
  it('retries failed targets as a new confirmation: planned again, run as a new operation that says what it retries', async () => {
    const r = orders()[2];
    expect((await waitSettled((await submit(stopAction, [r!.id])).id)).status).toBe('succeeded');
    await t.db.update(instances).set({ state: 'running' }).where(eq(instances.id, r!.id)); // a stale inventory
    const { id } = await submit(restartAction, [r!.id]);
    const failed = await waitSettled(id);
    expect(failed.status).toBe('failed');
    expect((await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id)))[0]!.error).toMatch(/not running/);
    expect((await waitSettled((await submit(startAction, [r!.id])).id)).status).toBe('succeeded');
    const input = (await retryInput(t.db, SYSTEM_ACCESS, id))!;
    expect(input).toEqual({ action: 'restart', ids: [r!.id], params: {} });
    const plan = await planOperation(t.db, SYSTEM_ACCESS, restartAction, input.ids, input.params);
    const again = await submitOperation(
      t.db,
      queue,
      restartAction,
      { instanceIds: input.ids, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'retry-1', retryOf: id },
      actor,
    );
    expect((await waitSettled(again.id)).status).toBe('succeeded');
    // The first operation keeps its record: failed, one attempt.
    expect((await waitSettled(id)).status).toBe('failed');
    const [first] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    expect(first).toMatchObject({ status: 'failed', attempts: 1 });
    const [audit] = await t.db
      .select()
      .from(auditEntries)
      .where(and(eq(auditEntries.objectType, 'operations'), eq(auditEntries.objectId, String(again.id))));
    expect(audit!.changes.retryOf).toEqual([null, id]);
  });

  it('cancels queued targets at once', async () => {
    await worker?.close();
    worker = null;
    const { id } = await submit(reloadAction, [orders()[0]!.id]);
    await cancelOperation(t.db, id, actor);
    const op = await waitSettled(id, 5000);
    expect(op.status).toBe('cancelled');
    worker = await defaultWorker();
  });

  it('loses no operation when Redis loses its data: the worker re-enqueues what Postgres says is queued', async () => {
    await worker?.close();
    worker = null;
    const { id } = await submit(reloadAction, [orders()[1]!.id]);
    await queue.obliterate({ force: true }); // what a Redis restart without persistence does
    expect(await queue.count()).toBe(0);
    worker = await defaultWorker();
    expect((await waitSettled(id)).status).toBe('succeeded');
  });
});

describe('authorized when it runs, not only when it was confirmed', () => {
  it('refuses a target whose instance moved into an environment where the requester has no role, running nothing', async () => {
    await worker?.close();
    worker = null;
    const [stg] = await t.db.select({ id: environments.id }).from(environments).where(eq(environments.name, 'staging'));
    const [u] = await t.db.insert(users).values({ username: 'stg-op', source: 'local' }).returning();
    await t.db.insert(roleBindings).values({ role: 'operator', subjectType: 'user', subject: 'stg-op', environmentId: stg!.id });
    const who = { id: u!.id, username: 'stg-op', access: await loadAccess(t.db, u!.id) };
    const target = refs.find((r) => r.environment === 'staging')!;
    const plan = await planOperation(t.db, who.access, restartAction, [target.id]);
    const { id } = await submitOperation(
      t.db,
      queue,
      restartAction,
      { instanceIds: [target.id], digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: 'moved-while-queued' },
      who,
    );
    // While it queues, the instance is moved into a production herd.
    await t.db.update(instances).set({ herdId: orders()[0]!.herdId }).where(eq(instances.id, target.id));
    worker = await startWorker({
      databaseUrl: t.url,
      redisUrl: t.lab.redis!.url,
      sshKeyPath: t.lab.ssh!.privateKeyPath,
      reconcileEveryMs: 500,
      quiet: true,
    });
    try {
      const op = await waitSettled(id);
      const [tg] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
      expect(op.status).toBe('failed');
      expect(tg!.error).toBe(
        'refused at execution: Restart (requested by stg-op) needs the operator role in production (you have no role there)',
      );
      expect(await t.db.$count(operationSteps, eq(operationSteps.targetId, tg!.id))).toBe(0);
      expect(await t.db.$count(auditEntries, and(eq(auditEntries.action, 'access.denied'), eq(auditEntries.username, 'stg-op')))).toBe(1);
    } finally {
      await t.db.update(instances).set({ herdId: target.herdId }).where(eq(instances.id, target.id));
    }
  });
});

describe('host keys', () => {
  it('refuses to change anything on a server without a pinned key; Check SSH pins it to the server\u2019s id; then it runs', async () => {
    const r = orders()[1];
    const [srv] = await t.db.select().from(servers).where(eq(servers.id, r!.serverId));
    // Another server that shares the address must not get the key: pinning is by id.
    const [twin] = await t.db
      .insert(servers)
      .values({ hostname: 'twin.lab.internal', environmentId: srv!.environmentId, address: srv!.address })
      .returning();
    await t.db.update(servers).set({ sshHostKeyFingerprint: null }).where(eq(servers.id, srv!.id));
    try {
      const before = await startTime(r!);
      // Refused at planning, over SSH (restart) and over SQL alike (re-point: ALTER SYSTEM on the instance).
      for (const action of [restartAction, remasterAction]) {
        const refused = await planOperation(t.db, SYSTEM_ACCESS, action, [r!.id]);
        expect(refused.targets[0]!.refused).toBe(
          `no SSH host key is pinned for ${srv!.hostname}: pgherd has not verified this server, and changes nothing there (over SSH or SQL) until an admin runs Check SSH (pin the host key)`,
        );
        await expect(submit(action, [r!.id])).rejects.toThrow(
          `every target was refused: nothing to run (no SSH host key is pinned for ${srv!.hostname}: `,
        );
      }
      expect(await startTime(r!)).toBe(before);
      const check = await submit(checkSshAction, [r!.id]);
      expect((await waitSettled(check.id)).status).toBe('succeeded');
      const [after] = await t.db.select().from(servers).where(eq(servers.id, srv!.id));
      expect(after!.sshHostKeyFingerprint).toBe(t.lab.ssh!.hostKeyFingerprint);
      expect((await t.db.select().from(servers).where(eq(servers.id, twin!.id)))[0]!.sshHostKeyFingerprint).toBeNull();
      expect((await waitSettled((await submit(restartAction, [r!.id])).id)).status).toBe('succeeded');
      expect(await startTime(r!)).toBeGreaterThan(before);
    } finally {
      await t.db.update(servers).set({ sshHostKeyFingerprint: t.lab.ssh!.hostKeyFingerprint }).where(eq(servers.id, srv!.id));
      await t.db.delete(servers).where(eq(servers.id, twin!.id));
    }
  });

  it('replaces a pinned key only with the one the admin typed and the host presents, audited; any other key changes nothing', async () => {
    const r = orders()[1];
    const real = t.lab.ssh!.hostKeyFingerprint;
    const old = `SHA256:${'A'.repeat(43)}`;
    const wrong = `SHA256:${'B'.repeat(43)}`;
    // The host was reinstalled: it presents a key other than the one pinned.
    await t.db.update(servers).set({ sshHostKeyFingerprint: old }).where(eq(servers.id, r!.serverId));
    const pinned = async () => (await t.db.select().from(servers).where(eq(servers.id, r!.serverId)))[0]!.sshHostKeyFingerprint;
    const audited = () =>
      t.db
        .select()
        .from(auditEntries)
        .where(and(eq(auditEntries.action, 'server.host_key'), eq(auditEntries.objectId, String(r!.serverId))));
    try {
      const blocked = await submit(restartAction, [r!.id]);
      expect((await waitSettled(blocked.id)).status).toBe('failed');
      // Without a fingerprint the plan refuses, saying what to type; a malformed one is refused as a parameter.
      const bare = await planOperation(t.db, SYSTEM_ACCESS, replaceHostKeyAction, [r!.id]);
      expect(bare.targets[0]!.refused).toBe("type the fingerprint of the host's new key above (read on the host), then update the plan");
      await expect(planOperation(t.db, SYSTEM_ACCESS, replaceHostKeyAction, [r!.id], { fingerprint: 'SHA256:short' })).rejects.toThrow(
        'a SHA256 fingerprint as `ssh-keygen -lf',
      );
      // A fingerprint the host does not present: refused at connection, nothing pinned, nothing audited.
      const bad = await submit(replaceHostKeyAction, [r!.id], undefined, queue, { fingerprint: wrong });
      expect(bad.plan.typeToConfirm).not.toBeNull();
      expect((await waitSettled(bad.id)).status).toBe('failed');
      const [badTarget] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, bad.id));
      expect(badTarget!.error).toContain(real);
      expect(await pinned()).toBe(old);
      expect(await audited()).toHaveLength(0);
      // The key the host really has, read on the host: pinned in place of the old one, audited with both.
      const good = await submit(replaceHostKeyAction, [r!.id], undefined, queue, { fingerprint: real });
      expect((await waitSettled(good.id)).status).toBe('succeeded');
      expect(await pinned()).toBe(real);
      expect((await audited()).map((a) => a.changes)).toEqual([{ sshHostKeyFingerprint: [old, real] }]);
      expect((await waitSettled((await submit(restartAction, [r!.id])).id)).status).toBe('succeeded');
    } finally {
      await t.db.update(servers).set({ sshHostKeyFingerprint: real }).where(eq(servers.id, r!.serverId));
    }
  });
});

describe('one worker per herd, for real', () => {
  it('runs a target’s steps once when its job is delivered twice', async () => {
    const r = orders()[2];
    const { id } = await submit(restartAction, [r!.id]);
    const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    await waitStatus(target!.id, ['running']);
    // A stalled job delivered again looks like this: another job for the same target while it runs.
    await queue.add('target', { targetId: target!.id }, { jobId: `again-${target!.id}` });
    expect((await waitSettled(id)).status).toBe('succeeded');
    await waitJob(`again-${target!.id}`);
    const [after] = await t.db.select().from(operationTargets).where(eq(operationTargets.id, target!.id));
    expect(after!.attempts).toBe(1);
    const names = (
      await t.db.select({ name: operationSteps.name }).from(operationSteps).where(eq(operationSteps.targetId, target!.id))
    ).map((x) => x.name);
    expect(names.length).toBeGreaterThan(1);
    expect(new Set(names).size).toBe(names.length);
  });

  it('a worker cut off from pgherd’s database past its lease stops before its next step; no two workers run steps of one herd at once', async () => {
    await within(20_000, worker?.close() ?? Promise.resolve(), "the file's worker to close", []);
    worker = null;
    const r = orders()[1];
    const proxy = await startTcpProxy(dbEndpoint());
    const cutOff = await proxiedWorker(proxy.port, { concurrency: 1, reconcileEveryMs: 60_000, refreshEveryMs: 0 });
    try {
      const first = await submit(restartAction, [r!.id]);
      const [t1] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, first.id));
      await waitStatus(t1!.id, ['running'], 10_000);
      proxy.stall();
      const stalledAt = new Date();
      // Another worker takes over once the lease has expired, and runs the next operation on the herd.
      worker = await startWorker({
        databaseUrl: t.url,
        redisUrl: t.lab.redis!.url,
        sshKeyPath: t.lab.ssh!.privateKeyPath,
        reconcileEveryMs: 300,
        quiet: true,
      });
      await waitStatus(t1!.id, ['interrupted'], 15_000);
      // From here on the herd is the other worker's: the cut-off worker's lease is gone.
      const takenOverAt = new Date();
      const second = await submit(restartAction, [r!.id]);
      const [t2] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, second.id));
      await waitStatus(t2!.id, ['running'], 10_000);
      proxy.restore(); // the cut-off worker comes back while the second operation runs
      expect((await waitSettled(second.id, 20_000)).status).toBe('succeeded');
      await within(10_000, cutOff.close(), 'the cut-off worker to close', [first.id, second.id]); // returns once its target has ended
      const [end1] = await t.db.select().from(operationTargets).where(eq(operationTargets.id, t1!.id));
      expect(end1!.status).toBe('interrupted');
      expect(end1!.error).toMatch(/lease/);
      expect(end1!.outcome).toMatch(/^last observed .*: (running as (primary|replica)|not answering)/);
      const steps1 = await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, t1!.id));
      const steps2 = await t.db.select().from(operationSteps).where(eq(operationSteps.targetId, t2!.id));
      // Nothing started on the herd by the cut-off worker once its lease was gone (a first step may start
      // just after the cut: the claim, under half a TTL old, vouches for the lease then)...
      expect(steps1.filter((x) => x.startedAt > takenOverAt).map((x) => x.name)).toEqual([]);
      expect(steps1.filter((x) => x.startedAt.getTime() > stalledAt.getTime() + 1000).map((x) => x.name)).toEqual([]);
      // ...and no step of the first overlaps one of the second.
      for (const a of steps1) {
        for (const b of steps2)
          expect(
            overlap({ from: a.startedAt, to: a.finishedAt ?? new Date() }, { from: b.startedAt, to: b.finishedAt! }),
            `${a.name} / ${b.name}`,
          ).toBe(false);
      }
    } finally {
      proxy.restore();
      await cutOff.close().catch(() => {});
      await proxy.close();
    }
  });
});

describe('faults end in a definite state', () => {
  it('pgherd’s database gone for 3 s during a bulk restart: every target ends by itself with a reason, the operation settles', async () => {
    await worker?.close();
    worker = null;
    const proxy = await startTcpProxy(dbEndpoint());
    const w = await proxiedWorker(proxy.port);
    try {
      const { id } = await submit(
        restartAction,
        orders().map((x) => x.id),
      );
      const targets = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id)).orderBy(operationTargets.id);
      await waitStatus(targets[0]!.id, ['running']);
      proxy.cut();
      await new Promise((res) => setTimeout(res, 3000));
      proxy.restore();
      const op = await waitSettled(id, 60_000);
      const ended = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
      for (const x of ended) {
        expect(['succeeded', 'failed', 'interrupted']).toContain(x.status);
        if (x.status !== 'succeeded') expect(x.error).toBeTruthy();
      }
      expect(['succeeded', 'failed', 'partial']).toContain(op.status);
      // The targets that were queued when the database went ran once it was back.
      expect(ended.filter((x) => x.id !== targets[0]!.id).every((x) => x.status === 'succeeded')).toBe(true);
    } finally {
      proxy.restore();
      await w.close();
      await proxy.close();
    }
    worker = await defaultWorker();
    // The target that was running when the database went was abandoned once its lease could not be
    // confirmed: its pg_ctl restart killed on the host, maybe between the stop and the start. That member
    // is down then, as the target's error says; started again here, so that the tests after this one
    // (and the other files sharing the lab) find the fleet as it was.
    const down: number[] = [];
    for (const r of orders()) if (!(await observe(r, 3000)).reachable) down.push(r.id);
    if (down.length) expect((await waitSettled((await submit(startAction, down)).id)).status).toBe('succeeded');
  }, 120_000);
});

describe('pgherd\u2019s database away for a moment', () => {
  it('between two steps and as the target ends: the worker waits for it, and records the steps as they ran', async () => {
    await worker?.close();
    worker = null;
    const proxy = await startTcpProxy(dbEndpoint());
    // Each step, as it ends, takes the database away for 0.4 s: the confirmation of the lease before
    // the second step, and the statement that ends the target, each meet it away. The worker waits up
    // to half the lease's TTL from its last confirmation; with this file's 2 s, a busy machine (new
    // connections made after the cut) can take longer than that, and giving up is then right. This
    // test's lease lasts 8 s: the wait, not the margin, is what it checks.
    process.env.PGHERD_LEASE_TTL_MS = '8000';
    const away = () => {
      proxy.cut();
      setTimeout(() => proxy.restore(), 400);
    };
    const blinkAction: InstanceAction = defineAction({
      name: 'engine-test-blink',
      control: asks(null),
      label: 'Blink the database',
      permission: 'operator',
      dangerous: false,
      plan: () => ({
        steps: [
          { name: 'first', does: { kind: 'first' }, says: 'take the database away as it ends', run: async () => away() },
          { name: 'second', does: { kind: 'second' }, says: 'and again', run: async () => away() },
        ],
        warnings: [],
      }),
    });
    registerAction(blinkAction);
    const w = await within(20_000, proxiedWorker(proxy.port), 'a worker to start through the proxy', []);
    try {
      const { id } = await submit(blinkAction, [orders()[1]!.id]);
      const settled = await waitSettled(id, 30_000);
      const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
      expect([settled.status, target!.status, target!.error]).toEqual(['succeeded', 'succeeded', null]);
      const steps = await t.db
        .select()
        .from(operationSteps)
        .where(eq(operationSteps.targetId, target!.id))
        .orderBy(asc(operationSteps.seq));
      expect(steps.map((s) => [s.name, s.status])).toEqual([
        ['first', 'succeeded'],
        ['second', 'succeeded'],
      ]);
      expect(await t.db.select().from(herdLeases).where(eq(herdLeases.targetId, target!.id))).toEqual([]);
    } finally {
      process.env.PGHERD_LEASE_TTL_MS = '2000';
      proxy.restore();
      await within(40_000, w.close(), 'the proxied worker to close', []);
      await proxy.close();
    }
    worker = await defaultWorker();
  }, 60_000);
});

describe('a worker that comes back after its lease was taken', () => {
  it('abandons the step it was in and runs none of its cleanups: the herd is another\u2019s now', async () => {
    await worker?.close();
    worker = null;
    const proxy = await startTcpProxy(dbEndpoint());
    const ran: string[] = [];
    // The step holds until the test lets it go: it still runs when the paused worker resumes.
    let letGo = () => {};
    const held = new Promise<void>((r) => (letGo = r));
    let lateWrite: unknown = null;
    const holdAction: InstanceAction = defineAction({
      name: 'engine-test-hold',
      control: asks(null),
      label: 'Hold, with a cleanup',
      permission: 'operator',
      dangerous: false,
      plan: () => ({
        steps: [
          {
            name: 'hold',
            does: { kind: 'hold' },
            says: 'wait until the test lets it go (an EC2 wait, say)',
            timeoutMs: 30_000,
            run: async ({ deps }) => {
              ran.push('hold started');
              await held;
              ran.push('hold ended');
              // What it writes, resumed long after its lease: refused before it is sent.
              lateWrite = await deps.db
                .execute(sql`UPDATE operation_targets SET outcome = 'written after the lease' WHERE id = ${deps.targetId}`)
                .then(
                  () => 'written',
                  (err: unknown) => (err as { cause?: unknown }).cause ?? err,
                );
            },
            always: {
              name: 'undo hold',
              does: { kind: 'undo-hold' },
              says: 'touch the herd again',
              run: async () => void ran.push('undo hold'),
            },
          },
          { name: 'after', does: { kind: 'after' }, says: 'touch the herd', run: async () => void ran.push('after') },
        ],
        warnings: [],
      }),
    });
    registerAction(holdAction);
    // The worker as if paused (SIGSTOP): its database answers nothing until it "resumes".
    const w = await proxiedWorker(proxy.port, { concurrency: 1, reconcileEveryMs: 60_000, refreshEveryMs: 0 });
    try {
      const { id } = await submit(holdAction, [orders()[1]!.id]);
      const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
      await waitStatus(target!.id, ['running'], 10_000);
      const started = Date.now() + 5000;
      while (!ran.includes('hold started') && Date.now() < started) await new Promise((r) => setTimeout(r, 20));
      proxy.stall();
      worker = await defaultWorker(); // its reconcile takes the expired lease and ends the target
      await waitStatus(target!.id, ['interrupted'], 15_000);
      proxy.restore(); // the paused worker resumes while its step still runs
      await within(20_000, w.close(), 'the resumed worker to close', [id]);
      expect(ran).toEqual(['hold started']);
      const [end] = await t.db.select().from(operationTargets).where(eq(operationTargets.id, target!.id));
      expect(end!.status).toBe('interrupted');
      const steps = await t.db.select({ name: operationSteps.name }).from(operationSteps).where(eq(operationSteps.targetId, target!.id));
      expect(steps.map((x) => x.name)).toEqual(['hold']);
      // The step's own work, abandoned, ends in the background; still no cleanup after it.
      letGo();
      await waitFor('the abandoned step to end', async () => (lateWrite ? true : undefined));
      expect(ran).toEqual(['hold started', 'hold ended']);
      // Its write, past the lease's bound, was never sent (RideBound): the row is as reconcile left it.
      expect(lateWrite).toBeInstanceOf(RideOverError);
      const [after] = await t.db.select().from(operationTargets).where(eq(operationTargets.id, target!.id));
      expect(after!.outcome).not.toBe('written after the lease');
    } finally {
      letGo();
      proxy.restore();
      await w.close().catch(() => {});
      await proxy.close();
    }
  }, 90_000);
});

describe('a worker cut off from pgherd\u2019s database during a long step', () => {
  it('kills the step\u2019s command on the host before its lease expires, so before another worker may claim the herd', async () => {
    await worker?.close();
    worker = null;
    const proxy = await startTcpProxy(dbEndpoint());
    const pidFile = `/tmp/pgherd-long-step-${process.pid}.pid`;
    // A stalled base backup, as far as the worker can tell: a command on the host that runs on and on.
    const longAction: InstanceAction = defineAction({
      name: 'engine-test-long-step',
      control: asks(null),
      label: 'A long step on the host',
      permission: 'operator',
      dangerous: false,
      plan: (r) => ({
        steps: [
          {
            name: 'copy for a long time',
            does: { kind: 'copy-for-a-long-time' },
            says: 'run a command that takes a minute on the host',
            timeoutMs: 120_000,
            run: async (x) => {
              await execNoted(x.deps, r, x, ['sh', '-c', 'echo $$ > "$1"; exec sleep 60', 'sh', pidFile], 120_000);
            },
          },
        ],
        warnings: [],
      }),
    });
    registerAction(longAction);
    const w = await proxiedWorker(proxy.port, { concurrency: 1, reconcileEveryMs: 60_000, refreshEveryMs: 0 });
    try {
      const { id } = await submit(longAction, [orders()[1]!.id]);
      const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
      const pid = await waitFor('the command to start on the host', async () => {
        const text = await readFile(pidFile, 'utf8').catch(() => '');
        return /^\d+\n$/.test(text) ? Number(text) : undefined;
      });
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      expect(alive()).toBe(true);
      proxy.stall();
      // Another worker comes: it may take the herd once the lease has expired, and not before.
      worker = await defaultWorker();
      let killedAt: number | null = null;
      let interruptedAt: number | null = null;
      await waitFor('the target to be taken over', async () => {
        if (killedAt === null && !alive()) killedAt = Date.now();
        const [now] = await t.db
          .select({ status: operationTargets.status })
          .from(operationTargets)
          .where(eq(operationTargets.id, target!.id));
        if (now!.status === 'interrupted') interruptedAt = Date.now();
        return interruptedAt ?? undefined;
      });
      expect(killedAt, 'the command on the host was killed before the herd was taken over').not.toBeNull();
      expect(killedAt!).toBeLessThanOrEqual(interruptedAt!);
      proxy.restore();
      await within(20_000, w.close(), 'the cut-off worker to close', [id]);
      const [end] = await t.db.select().from(operationTargets).where(eq(operationTargets.id, target!.id));
      expect(end!.status).toBe('interrupted');
    } finally {
      proxy.restore();
      await w.close().catch(() => {});
      await proxy.close();
    }
  }, 90_000);
});

describe('Redis restarted under a running worker', () => {
  it('logs it as events (no unhandled error), ends the running target, and runs what comes next', async () => {
    await worker?.close();
    worker = null;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-redis-'));
    chownSync(dir, labIdentity().uid, labIdentity().gid);
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    let pid = await startRedis(labIdentity(), dir, port);
    const printed: string[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const spies = (['error', 'warn'] as const).map((k) =>
      vi.spyOn(console, k).mockImplementation((...a: unknown[]) => {
        printed.push(a.map(String).join(' '));
      }),
    );
    const ownConnection = producerConnection(url);
    ownConnection.on('error', () => {}); // the test's own producer: Redis going away is the point
    const own = targetQueue(ownConnection, 'redis-restart');
    const w = await startWorker({
      databaseUrl: t.url,
      redisUrl: url,
      sshKeyPath: t.lab.ssh!.privateKeyPath,
      reconcileEveryMs: 500,
      queuePrefix: 'redis-restart',
      quiet: true,
    });
    try {
      const r = orders()[1];
      const first = await submit(restartAction, [r!.id], 'redis-1', own);
      const [t1] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, first.id));
      await waitStatus(t1!.id, ['running']);
      await stopPid(pid, 'SIGKILL');
      pid = await startRedis(labIdentity(), dir, port); // empty: no persistence, as in the lab and many deployments
      expect(['succeeded', 'failed', 'partial']).toContain((await waitSettled(first.id)).status);
      const second = await submit(reloadAction, [r!.id], 'redis-2', own);
      expect((await waitSettled(second.id, 30_000)).status).toBe('succeeded');
      expect(unhandled).toEqual([]);
      expect(printed.filter((l) => /unhandled|missing key/i.test(l))).toEqual([]);
    } finally {
      await w.close();
      await own.close();
      ownConnection.disconnect();
      spies.forEach((x) => x.mockRestore());
      process.off('unhandledRejection', onUnhandled);
      await stopPid(pid, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
    worker = await defaultWorker();
  }, 90_000);
});

describe('a worker killed mid-operation', () => {
  it('leaves no target running and frees the herd\u2019s lease within its bound', async () => {
    await worker?.close();
    worker = null;
    const r = orders()[0];
    // node --import tsx: one process (the tsx CLI would run the worker in a child SIGKILL misses).
    child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'lib/testing/held-worker.ts')], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: t.url,
        REDIS_URL: t.lab.redis!.url,
        PGHERD_SSH_KEY: t.lab.ssh!.privateKeyPath,
        PGHERD_LEASE_TTL_MS: '2000',
      },
      stdio: 'ignore',
    });
    const { id } = await submit(restartAction, [r!.id]);
    const deadline = Date.now() + 30_000;
    let status = '';
    while (status !== 'running' && Date.now() < deadline) {
      status = (await t.db.select({ s: operationTargets.status }).from(operationTargets).where(eq(operationTargets.operationId, id)))[0]!.s;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(status).toBe('running');
    expect(await t.db.$count(herdLeases, eq(herdLeases.herdId, r!.herdId))).toBe(1);
    child.kill('SIGKILL');
    const killedAt = Date.now();
    worker = await startWorker({
      databaseUrl: t.url,
      redisUrl: t.lab.redis!.url,
      sshKeyPath: t.lab.ssh!.privateKeyPath,
      reconcileEveryMs: 300,
    });
    const op = await waitSettled(id, 15_000);
    const bound = Date.now() - killedAt;
    expect(bound).toBeLessThan(2000 + 3000); // lease TTL plus a reconcile period and slack
    const [target] = await t.db.select().from(operationTargets).where(eq(operationTargets.operationId, id));
    expect(target!.status).toBe('interrupted');
    expect(op.status).toBe('failed');
    expect(await t.db.$count(herdLeases, eq(herdLeases.herdId, r!.herdId))).toBe(0);
    expect(await t.db.$count(operationTargets, eq(operationTargets.status, 'running'))).toBe(0);
    // The herd is free again: the next operation on it runs.
    const next = await submit(reloadAction, [r!.id]);
    expect((await waitSettled(next.id)).status).toBe('succeeded');
  });
});
