// The web process's handle on the queue: one producer connection, made on first use.
import type { Queue } from 'bullmq';
import { producerConnection, targetQueue, type TargetJob } from './queue';

const g = globalThis as unknown as { __pgherdQueue?: Queue<TargetJob> | null };

/** Null without REDIS_URL: operations still land in Postgres, and a worker's reconcile enqueues them. */
export function webQueue(): Queue<TargetJob> | null {
  if (g.__pgherdQueue === undefined) {
    const url = process.env.REDIS_URL;
    if (!url) {
      g.__pgherdQueue = null;
    } else {
      const conn = producerConnection(url);
      conn.on('error', (err) => console.error(JSON.stringify({ event: 'redis.producer.error', message: err.message })));
      g.__pgherdQueue = targetQueue(conn);
    }
  }
  return g.__pgherdQueue;
}
