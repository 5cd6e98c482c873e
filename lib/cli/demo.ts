// npm run demo: the lab, pgherd's database with the sandbox fleet's environments, herds and servers,
// the console, and an agent for every lab server that discovers the instances and keeps reporting
// them. Ctrl-C or SIGTERM stops everything it started.
import { randomBytes } from 'node:crypto';
import { buildConsole, prepareDatabase, startConsole, startWorkerProcess, type RunningConsole } from '../lab/console';
import type { ChildProcess } from 'node:child_process';
import { stopPid } from '../lab/proc';
import { DEFAULT_LAB_FILE, DEMO_PATRONI, readLab, refuseIfOwned, startLab, stopLab, writeLab } from '../lab/lab';
import { reportAll, runLabAgents, writeLabAgents } from '../lab/agents';
import { addLabReadNames } from '../lab/seed';
import { createDb } from '@/db/client';

const log = (m: string) => console.log(`demo: ${m}`);

async function main() {
  let stopping = false;
  let web: RunningConsole | undefined;
  let worker: (ChildProcess & { metricsUrl: string }) | undefined;
  let agents: { stop: () => Promise<void> } | undefined;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping');
    await agents?.stop();
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
    // A demo already running from this checkout keeps its lab: refuse before touching anything of it.
    try {
      refuseIfOwned(DEFAULT_LAB_FILE);
    } catch (err) {
      console.error(`demo: ${(err as Error).message}`);
      process.exit(1);
    }
    const lab = await startLab({ file: DEFAULT_LAB_FILE, log, patroni: DEMO_PATRONI });
    const admin = {
      username: process.env.PGHERD_ADMIN_USERNAME ?? 'admin',
      password: process.env.PGHERD_ADMIN_PASSWORD ?? randomBytes(9).toString('base64url'),
    };
    log("migrating and seeding pgherd's database");
    const { apiToken, agentTokens } = await prepareDatabase(lab, admin, { discover: true });
    if (process.env.PGHERD_SKIP_BUILD !== '1') buildConsole(log);
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a signal handler sets it while the awaits above run
    if (stopping) return;
    log('starting a worker');
    worker = await startWorkerProcess(lab, { quiet: true });
    web = await startConsole(lab, { port: process.env.PORT ? Number(process.env.PORT) : undefined, log });
    web.child.once('exit', (code) => {
      if (!stopping) {
        log(`the console exited (${code ?? 'by a signal'}); stopping the lab`);
        void shutdown(1);
      }
    });
    const now = readLab(DEFAULT_LAB_FILE);
    writeLab(DEFAULT_LAB_FILE, {
      ...now,
      console: { url: web.url, admin, apiToken },
      metrics: now.metrics && { ...now.metrics, web: `${web.url}/metrics`, workers: [worker.metricsUrl] },
      instances: now.instances.map((i) => ({ ...i, agentToken: agentTokens.get(i.server) })),
    });
    // The agents discover the fleet: two rounds, so that a replica reported before its upstream gets it.
    log(`discovering the fleet: an agent for each of the ${agentTokens.size} lab servers`);
    const labAgents = writeLabAgents(lab, web.url, agentTokens);
    for (let round = 0; round < 2; round++) {
      for (const f of await reportAll(labAgents)) log(`agent ${f.server}: ${f.error}`);
    }
    agents = runLabAgents(labAgents, log);
    // Each replica's read name becomes a record matched to it, now that the agents have reported it: a resize drains it.
    const { db, pool } = createDb(lab.database.url, 2);
    try {
      log(`read names: ${await addLabReadNames(db, lab)} replicas' names follow them (a resize drains them)`);
    } finally {
      await pool.end();
    }
    console.log('');
    console.log(`pgherd is ready at ${web.url}`);
    console.log(`  sign in as ${admin.username} / ${admin.password}`);
    console.log(
      `  metrics: curl -H "Authorization: Bearer $(jq -r .metrics.token .lab/lab.json)" ${web.url}/metrics (the worker's: ${worker.metricsUrl})`,
    );
    console.log(`  API: curl -H "Authorization: Bearer $(jq -r .console.apiToken .lab/lab.json)" ${web.url}/api/v1/instances`);
    console.log(
      `  sandbox fleet: ${lab.instances.length} PostgreSQL instances, discovered by their agents (every ${labAgents[0]?.config.intervalSeconds ?? 30} s; configurations in ${lab.dir}/agents); everything the lab started is described in ${DEFAULT_LAB_FILE}`,
    );
    console.log(`  (up in ${((Date.now() - t0) / 1000).toFixed(0)} s; Ctrl-C stops everything)`);
  } catch (err) {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    await shutdown(1);
  }
}

void main();
