// The worker pool process: takes targets off the queue and executes them; reconciles at start and
// periodically; closes gracefully (finishing the targets it runs) on SIGTERM.
import os from 'node:os';
import { createDb } from '@/db/client';
import { logLine, throttled } from '@/lib/adapters/log/log';
import { pgAccessConfig } from '@/lib/fleet/pg-access';
import { readBackupSecretsInThisProcess } from '@/lib/fleet/backups/secrets';
import { liveSshKeys } from '@/lib/adapters/ssh/keys';
import { setting } from '@/lib/settings/settings';
import { fleetSsh } from '@/lib/fleet/fleet-ssh';
import { errorText } from '@/lib/engine/errors';
import { reconcile } from '@/lib/engine/execute-target';
import { getAction } from '@/lib/actions/registry';
import { settleOwed } from '@/lib/actions/steps/settle-owed';
import { settleRestoreClaims } from '@/lib/actions/backups/settle-claims';
import { runConductor } from '@/lib/engine/conductor';
import { enqueueTargets, queuePrefix, requeueTargets, targetQueue, workerConnection } from '@/lib/engine/queue';
import { discoveryConfig } from '@/lib/features/discovery/discovery';
import { awsEnvironments } from '@/lib/adapters/aws/environments';
import { liveWorkers, registerWorker, workerStopped } from '@/lib/engine/workers-alive';
import { startRuleClock } from '@/lib/features/rules/scheduler';
import { ruleQueue } from '@/lib/features/rules/rule-queue';
import { metrics } from '@/lib/adapters/metrics/registry';
import { listenForMetrics } from '@/lib/features/metrics/serve';
import { consumeTargets } from './target-consumer';
import { workerChores } from './worker-chores';
import type { WorkerConfig } from './worker-config';
import { choreRunner } from './chores';

export { logLine };

