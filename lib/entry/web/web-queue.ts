// The web process's handle on the queues: one producer connection, made on first use.
import type { Queue } from 'bullmq';
import type IORedis from 'ioredis';
import { ruleQueue, type RuleJob } from '@/lib/features/rules/rule-queue';
import { logLine, throttled } from '@/lib/adapters/log/log';
import { producerConnection, queuePrefix, targetQueue, type TargetJob } from '@/lib/engine/queue';

const g = globalThis as unknown as {
  __pgherdRedis?: IORedis | null;
  __pgherdQueue?: Queue<TargetJob> | null;
  __pgherdRuleQueue?: Queue<RuleJob> | null;
};

// Redis away: one line per kind of error every 5 s, never BullMQ's unhandled-error stack traces.
const quietly = throttled(logLine, 5000);

function connection(): IORedis | null {
  if (g.__pgherdRedis === undefined) {
    const url = process.env.REDIS_URL;
    if (!url) g.__pgherdRedis = null;
    else {
      const conn = producerConnection(url);
      conn.on('error', (err) => quietly('redis.producer.error', { error: err.message }));
      g.__pgherdRedis = conn;
    }
  }
  return g.__pgherdRedis;
}

/** Null without REDIS_URL: operations still land in Postgres, and a worker's reconcile enqueues them. */
export function webQueue(): Queue<TargetJob> | null {
  if (g.__pgherdQueue === undefined) {
    const conn = connection();
    g.__pgherdQueue = conn ? targetQueue(conn) : null;
    g.__pgherdQueue?.on('error', (err) => quietly('queue.error', { error: err.message }));
  }
  return g.__pgherdQueue;
}

/** The rules' queue (run now), likewise: a run left without its job is given one by a worker's reconcile. */
export function webRuleQueue(): Queue<RuleJob> | null {
  if (g.__pgherdRuleQueue === undefined) {
    const conn = connection();
    g.__pgherdRuleQueue = conn ? ruleQueue(conn, queuePrefix()) : null;
    g.__pgherdRuleQueue?.on('error', (err) => quietly('queue.error', { queue: 'rules', error: err.message }));
  }
  return g.__pgherdRuleQueue;
}

/**
 * PING through the producer connection (null without REDIS_URL): what /readyz asks of the queue. A
 * connection still being made (the first probe after the start, or after a failover) is waited for up
 * to `waitMs`: the producer queues no command while it connects.
 */
export function webRedisPing(waitMs = 1500): (() => Promise<string>) | null {
  const conn = connection();
  if (!conn) return null;
  return async () => {
    if (conn.status !== 'ready')
      await new Promise<void>((resolve, reject) => {
        const ready = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          conn.off('ready', ready);
          reject(new Error(`Redis is ${conn.status}`));
        }, waitMs);
        conn.once('ready', ready);
      });
    return conn.ping();
  };
}
