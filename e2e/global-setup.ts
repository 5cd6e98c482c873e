// One lab and one built console for the browser tests; the console's and the worker's PIDs join the
// lab's processes so that the teardown (or the next run) stops them with everything else.
import { randomBytes } from 'node:crypto';
import { buildConsole, prepareDatabase, startConsole, startWorkerProcess } from '../lib/lab/console';
import { DEMO_PATRONI, DEMO_RDS, readLab, startLab, writeLab } from '../lib/lab/lab';
import { DEFAULT_FLEET } from '../lib/lab/fleet';
import { E2E_LAB_FILE, E2E_SUBNETS } from './lab';
import { setting } from '@/lib/settings/settings';

export default async function globalSetup() {
  const lab = await startLab({
    file: E2E_LAB_FILE,
    fleet: { ...DEFAULT_FLEET, subnet: E2E_SUBNETS.fleet },
    patroni: DEMO_PATRONI.map((p) => ({ ...p, subnet: E2E_SUBNETS.patroni })),
    rds: DEMO_RDS.map((r) => ({ ...r, subnet: E2E_SUBNETS.rds })),
  });
  const admin = { username: 'e2e-admin', password: randomBytes(12).toString('base64url') };
  const { apiToken } = await prepareDatabase(lab, admin);
  if (!setting('PGHERD_SKIP_BUILD')) await buildConsole();
  const web = await startConsole(lab, { quiet: true, labFile: E2E_LAB_FILE });
  const worker = await startWorkerProcess(lab, { quiet: true, labFile: E2E_LAB_FILE });
  const info = readLab(E2E_LAB_FILE);
  writeLab(E2E_LAB_FILE, {
    ...info,
    console: { url: web.url, admin, apiToken },
    metrics: { token: info.metrics!.token, web: `${web.url}/metrics`, workers: [worker.metricsUrl] },
  });
}
