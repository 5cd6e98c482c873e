// npm run worker: one process of the worker pool. Several may run against one Redis and one database.
import { metricsToken, parseListen } from '@/lib/features/metrics/serve';
import { startWorker } from '@/jobs/start-worker';
import { intSetting } from '@/lib/adapters/validation/settings';

function required(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`worker: ${name} is not set (see docs/configuration.md)`);
    process.exit(2);
  }
  return v;
}

/** A setting that parses, or the worker stops at start saying what is wrong with it. */
function checked<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    console.error(`worker: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
}

async function main() {
  const listen = process.env.PGHERD_WORKER_METRICS_LISTEN;
  const w = await startWorker({
    databaseUrl: required('DATABASE_URL'),
    redisUrl: required('REDIS_URL'),
    sshKeyPath: process.env.PGHERD_SSH_KEY || (process.env.PGHERD_SSH_KEYS ? undefined : required('PGHERD_SSH_KEY')),
    concurrency: checked(() => intSetting('PGHERD_WORKER_CONCURRENCY', 8, 1, 256)),
    refreshEveryMs: checked(() => intSetting('PGHERD_REFRESH_INTERVAL_MS', 30_000, 0, 86_400_000)),
    metricsListen: listen ? checked(() => parseListen('PGHERD_WORKER_METRICS_LISTEN', listen)) : null,
    metricsToken: checked(() => metricsToken()),
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
