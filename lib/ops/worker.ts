// The worker pool process: takes targets off the queue and executes them; reconciles at start and
// periodically; closes gracefully (finishing the targets it runs) on SIGTERM.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { DelayedError, Worker, type Job } from 'bullmq';
import { createDb } from '@/db/client';
import { SshPool } from '@/lib/ssh/ssh-client';
import { servers } from '@/db/schema';
import { eq, and, isNull } from 'drizzle-orm';
import { executeTarget, reconcile } from './execute-target';
import { enqueueTargets, TARGET_QUEUE, targetQueue, workerConnection, type TargetJob } from './queue';

export interface WorkerConfig {
  databaseUrl: string;
  redisUrl: string;
  sshKeyPath: string;
  concurrency?: number;
  reconcileEveryMs?: number;
}

export function log(event: string, fields: object = {}) {
  console.log(JSON.stringify({ at: new Date().toISOString(), event, ...fields }));
}

export async function startWorker(cfg: WorkerConfig) {
  const holder = `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const { db, pool } = createDb(cfg.databaseUrl, (cfg.concurrency ?? 8) + 4);
  const ssh = new SshPool({
    privateKey: readFileSync(cfg.sshKeyPath),
    log: (e, f) => { if (e !== 'ssh.exec.start' && e !== 'ssh.exec.end') log(e, f); },
    // Pin the host key seen on first contact (the server form shows it; an admin can reset it).
    onFirstContact: async (t, fp) => {
      await db.update(servers).set({ sshHostKeyFingerprint: fp })
        .where(and(eq(servers.address, t.host), isNull(servers.sshHostKeyFingerprint)));
      log('ssh.hostkey.pinned', { host: t.host, fingerprint: fp });
    },
  });
  const producer = workerConnection(cfg.redisUrl);
  const queue = targetQueue(producer);

  const doReconcile = async () => {
    const r = await reconcile(db);
    if (r.interrupted.length) log('reconcile.interrupted', { targets: r.interrupted });
    await enqueueTargets(queue, r.queued);
  };
  await doReconcile();

  const worker = new Worker<TargetJob>(TARGET_QUEUE, async (job: Job<TargetJob>, token?: string) => {
    const outcome = await executeTarget(db, ssh, job.data.targetId, holder, log);
    if (outcome === 'wait') {
      // The herd is busy: come back shortly without holding a worker slot.
      await job.moveToDelayed(Date.now() + 150 + Math.floor(Math.random() * 100), token);
      throw new DelayedError();
    }
    return outcome;
  }, { connection: workerConnection(cfg.redisUrl), concurrency: cfg.concurrency ?? 8 });
  worker.on('failed', (job, err) => log('job.failed', { jobId: job?.id, error: err.message }));

  const timer = setInterval(() => { doReconcile().catch((err) => log('reconcile.error', { error: String(err) })); }, cfg.reconcileEveryMs ?? 10_000);
  log('worker.ready', { holder, concurrency: cfg.concurrency ?? 8 });

  return {
    holder,
    async close() {
      clearInterval(timer);
      await worker.close(); // waits for the targets in progress
      await queue.close();
      producer.disconnect();
      await ssh.close();
      await pool.end();
      log('worker.stopped', { holder });
    },
  };
}
