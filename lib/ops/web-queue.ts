// The web process's handle on the queue: one producer connection, made on first use.
import type { Queue } from 'bullmq';
import { logLine, throttled } from './log';
import { producerConnection, targetQueue, type TargetJob } from './queue';

const g = globalThis as unknown as { __pgherdQueue?: Queue<TargetJob> | null };

/** Null without REDIS_URL: operations still land in Postgres, and a worker's reconcile enqueues them. */
export function webQueue(): Queue<TargetJob> | null {
  if (g.__pgherdQueue === undefined) {
    const url = process.env.REDIS_URL;
    if (!url) {
      g.__pgherdQueue = null;
    } else {
      // Redis away: one line per kind of error every 5 s, never BullMQ's unhandled-error stack traces.
      const quietly = throttled(logLine, 5000);
      const conn = producerConnection(url);
      conn.on('error', (err) => quietly('redis.producer.error', { error: err.message }));
      const queue = targetQueue(conn);
      queue.on('error', (err) => quietly('queue.error', { error: err.message }));
      g.__pgherdQueue = queue;
    }
  }
  return g.__pgherdQueue;
}
