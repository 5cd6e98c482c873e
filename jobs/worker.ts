// npm run worker: one process of the worker pool. Several may run against one Redis and one database.
import { startWorker } from '../lib/ops/worker';

function required(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`worker: ${name} is not set (see README: Configuration)`);
    process.exit(2);
  }
  return v;
}

async function main() {
  const w = await startWorker({
    databaseUrl: required('DATABASE_URL'),
    redisUrl: required('REDIS_URL'),
    sshKeyPath: required('PGHERD_SSH_KEY'),
    concurrency: Number(process.env.PGHERD_WORKER_CONCURRENCY ?? 8),
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

main().catch((err) => {
  console.error(`worker: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
