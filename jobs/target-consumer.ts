// The worker's consumer of targets: one BullMQ worker over the targets' queue that runs each target it
// is given (lib/engine/execute-target.ts), and puts back, a little later each time, one whose herd is busy.
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Db } from '@/db/client';
import type { SshPool } from '@/lib/adapters/ssh/ssh-client';
import type { ActionLookup } from '@/lib/engine/define-action';
import { errorText } from '@/lib/engine/errors';
import { executeTarget } from '@/lib/engine/execute-target';
import { TARGET_QUEUE, workerConnection, type TargetJob } from '@/lib/engine/queue';

/** 150-240 ms after the first wait, growing by half each time to about 1 s (with jitter, so waiters spread out). */
export const waitDelayMs = (waits: number) => Math.min(1000, 150 * 1.5 ** Math.min(waits, 10)) * (1 + Math.random() * 0.6);

/** How soon an urgent target whose herd's holder was asked to stop looks again (the holder stops within a step's end). */
const PREEMPTING_POLL_MS = 200;

export interface ConsumerDeps {
  db: Db;
  ssh: SshPool;
  actionNamed: ActionLookup;
  holder: string;
  redisUrl: string;
  prefix: string;
  concurrency: number;
  log: (event: string, fields: object) => void;
  /** Once per kind per few seconds: what a Redis restart says over and over. */
  quietly: (event: string, fields: object) => void;
  beforeSteps?: () => Promise<void>;
}

export function consumeTargets(d: ConsumerDeps) {
  const { db, ssh, holder, log, quietly } = d;
  // The targets this process runs now (what a close waits for, said while it waits).
  const running = new Set<number>();
  const consumer = workerConnection(d.redisUrl);
  consumer.on('error', (err) => quietly('redis.error', { connection: 'consumer', error: err.message }));
  const runner = { db, ssh, actionNamed: d.actionNamed, holder, log, ...(d.beforeSteps ? { beforeSteps: d.beforeSteps } : {}) };
  const worker = new Worker<TargetJob>(
    TARGET_QUEUE,
    async (job: Job<TargetJob>, token?: string) => {
      running.add(job.data.targetId);
      const outcome = await executeTarget(runner, job.data.targetId).finally(() => running.delete(job.data.targetId));
      if (outcome === 'preempting') {
        // An urgent target whose herd's holder was asked to stop: back as soon as it may have.
        await job.moveToDelayed(Date.now() + PREEMPTING_POLL_MS, token);
        throw new DelayedError();
      }
      if (outcome === 'wait') {
        // The herd is busy, or its site or environment is at its cap: come back later without holding
        // a worker slot, a little later each time (a cap of 2 over 500 targets must not poll 500 times
        // a tenth of a second).
        const waits = job.data.waits ?? 0;
        await job.updateData({ ...job.data, waits: waits + 1 });
        await job.moveToDelayed(Date.now() + waitDelayMs(waits), token);
        throw new DelayedError();
      }
      return outcome;
    },
    { connection: consumer, prefix: d.prefix, concurrency: d.concurrency },
  );
  worker.on('failed', (job, err) =>
    log('job.failed', { jobId: job?.id, error: err.message, cause: err.cause === undefined ? '' : errorText(err.cause) }),
  );
  // BullMQ reports here what goes wrong outside a job (a job whose keys a Redis restart lost: "Missing key for job").
  worker.on('error', (err) => quietly('worker.error', { error: err.message }));
  return {
    /** The targets this process runs now. */
    running: () => [...running],
    /** Waits for the targets in progress, then lets go of Redis. */
    async close() {
      await worker.close();
      // BullMQ closes the connections it made, not the ones it was given.
      consumer.disconnect();
    },
  };
}
