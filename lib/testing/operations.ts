// What the operation tests and benchmarks share: a worker of their own on the lab's Redis (its own
// queue prefix), and an operation run the way a person runs one (planned, confirmed with the plan's
// digest, submitted) and followed until it ends, with its targets and their steps.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { eq, inArray } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { operations, operationSteps, operationTargets } from '@/db/schema';
import { SYSTEM_ACCESS } from '@/lib/engine/access';
import type { LabInfo } from '@/lib/lab/lab';
import type { AnyAction } from '@/lib/engine/define-action';
import { planOperation } from '@/lib/engine/plan';
import { producerConnection, targetQueue } from '@/lib/engine/queue';
import { submitOperation } from '@/lib/engine/submit';
import { startWorker } from '@/jobs/start-worker';
import { waitFor } from './wait';

export interface TestWorker {
  queue: ReturnType<typeof targetQueue>;
  close(): Promise<void>;
}

/** The queue under `prefix` alone, to submit to while no worker runs. */
export function openQueue(lab: LabInfo, prefix: string): { queue: TestWorker['queue']; close: () => Promise<void> } {
  const producer = producerConnection(lab.redis!.url);
  const queue = targetQueue(producer, prefix);
  // Redis away (a failover a test makes): the submit that meets it fails, nothing is printed.
  producer.on('error', () => {});
  queue.on('error', () => {});
  return {
    queue,
    close: async () => {
      await queue.close();
      producer.disconnect();
    },
  };
}

/** A worker in this process on the lab's Redis and database, its queue under `prefix`. */
export async function startTestWorker(
  lab: LabInfo,
  prefix: string,
  concurrency: number,
  /** More of the worker's configuration (a chore's clock, say). */
  more: Partial<Parameters<typeof startWorker>[0]> = {},
): Promise<TestWorker> {
  const q = openQueue(lab, prefix);
  const worker = await startWorker({
    databaseUrl: lab.database.url,
    redisUrl: lab.redis!.url,
    sshKeyPath: lab.ssh!.privateKeyPath,
    concurrency,
    refreshEveryMs: 0,
    queuePrefix: prefix,
    quiet: true,
    ...more,
  });
  return {
    queue: q.queue,
    close: async () => {
      await worker.close();
      await q.close();
    },
  };
}

/** Runs `action` on these instances (or herds, `{ herdIds }`) as confirmed on its plan; resolves when the operation ends. */
export async function runOperation(
  db: Db,
  queue: TestWorker['queue'],
  action: AnyAction,
  on: { instanceIds: number[] } | { herdIds: number[] },
  params: Record<string, unknown> = {},
  opts: { timeoutMs?: number; username?: string } = {},
) {
  const ids = 'herdIds' in on ? on.herdIds : on.instanceIds;
  const plan = await planOperation(db, SYSTEM_ACCESS, action, ids, params);
  const t0 = performance.now();
  const id = await submitPlanned(db, queue, action, on, params, plan, opts);
  return { plan, ...(await waitForOperation(db, id, { ...opts, t0 })) };
}

/** Submits `plan` as the user confirmed it (its digest, what the page asks to type); the operation's id. */
export async function submitPlanned(
  db: Db,
  queue: TestWorker['queue'],
  action: AnyAction,
  on: { instanceIds: number[] } | { herdIds: number[] },
  params: Record<string, unknown>,
  plan: Awaited<ReturnType<typeof planOperation>>,
  opts: { username?: string } = {},
): Promise<number> {
  const { id } = await submitOperation(
    db,
    queue,
    action,
    { ...on, params, digest: plan.digest, confirmation: plan.typeToConfirm ?? '', idempotencyKey: randomBytes(8).toString('hex') },
    { id: null, username: opts.username ?? 'test', access: SYSTEM_ACCESS },
  );
  return id;
}

/** Follows operation `id` until it ends: it, its targets and their steps, and how long since `t0`. */
export async function waitForOperation(db: Db, id: number, opts: { timeoutMs?: number; t0?: number } = {}) {
  const t0 = opts.t0 ?? performance.now();
  const op = await waitFor(
    `operation ${id} to finish`,
    async () => {
      const [o] = await db.select().from(operations).where(eq(operations.id, id));
      return o?.finishedAt ? o : undefined;
    },
    opts.timeoutMs ?? 240_000,
  );
  const ms = performance.now() - t0;
  const targets = await db.select().from(operationTargets).where(eq(operationTargets.operationId, id)).orderBy(operationTargets.id);
  const steps = await db
    .select()
    .from(operationSteps)
    .where(
      inArray(
        operationSteps.targetId,
        targets.map((x) => x.id),
      ),
    )
    .orderBy(operationSteps.targetId, operationSteps.seq);
  return { op, targets, steps, ms };
}
