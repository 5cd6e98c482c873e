// The worker pool process: takes targets off the queue and executes them; reconciles at start and
// periodically; closes gracefully (finishing the targets it runs) on SIGTERM.
import os from 'node:os';
import { DelayedError, Worker, type Job } from 'bullmq';
import { createDb } from '@/db/client';
import { logLine, throttled } from '@/lib/adapters/log/log';
import { pgAccessConfig } from '@/lib/fleet/pg-access';
import { sql } from 'drizzle-orm';
import { parseSshKeys } from '@/lib/adapters/ssh/keys';
import { setting } from '@/lib/adapters/settings/settings';
import { fleetSsh } from '@/lib/fleet/fleet-ssh';
import { errorText } from '@/lib/engine/errors';
import { executeTarget, reconcile } from '@/lib/engine/execute-target';
import { getAction } from '@/lib/actions/registry';
import { settleOwed } from '@/lib/actions/steps/settle-owed';
import { runConductor } from '@/lib/engine/conductor';
import { checkDnsRecords, refreshFleet } from '@/lib/fleet/refresher';
import { followEveryMs, followPatroni } from '@/lib/features/patroni/follow';
import {
  enqueueTargets,
  queuePrefix,
  requeueTargets,
  TARGET_QUEUE,
  targetQueue,
  workerConnection,
  type TargetJob,
} from '@/lib/engine/queue';
import pg from 'pg';
import { discoveryConfig } from '@/lib/features/discovery/discovery';
import { awsEnvironments } from '@/lib/adapters/aws/environments';
import { DISCOVERY_CHANNEL, discoveryWanted, runDiscovery } from '@/lib/features/discovery/discovery-runs';
import { ec2Client } from '@/lib/adapters/aws/config';
import { registerWorker, WORKER_ALIVE_EVERY_MS, workerAlive, workerStopped } from '@/lib/engine/workers-alive';
import { reconcileRuns, startRuleClock } from '@/lib/features/rules/scheduler';
import { enqueueRun, ruleQueue } from '@/lib/features/rules/rule-queue';
import { RULES_CHANNEL } from '@/lib/features/rules/rules';
import { retryFailedTargets } from '@/lib/features/rules/fire';
import { deliverDue, NOTIFICATIONS_CHANNEL, processEvents } from '@/lib/features/rules/webhooks';
import { metrics } from '@/lib/adapters/metrics/registry';
import { foldLagSamples, lagSampleEveryMs, sampleLag } from '@/lib/fleet/lag-history';
import { listenForMetrics } from '@/lib/features/metrics/serve';

export interface WorkerConfig {
  databaseUrl: string;
  redisUrl: string;
  /** The SSH key of environments PGHERD_SSH_KEYS does not list (PGHERD_SSH_KEY). */
  sshKeyPath?: string;
  concurrency?: number;
  reconcileEveryMs?: number;
  /** The queue's Redis key prefix (default PGHERD_QUEUE_PREFIX, else "pgherd"). */
  queuePrefix?: string;
  /** How often the fleet's state is refreshed (one worker at a time does it); 0: never. */
  refreshEveryMs?: number;
  /** No log lines (benchmarks and tests that print their own). */
  quiet?: boolean;
  /** How often the wave conductor samples health gates (and looks for waves that ended); default PGHERD_WAVE_ROUND_MS, else 1 s. */
  waveRoundMs?: number;
  /** Awaited once a target is claimed, before its first step (a test holds a target running here to kill the worker). */
  beforeSteps?: () => Promise<void>;
  /** Rules: fires younger than this are left to the job schedulers; older ones not recorded are caught up (default 30 s). */
  ruleCatchUpSlackMs?: number;
  /** How often the rules' schedulers are checked against the rules table and missed fires looked for (default 60 s). */
  ruleReconcileEveryMs?: number;
  /** How often Patroni herds' /cluster is read for DNS to follow their leader (default PGHERD_PATRONI_FOLLOW_MS, else 5 s); 0: never. */
  patroniFollowEveryMs?: number;
  /** How often the fleet's lag and state are sampled for the charts (default PGHERD_LAG_SAMPLE_MS, else 60 s); 0: never. */
  lagSampleEveryMs?: number;
  /** Where this worker answers GET /metrics (PGHERD_WORKER_METRICS_LISTEN); none: not served. */
  metricsListen?: { host: string; port: number } | null;
  /** The token /metrics asks for (PGHERD_METRICS_TOKEN); null: none (the address alone guards it). */
  metricsToken?: string | null;
}