export async function startWorker(cfg: WorkerConfig) {
  const log = cfg.quiet ? () => {} : logLine;
  const holder = `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  pgAccessConfig(); // a broken PGHERD_PG_CONFIG stops the worker at start, saying what is wrong
  // The one process that reads the backup repositories' secrets (the web process plans with their file names).
  readBackupSecretsInThisProcess();
  const discovery = discoveryConfig(); // so does a bad PGHERD_AWS_DISCOVERY
  awsEnvironments(); // and a bad PGHERD_AWS_ENVIRONMENTS
  // A connection is given up after PGHERD_DB_CONNECT_TIMEOUT_MS, as the console's are: one opened as
  // pgherd's database goes away (a failover, a lost site, a cut link) may otherwise wait forever for
  // an answer, and the target waiting on it with it.
  const { db, pool } = createDb(cfg.databaseUrl, (cfg.concurrency ?? 8) + 4, {
    connectionTimeoutMillis: setting('PGHERD_DB_CONNECT_TIMEOUT_MS'),
  });
  const ssh = fleetSsh(db, log, liveSshKeys(cfg.sshKeyPath));
  const producer = workerConnection(cfg.redisUrl);
  const prefix = cfg.queuePrefix ?? queuePrefix();
  const queue = targetQueue(producer, prefix);
  // A Redis restart is an event to record, not an unhandled error on stderr (once per kind per 5 s).
  const quietly = throttled(log, 5000);
  producer.on('error', (err) => quietly('redis.error', { connection: 'producer', error: err.message }));
  queue.on('error', (err) => quietly('queue.error', { error: err.message }));

  // This process, as the console sees it: alive while it says so every few seconds.
  const refreshIntervalMs = cfg.refreshEveryMs ?? setting('PGHERD_REFRESH_INTERVAL_MS');
  await registerWorker(db, holder, cfg.concurrency ?? 8, refreshIntervalMs);
  // Workers that refresh at different intervals share the refresh at the slowest one's pace: said at
  // start (and on the console's dashboard while they run).
  const others = (await liveWorkers(db)).filter((w) => w.holder !== holder && w.refreshIntervalMs > 0);
  if (refreshIntervalMs > 0 && others.some((w) => w.refreshIntervalMs !== refreshIntervalMs))
    log('refresh.interval_mismatch', {
      mine: refreshIntervalMs,
      others: others.map((w) => ({ holder: w.holder, hostname: w.hostname, refreshIntervalMs: w.refreshIntervalMs })),
    });

  const reconcileNow = async () => {
    const r = await reconcile(db);
    if (r.interrupted.length) log('reconcile.interrupted', { targets: r.interrupted });
    // A queued target whose job Redis lost, or whose job failed while pgherd's database was down (it
    // sits in the failed set under the same id, so adding it again would do nothing), gets a new job.
    await enqueueTargets(queue, r.queued);
    const requeued = await requeueTargets(queue, r.stale);
    if (requeued.length) log('reconcile.requeued', { targets: requeued });
    // What targets that ended (or died) owe clients: a PgBouncer left paused is resumed now, not at its bound.
    await settleOwed(db, ssh, log);
    // A restore whose worker died: the copy it laid out is stopped and removed, never left running untracked.
    await settleRestoreClaims(db, ssh, log);
  };
  await reconcileNow();

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

  // The targets: run here as the queue hands them out.
  const targets = consumeTargets({
    db,
    ssh,
    actionNamed: getAction,
    holder,
    redisUrl: cfg.redisUrl,
    prefix,
    concurrency: cfg.concurrency ?? 8,
    log,
    quietly,
    beforeSteps: cfg.beforeSteps,
  });

  const choreSet = workerChores({
    cfg,
    db,
    ssh,
    holder,
    queue,
    rulesQueue,
    clock,
    discovery,
    reconcileNow,
    runner: () => chores,
    log,
    quietly,
  });
  const chores = choreRunner(choreSet.chores, { db, holder, log });
  await chores.start();
  // Rolling operations: one worker at a time moves them from wave to wave.
  const conductor = runConductor(cfg.databaseUrl, db, queue, { holder, everyMs: cfg.waveRoundMs, log });
  // Its own metrics (targets, steps, lease waits, and the process's), on an address of its own.
  const ownMetrics = cfg.metricsListen ? await listenForMetrics(cfg.metricsListen, metrics().registry, cfg.metricsToken ?? null) : null;
  log('worker.ready', { holder, concurrency: cfg.concurrency ?? 8, metrics: ownMetrics?.url ?? 'off' });

  return {
    holder,
    /** Where GET /metrics is answered (null: not served). */
    metricsUrl: ownMetrics?.url ?? null,
    async close() {
      // A close that takes long says every 10 s what it still waits for (a target's step, a chore),
      // quiet or not: a process that does not stop must say why.
      // Nothing new starts from here (a chore's clock, a notification); what runs is waited for below.
      chores.stop();
      choreSet.stopRefresh();
      const phase = { now: 'conductor' };
      const waiting = setInterval(
        () =>
          logLine('worker.closing', {
            holder,
            waitingFor: phase.now,
            targets: targets.running(),
            chores: chores.inFlight(),
            // Connections of the pool checked out and not given back: what its end waits for.
            checkedOut: pool.totalCount - pool.idleCount,
          }),
        10_000,
      );
      try {
        await conductor.close();
        phase.now = 'rules';
        await clock.worker.close();
        phase.now = 'targets';
        await targets.close(); // waits for the targets in progress
        phase.now = 'chores';
        await chores.close();
        // Each of the rest named too: a close that hangs on its connections says which.
        phase.now = 'its row in workers';
        await workerStopped(db, holder).catch((err: unknown) => log('worker.stop.error', { error: errorText(err) }));
        phase.now = 'the queues';
        await queue.close();
        await rulesQueue.close();
        // BullMQ closes the connections it made, not the ones it was given.
        producer.disconnect();
        rulesProducer.disconnect();
        rulesConsumer.disconnect();
        phase.now = 'SSH connections';
        await ssh.close();
        phase.now = 'the LISTEN client';
        await choreSet.closeListener();
        phase.now = 'the metrics listener';
        await ownMetrics?.close();
        phase.now = 'the database pool (a client not given back)';
        await pool.end();
      } finally {
        clearInterval(waiting);
      }
      log('worker.stopped', { holder });
    },
  };
}
