// npm run demo: the lab, pgherd's database seeded with the sandbox fleet, and the console.
// Ctrl-C or SIGTERM stops everything it started.
import { randomBytes } from 'node:crypto';
import { buildConsole, prepareDatabase, startConsole, startWorkerProcess, type RunningConsole } from '../lab/console';
import type { ChildProcess } from 'node:child_process';
import { stopPid } from '../lab/proc';
import { DEFAULT_LAB_FILE, readLab, startLab, stopLab, writeLab } from '../lab/lab';

const log = (m: string) => console.log(`demo: ${m}`);

async function main() {
  let stopping = false;
  let web: RunningConsole | undefined;
  let worker: ChildProcess | undefined;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping');
    await web?.stop();
    if (worker?.pid) await stopPid(worker.pid, 'SIGTERM', 10_000);
    await stopLab(DEFAULT_LAB_FILE, log);
    log('stopped; nothing left running');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    const t0 = Date.now();
    const lab = await startLab({ file: DEFAULT_LAB_FILE, log });
    const admin = { username: process.env.PGHERD_ADMIN_USERNAME ?? 'admin', password: process.env.PGHERD_ADMIN_PASSWORD ?? randomBytes(9).toString('base64url') };
    log('migrating and seeding pgherd\'s database');
    const { apiToken } = await prepareDatabase(lab, admin);
    if (process.env.PGHERD_SKIP_BUILD !== '1') buildConsole(log);
    if (stopping) return;
    log('starting a worker');
    worker = await startWorkerProcess(lab, { quiet: true });
    web = await startConsole(lab, { port: process.env.PORT ? Number(process.env.PORT) : undefined, log });
    web.child.once('exit', (code) => {
      if (!stopping) {
        log(`the console exited (${code}); stopping the lab`);
        void shutdown(1);
      }
    });
    writeLab(DEFAULT_LAB_FILE, { ...readLab(DEFAULT_LAB_FILE), console: { url: web.url, admin, apiToken } });
    console.log('');
    console.log(`pgherd is ready at ${web.url}`);
    console.log(`  sign in as ${admin.username} / ${admin.password}`);
    console.log(`  API: curl -H "Authorization: Bearer $(jq -r .console.apiToken .lab/lab.json)" ${web.url}/api/v1/instances`);
    console.log(`  sandbox fleet: ${lab.instances.length} PostgreSQL instances; everything the lab started is described in ${DEFAULT_LAB_FILE}`);
    console.log(`  (up in ${((Date.now() - t0) / 1000).toFixed(0)} s; Ctrl-C stops everything)`);
  } catch (err) {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    await shutdown(1);
  }
}

void main();