const REFRESH_LOCK = 72_842_001;
// After the refresh's, the conductor's (72_842_002) and the counts' compaction's (72842003, in SQL).
const DISCOVERY_LOCK = 72_842_004;
const PATRONI_FOLLOW_LOCK = 72_842_005;
const LAG_SAMPLE_LOCK = 72_842_006;
/** How often the lag samples older than a day are folded, and those past the retention deleted. */
const LAG_FOLD_EVERY_MS = 600_000;

/** 150-240 ms after the first wait, growing by half each time to about 1 s (with jitter, so waiters spread out). */
export const waitDelayMs = (waits: number) => Math.min(1000, 150 * 1.5 ** Math.min(waits, 10)) * (1 + Math.random() * 0.6);

export { logLine };

export async function startWorker(cfg: WorkerConfig) {
  const log = cfg.quiet ? () => {} : logLine;
  const holder = `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  pgAccessConfig(); // a broken PGHERD_PG_CONFIG stops the worker at start, saying what is wrong
  const discovery = discoveryConfig(); // so does a bad PGHERD_AWS_DISCOVERY
  awsEnvironments(); // and a bad PGHERD_AWS_ENVIRONMENTS
  const { db, pool } = createDb(cfg.databaseUrl, (cfg.concurrency ?? 8) + 4);
  const ssh = fleetSsh(db, log, parseSshKeys(setting('PGHERD_SSH_KEYS'), cfg.sshKeyPath));
  const producer = workerConnection(cfg.redisUrl);
  const prefix = cfg.queuePrefix ?? queuePrefix();
  const queue = targetQueue(producer, prefix);
  // A Redis restart is an event to record, not an unhandled error on stderr (once per kind per 5 s).
  const quietly = throttled(log, 5000);
  producer.on('error', (err) => quietly('redis.error', { connection: 'producer', error: err.message }));
  queue.on('error', (err) => quietly('queue.error', { error: err.message }));

  // This process, as the console sees it: alive while it says so every few seconds.
  await registerWorker(db, holder, cfg.concurrency ?? 8);

  const doReconcile = async () => {
    const r = await reconcile(db);
    if (r.interrupted.length) log('reconcile.interrupted', { targets: r.interrupted });
    // A queued target whose job Redis lost, or whose job failed while pgherd's database was down (it
    // sits in the failed set under the same id, so adding it again would do nothing), gets a new job.
    await enqueueTargets(queue, r.queued);
    const requeued = await requeueTargets(queue, r.stale);
    if (requeued.length) log('reconcile.requeued', { targets: requeued });
    // What targets that ended (or died) owe clients: a PgBouncer left paused is resumed now, not at its bound.
    await settleOwed(db, ssh, log);
  };
  await doReconcile();

  // Rules (lib/features/rules): their own queue, fired by job schedulers rebuilt from the rules table.
  const rulesProducer = workerConnection(cfg.redisUrl);
  rulesProducer.on('error', (err) => quietly('redis.error', { connection: 'rules-producer', error: err.message }));
  const rulesQueue = ruleQueue(rulesProducer, prefix);
  rulesQueue.on('error', (err) => quietly('queue.error', { queue: 'rules', error: err.message }));
  const rulesConsumer = workerConnection(cfg.redisUrl);
  rulesConsumer.on('error', (err) => quietly('redis.error', { connection: 'rules-consumer', error: err.message }));
  const clock = startRuleClock({ db, queue, log }, rulesConsumer, rulesQueue, prefix, {
    concurrency: 4,
    catchUpSlackMs: cfg.ruleCatchUpSlackMs,
  });
  // At start: the schedulers as the table says (Redis may have lost them), then the fires missed meanwhile.
  await clock.start();

  // The targets this process runs now (what a close waits for, said while it waits).
  const running = new Set<number>();
  const consumer = workerConnection(cfg.redisUrl);
  consumer.on('error', (err) => quietly('redis.error', { connection: 'consumer', error: err.message }));
  const worker = new Worker<TargetJob>(
    TARGET_QUEUE,
    async (job: Job<TargetJob>, token?: string) => {
      running.add(job.data.targetId);
      const outcome = await executeTarget(db, ssh, getAction, job.data.targetId, holder, log, cfg.beforeSteps).finally(() =>
        running.delete(job.data.targetId),
      );
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
    { connection: consumer, prefix, concurrency: cfg.concurrency ?? 8 },
  );
  worker.on('failed', (job, err) =>
    log('job.failed', { jobId: job?.id, error: err.message, cause: err.cause === undefined ? '' : errorText(err.cause) }),
  );
  // BullMQ reports here what goes wrong outside a job (a job whose keys a Redis restart lost: "Missing key for job").
  worker.on('error', (err) => quietly('worker.error', { error: err.message }));

  // Background chores in flight: close() waits for them before it ends the pool they use.
  const chores = new Map<Promise<void>, string>();
  const chore = (name: string, fn: () => Promise<void>) => {
    const p = fn()
      .catch((err: unknown) => log(`${name}.error`, { error: errorText(err) }))
      .finally(() => chores.delete(p));
    chores.set(p, name);
  };
  // Notifications: the outbox into deliveries, then the deliveries due (one pass at a time here; workers share them).
  // A rule's operation that failed: its failed targets again, when the rule retries.
  const retryFailed = async (ids: number[]) => {
    for (const id of ids) await retryFailedTargets({ db, queue, rules: rulesQueue, log }, id);
  };
  const notifyState = { running: false, wanted: false };
  const notify = async () => {
    if (notifyState.running) return void (notifyState.wanted = true);
    notifyState.running = true;
    const askedAgain = () => notifyState.wanted;
    try {
      do {
        notifyState.wanted = false;
        while ((await processEvents(db, undefined, retryFailed)) > 0);
        await deliverDue(db);
      } while (askedAgain());
    } finally {
      notifyState.running = false;
    }
  };
  const ruleEvery = cfg.ruleReconcileEveryMs ?? 60_000;
  let rulesCheckedAt = Date.now();
  // One reconcile at a time; a change announced while one runs gets another right after it.
  const rulesState = { running: false, wanted: false };
  const rulesReconcile = async () => {
    if (rulesState.running) return void (rulesState.wanted = true);
    rulesState.running = true;
    try {
      // (A function: the flag is set by a notification while the reconcile awaits.)
      const askedAgain = () => rulesState.wanted;
      do {
        rulesState.wanted = false;
        await clock.reconcile();
      } while (askedAgain());
    } finally {
      rulesState.running = false;
    }
  };
  const timer = setInterval(() => {
    chore('reconcile', doReconcile);
    chore('listen', listen);
    // Run-now requests left without a job; runs a worker died deciding.
    chore('rules.runs', () => reconcileRuns(db, rulesQueue));
    chore('notifications', notify);
    if (Date.now() - rulesCheckedAt >= ruleEvery) {
      rulesCheckedAt = Date.now();
      chore('rules.reconcile', rulesReconcile);
      chore('rules.catch_up', clock.catchUp);
    }
    // The changelists' kept counts: fold the journal the instances' triggers append to (one worker at a time).
    chore('counts.compact', async () => void (await db.execute(sql`SELECT pgherd_compact_instance_counts()`)));
    if (discovery) chore('discovery.tick', discoveryTick);
  }, cfg.reconcileEveryMs ?? 10_000);
  const aliveTimer = setInterval(() => chore('worker.alive', () => workerAlive(db, holder)), WORKER_ALIVE_EVERY_MS);

  // Several workers share one refresh: a session advisory lock elects whoever gets there first.
  const refreshEvery = cfg.refreshEveryMs ?? setting('PGHERD_REFRESH_INTERVAL_MS');
  // A chore several workers share: run by whoever takes its session advisory lock first, skipped by the others.
  const alone = async (lock: number, fn: () => Promise<void>) => {
    const client = await pool.connect();
    try {
      const {
        rows: [row],
      } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [lock]);
      if (!row?.ok) return;
      try {
        await fn();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [lock]);
      }
    } finally {
      client.release();
    }
  };
  let refreshing = false;
  const refresh = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      await alone(REFRESH_LOCK, async () => {
        log('refresh.done', await refreshFleet(db));
        log('refresh.dns', await checkDnsRecords(db));
      });
    } finally {
      refreshing = false;
    }
  };
  const refreshTimer = refreshEvery > 0 ? setInterval(() => chore('refresh', refresh), refreshEvery) : null;
  // DNS follows Patroni: its herds' leaders read every few seconds, by one worker at a time (lib/features/patroni/follow.ts).
  const followEvery = cfg.patroniFollowEveryMs ?? followEveryMs();
  let following = false;
  const follow = async () => {
    if (following) return;
    following = true;
    try {
      await alone(PATRONI_FOLLOW_LOCK, async () => {
        for (const r of await followPatroni(db, queue))
          if (r.operationId || r.reobserved || r.outcome.startsWith('error')) log('patroni.follow', r);
      });
    } finally {
      following = false;
    }
  };
  const followTimer = followEvery > 0 ? setInterval(() => chore('patroni.follow', follow), followEvery) : null;
  // Lag history: a sample of the fleet every minute, folded after a day (lib/fleet/lag-history.ts), by one worker at a time.
  const sampleEvery = cfg.lagSampleEveryMs ?? lagSampleEveryMs();
  let sampling = false;
  let foldedAt = 0;
  const sample = async () => {
    if (sampling) return;
    sampling = true;
    try {
      await alone(LAG_SAMPLE_LOCK, async () => {
        await sampleLag(db);
        if (Date.now() - foldedAt < LAG_FOLD_EVERY_MS) return;
        foldedAt = Date.now();
        const f = await foldLagSamples(db);
        if (f.folded || f.deleted) log('lag.folded', f);
      });
    } finally {
      sampling = false;
    }
  };
  const sampleTimer = sampleEvery > 0 ? setInterval(() => chore('lag.sample', sample), sampleEvery) : null;
  // EC2 discovery, when configured (PGHERD_AWS_DISCOVERY): one worker at a time, like the refresh; on
  // its schedule, and when a user asks (a row in discovery_runs, announced by NOTIFY, looked for on
  // every reconcile tick besides: a lost notification delays a pass, never loses it).
  const discoverEvery = setting('PGHERD_AWS_DISCOVERY_EVERY_MS');
  let discovering = false;
  // A pass asked for while one runs here is run right after it (that one may have claimed the asked-for
  // rows before this was asked: dropped, it would wait for the next reconcile tick).
  let askedMeanwhile = false;
  const discover = async (scheduled: boolean): Promise<void> => {
    if (!discovery) return;
    if (discovering) {
      if (!scheduled) askedMeanwhile = true;
      return;
    }
    discovering = true;
    try {
      await alone(DISCOVERY_LOCK, async () => {
        const summary = await runDiscovery(db, discovery, (region) => ec2Client(region), { scheduled });
        if (summary) log('discovery.done', summary);
      });
    } finally {
      discovering = false;
    }
    if (askedMeanwhile) {
      askedMeanwhile = false;
      await discover(false);
    }
  };
  const discoveryTimer = discovery && discoverEvery > 0 ? setInterval(() => chore('discovery', () => discover(true)), discoverEvery) : null;
  let listener: pg.Client | null = null;
  const listen = async () => {
    if (listener) return;
    const c = new pg.Client({ connectionString: cfg.databaseUrl, application_name: 'pgherd-worker-listen' });
    listener = c;
    c.on('error', (err) => quietly('listen.error', { error: err.message }));
    c.on('end', () => {
      if (listener === c) listener = null;
    });
    c.on('notification', (n) => {
      if (n.channel === NOTIFICATIONS_CHANNEL) return void chore('notifications', notify);
      const runId = n.channel === RULES_CHANNEL ? /^run:(\d+)$/.exec(n.payload ?? '')?.[1] : undefined;
      // Run now: its job (the same id as the one the console adds, so it runs once).
      if (runId) chore('rules.run', () => enqueueRun(rulesQueue, Number(runId)));
      // A rule changed: its schedulers now.
      else if (n.channel === RULES_CHANNEL) chore('rules.reconcile', rulesReconcile);
      else chore('discovery', () => discover(false));
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${RULES_CHANNEL}`);
      await c.query(`LISTEN ${NOTIFICATIONS_CHANNEL}`);
      if (discovery) await c.query(`LISTEN ${DISCOVERY_CHANNEL}`);
    } catch (err) {
      if (listener === c) listener = null;
      await c.end().catch(() => {});
      throw err;
    }
  };
  const discoveryTick = async () => {
    if (await discoveryWanted(db)) await discover(false);
  };
  // The listener (rule changes; discovery asked for), and again on every tick if it was lost.
  chore('listen', listen);
  if (discovery) chore('discovery', () => discover(true));
  // Rolling operations: one worker at a time moves them from wave to wave.
  const conductor = runConductor(cfg.databaseUrl, db, queue, { everyMs: cfg.waveRoundMs, log });
  // Its own metrics (targets, steps, lease waits, and the process's), on an address of its own.
  const ownMetrics = cfg.metricsListen ? await listenForMetrics(cfg.metricsListen, metrics().registry, cfg.metricsToken ?? null) : null;
  log('worker.ready', { holder, concurrency: cfg.concurrency ?? 8, metrics: ownMetrics?.url ?? 'off' });

  return {
    holder,
    /** Where GET /metrics is answered (null: not served). */
    metricsUrl: ownMetrics?.url ?? null,
    async close() {
      clearInterval(timer);
      clearInterval(aliveTimer);
      if (refreshTimer) clearInterval(refreshTimer);
      if (followTimer) clearInterval(followTimer);
      if (sampleTimer) clearInterval(sampleTimer);
      if (discoveryTimer) clearInterval(discoveryTimer);
      // A close that takes long says every 10 s what it still waits for (a target's step, a chore),
      // quiet or not: a process that does not stop must say why.
      const phase = { now: 'conductor' };
      const waiting = setInterval(
        () => logLine('worker.closing', { holder, waitingFor: phase.now, targets: [...running], chores: [...chores.values()] }),
        10_000,
      );
      try {
        await conductor.close();
        phase.now = 'rules';
        await clock.worker.close();
        phase.now = 'targets';
        await worker.close(); // waits for the targets in progress
        phase.now = 'chores';
        await Promise.all(chores.keys());
      } finally {
        clearInterval(waiting);
      }
      await workerStopped(db, holder).catch((err: unknown) => log('worker.stop.error', { error: errorText(err) }));
      await queue.close();
      await rulesQueue.close();
      // BullMQ closes the connections it made, not the ones it was given.
      producer.disconnect();
      consumer.disconnect();
      rulesProducer.disconnect();
      rulesConsumer.disconnect();
      await ssh.close();
      await listener?.end().catch(() => {});
      await ownMetrics?.close();
      await pool.end();
      log('worker.stopped', { holder });
    },
  };
}
