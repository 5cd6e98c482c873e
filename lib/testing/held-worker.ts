// A worker process that holds every target "running" for a minute before its first step, for the
// test that kills a worker mid-operation (lib/engine/engine.int.test.ts). Configured like jobs/worker.ts.
import { setTimeout as sleep } from 'node:timers/promises';
import { startWorker } from '@/jobs/start-worker';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

startWorker({
  databaseUrl: env('DATABASE_URL'),
  redisUrl: env('REDIS_URL'),
  sshKeyPath: env('PGHERD_SSH_KEY'),
  beforeSteps: () => sleep(60_000),
}).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
