// npm run worker: one process of the worker pool. Several may run against one Redis and one database.
import { startWorker } from '@/jobs/start-worker';
import { checkSettings, setting } from '@/lib/settings/settings';

function required(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`worker: ${name} is not set (see docs/configuration.md)`);
    process.exit(2);
  }
  return v;
}

async function main() {
  // Every setting checked before anything starts: a bad one stops the worker here, saying which.
  checkSettings('worker');
  const sshKeyPath = setting('PGHERD_SSH_KEY');
  if (sshKeyPath === null && setting('PGHERD_SSH_KEYS') === null) {
    console.error('worker: PGHERD_SSH_KEY is not set, nor PGHERD_SSH_KEYS (see docs/configuration.md)');
    process.exit(2);
  }
  const w = await startWorker({
    databaseUrl: required('DATABASE_URL'),
    redisUrl: required('REDIS_URL'),
    sshKeyPath: sshKeyPath ?? undefined,
    concurrency: setting('PGHERD_WORKER_CONCURRENCY'),
    refreshEveryMs: setting('PGHERD_REFRESH_INTERVAL_MS'),
    metricsListen: setting('PGHERD_WORKER_METRICS_LISTEN'),
    metricsToken: setting('PGHERD_METRICS_TOKEN'),
  });
  let closing = false;
  const stop = async () => {
    if (closing) return;
    closing = true;
    await w.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err: unknown) => {
  console.error(`worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
