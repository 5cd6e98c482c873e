// The queue transport: one BullMQ queue of operation targets. Payloads carry ids, never secrets;
// the job id is the target's id, so enqueuing a target twice is a no-op.
import { Queue } from 'bullmq';
import IORedis, { type RedisOptions } from 'ioredis';
import { setting } from '@/lib/settings/settings';

export const TARGET_QUEUE = 'pgherd-targets';

/**
 * The Redis key prefix of pgherd's queue: two installations (or two test files with their own
 * databases) sharing one Redis must not take each other's jobs.
 */
export const queuePrefix = () => setting('PGHERD_QUEUE_PREFIX');

export interface TargetJob {
  targetId: number;
  /** How many times it has waited for its herd's lease or a cap (its next wait is longer). */
  waits?: number;
}

export const jobId = (targetId: number) => `target-${targetId}`;

/** The master Redis Sentinel names: `redis+sentinel://[:password@]host:port,host:port,.../<master name>[/<db>]`. */
export interface SentinelUrl {
  sentinels: { host: string; port: number }[];
  name: string;
  username?: string;
  password?: string;
  db?: number;
}

/**
 * Reads REDIS_URL's Sentinel form (null for a plain `redis://` URL): every connection then asks the
 * sentinels where the master is, and asks again when it is lost (ioredis's Sentinel support), so a
 * failover moves the queue's connections without a restart. Throws, saying why, on a malformed one.
 */
export function sentinelUrl(url: string): SentinelUrl | null {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'redis+sentinel' && scheme.startsWith('redis+'))
    throw new Error(`REDIS_URL: ${scheme}:// is not a form pgherd reads (redis://, rediss:// or redis+sentinel://)`);
  if (scheme !== 'redis+sentinel') return null;
  if (url.includes('?')) throw new Error('REDIS_URL: a Sentinel URL takes no query string (its password goes before the hosts)');
  const m = /^[^:]+:\/\/(?:(?<user>[^:@/]*):(?<password>[^@/]*)@)?(?<hosts>[^/@]+)\/(?<name>[^/]+)(?:\/(?<db>\d+))?\/?$/.exec(url)?.groups;
  if (!m?.hosts || !m.name)
    throw new Error('REDIS_URL: a Sentinel URL is redis+sentinel://[[user]:password@]host:port,host:port/<master name>[/<db>]');
  const sentinels = m.hosts.split(',').map((hp) => {
    const at = /^\[?(?<host>[^\]]+?)\]?:(?<port>\d{1,5})$/.exec(hp.trim())?.groups;
    const port = Number(at?.port);
    if (!at?.host || !(port >= 1 && port <= 65535)) throw new Error(`REDIS_URL: "${hp}" is not host:port (a port 1 to 65535)`);
    return { host: at.host, port };
  });
  return {
    sentinels,
    name: decodeURIComponent(m.name),
    ...(m.user ? { username: decodeURIComponent(m.user) } : {}),
    ...(m.password ? { password: decodeURIComponent(m.password) } : {}),
    ...(m.db ? { db: Number(m.db) } : {}),
  };
}

/** A connection to REDIS_URL with `opts`: to the master its sentinels name, for the Sentinel form. */
function connect(url: string, opts: RedisOptions): IORedis {
  const s = sentinelUrl(url);
  return s ? new IORedis({ ...opts, ...s }) : new IORedis(url, opts);
}

/** Workers block on Redis: no per-request retry limit (BullMQ requires it). */
export function workerConnection(url: string): IORedis {
  return connect(url, { maxRetriesPerRequest: null });
}

/** Producers fail fast when Redis is down: the operation is in Postgres, the worker's reconcile enqueues it. */
export function producerConnection(url: string): IORedis {
  return connect(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, lazyConnect: false });
}

export function targetQueue(connection: IORedis, prefix = queuePrefix()): Queue<TargetJob> {
  return new Queue<TargetJob>(TARGET_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: { count: 1000 }, removeOnFail: false, attempts: 1 },
  });
}

const JOBS_A_BATCH = 250;
const FIRST_BATCH = 25;

/**
 * In batches, in order: the workers start on the first targets while the rest are being added (one
 * batch of 10,000 jobs keeps Redis busy for a third of a second before any of them can be taken; one
 * of 250, 12 ms, which a wave of a rolling operation waited for at each of its starts). The first
 * batch is small, enough for a worker pool's slots.
 */
export async function enqueueTargets(queue: Queue<TargetJob>, targetIds: number[]): Promise<void> {
  for (let i = 0; i < targetIds.length;) {
    const n = i === 0 ? FIRST_BATCH : JOBS_A_BATCH;
    await queue.addBulk(
      targetIds.slice(i, i + n).map((targetId) => ({ name: 'target', data: { targetId }, opts: { jobId: jobId(targetId) } })),
    );
    i += n;
  }
}

/**
 * Makes sure each queued target has a job that will run: adds one where there is none (Redis lost
 * it) and replaces one that already ended (failed while pgherd's database was down, say: its id
 * stays taken, so a plain add would do nothing). Jobs waiting, delayed or active are left alone; the
 * claim makes a second delivery harmless anyway. Returns the targets that got a new job.
 */
export async function requeueTargets(queue: Queue<TargetJob>, targetIds: number[]): Promise<number[]> {
  const states = await Promise.all(targetIds.map(async (id) => ({ id, state: await queue.getJobState(jobId(id)) })));
  const ended = states.filter((s) => s.state === 'failed' || s.state === 'completed');
  await Promise.all(ended.map(async (s) => (await queue.getJob(jobId(s.id)))?.remove()));
  const again = states.filter((s) => s.state === 'unknown' || s.state === 'failed' || s.state === 'completed').map((s) => s.id);
  await enqueueTargets(queue, again);
  return again;
}
