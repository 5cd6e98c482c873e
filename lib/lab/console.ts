// Brings pgherd itself up over a lab: migrate, seed, build and start the console.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { createDb } from '@/db/client';
import { servers, users } from '@/db/schema';
import { createAgentToken } from '@/lib/features/agents/ingest';
import { createApiToken } from '@/lib/features/auth/api-tokens';
import { migrateDatabase } from '@/db/migrate';
import { ensureAdmin } from '@/lib/features/auth/superuser';
import { seedLabFleet } from '@/lib/lab/seed';
import { labDiscoveryEnv } from './aws';
import { labSettings, PROJECT_ROOT, trackProcess, type LabInfo } from './lab';
import { readEnvFile, readUnit, unitEnv, writeEnvFile } from './units';
import { freePort } from './ports';
import { cancelSignal, descendants, stopPid, throwIfCancelled } from './proc';
import { waitFor } from '@/lib/testing/wait';

const NEXT_BIN = path.join(PROJECT_ROOT, 'node_modules', 'next', 'dist', 'bin', 'next');

/**
 * Migrates, creates the admin (and an operate-scoped API token for it), seeds the lab fleet. With
 * `discover`, the instances are left for the lab's agents to report, and every lab database server
 * gets an agent token (returned by server name).
 */
export async function prepareDatabase(
  lab: LabInfo,
  admin: { username: string; password: string },
  opts: { seedFleet?: boolean; discover?: boolean } = {},
): Promise<{ apiToken: string; agentTokens: Map<string, string> }> {
  await migrateDatabase(lab.database.url);
  const { db, pool } = createDb(lab.database.url, 4);
  try {
    await ensureAdmin(db, admin.username, admin.password);
    const [u] = await db.select({ id: users.id }).from(users).where(eq(users.username, admin.username));
    const { token } = await createApiToken(db, u!.id, 'lab', 'operate');
    if (opts.seedFleet !== false && lab.instances.length) await seedLabFleet(db, lab, { instances: !opts.discover });
    const agentTokens = new Map<string, string>();
    if (opts.discover) {
      for (const i of lab.instances) {
        const [s] = await db.select({ id: servers.id }).from(servers).where(eq(servers.hostname, i.server));
        agentTokens.set(i.server, await createAgentToken(db, s!.id, { id: u!.id, username: admin.username }));
      }
    }
    return { apiToken: token, agentTokens };
  } finally {
    await pool.end();
  }
}

/**
 * `next build`, awaited rather than run synchronously: a caller that stops on a signal (the demo) sees it
 * during the build's minutes. A cancelled start (proc's `cancellable`) stops the build and its helpers.
 */
export async function buildConsole(log: (m: string) => void = () => {}): Promise<void> {
  const stop = cancelSignal();
  log('building the console (next build)');
  const child = spawn(process.execPath, [NEXT_BIN, 'build'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString('utf8')).slice(-64_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const cancel = () => {
    // Next's build runs helper processes of its own: stopped with it, not left to finish the build.
    const all = child.pid ? [child.pid, ...descendants(child.pid)] : [];
    void Promise.all(all.map((pid) => stopPid(pid, 'SIGTERM', 5_000)));
  };
  stop?.addEventListener('abort', cancel, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c));
    });
    throwIfCancelled();
    if (code !== 0) throw new Error(`next build failed:\n${output}`);
  } finally {
    stop?.removeEventListener('abort', cancel);
  }
}

/** Enters `child` in the lab file's processes; a lab whose file is gone (stopped meanwhile) gets no orphan. */
async function tracked(labFile: string, child: ChildProcess, p: { name: string; program: string; site?: string }): Promise<void> {
  if (!child.pid) throw new Error(`${p.name} did not start (${p.program})`);
  if (trackProcess(labFile, { ...p, pid: child.pid, signal: 'SIGTERM' })) return;
  await stopPid(child.pid, 'SIGTERM', 10_000);
  throw new Error(`${p.name} not started: ${labFile} is gone (the lab has stopped)`);
}

export interface RunningConsole {
  url: string;
  child: ChildProcess;
  stop: () => Promise<void>;
}

/** What the worker's process runs: how the lab recognises it by PID (lab.json `processes[].program`). */
export const WORKER_PROGRAM = 'jobs/worker.ts';

/**
 * A worker process over the lab (node --import tsx: one process, its PID the worker's own), answering
 * GET /metrics (with the lab's token) at `metricsUrl`. With `labFile`, it is entered in that lab's
 * processes (as `name`, default `worker`) the moment it is spawned, so that the lab's stop stops it
 * even when whoever started it is gone.
 */
export async function startWorkerProcess(
  lab: LabInfo,
  /** `site`: the control plane's site it runs on, and so reaches pgherd's database through (`--ha`). */
  opts: {
    quiet?: boolean;
    labFile?: string;
    name?: string;
    site?: string;
    /** Over the lab's settings (a test's own database, queue prefix or lease TTL). */
    env?: Record<string, string>;
    /** Started as pgherd-worker.service starts it, with this EnvironmentFile (writeSiteEnv's) and nothing else. */
    unitEnvFile?: string;
  } = {},
): Promise<ChildProcess & { metricsUrl: string }> {
  if (!lab.redis || !lab.ssh) throw new Error("the worker needs the lab's Redis and SSH");
  const databaseUrl = (opts.site && lab.controlPlane?.databaseUrls[opts.site]) || lab.database.url;
  const unit = opts.unitEnvFile ? readUnit('pgherd-worker.service') : null;
  const fromFile = opts.unitEnvFile ? readEnvFile(opts.unitEnvFile) : null;
  const metricsListen = fromFile?.PGHERD_WORKER_METRICS_LISTEN ?? `127.0.0.1:${String(await freePort())}`;
  const [cmd, ...args] = unit?.start ?? [process.execPath, '--import', 'tsx', path.join(PROJECT_ROOT, WORKER_PROGRAM)];
  const child = spawn(cmd!, args, {
    cwd: PROJECT_ROOT,
    env:
      unit && opts.unitEnvFile
        ? unitEnv(unit, opts.unitEnvFile)
        : {
            ...process.env,
            DATABASE_URL: databaseUrl,
            REDIS_URL: lab.redis.url,
            PGHERD_WORKER_METRICS_LISTEN: metricsListen,
            ...labSettings(lab),
            ...(lab.aws ? labDiscoveryEnv(lab.aws) : {}),
            ...opts.env,
          },
    stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', 'inherit'],
  });
  if (opts.labFile)
    await tracked(opts.labFile, child, { name: opts.name ?? 'worker', program: WORKER_PROGRAM, ...(opts.site ? { site: opts.site } : {}) });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  // Ready once its metrics answer: the worker listens for them last, after it has reconciled, rebuilt
  // the rules' schedulers and started its chores (a worker still starting when its database restarts
  // exits, and a fixed wait was not always long enough on a loaded machine). A broken configuration
  // exits at once.
  const metricsUrl = `http://${metricsListen}/metrics`;
  await waitFor(
    `the worker's metrics on ${metricsUrl}`,
    async () => {
      throwIfCancelled();
      if (exited) throw new Error('the worker exited at start');
      // Any answer will do (401 without the token): something listens.
      const res = await fetch(metricsUrl).catch(() => null);
      return res ? true : undefined;
    },
    120_000,
  );
  return Object.assign(child, { metricsUrl });
}

export function consoleEnv(lab: LabInfo, url: string, secret: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'production',
    NEXT_TELEMETRY_DISABLED: '1',
    DATABASE_URL: lab.database.url,
    REDIS_URL: lab.redis?.url ?? '',
    NEXTAUTH_URL: url,
    NEXTAUTH_SECRET: secret,
    ...labSettings(lab),
    ...(lab.aws ? labDiscoveryEnv(lab.aws) : {}),
    PGHERD_LDAP_CONFIG: lab.ldap?.configFile ?? '',
  };
}

/** What the console's process runs: how the lab recognises it by PID (lab.json `processes[].program`). */
export const CONSOLE_PROGRAM = 'lib/entry/web/server.ts';

/** The console's server over the lab; with `labFile`, entered in that lab's processes as `console` once spawned. */
export async function startConsole(
  lab: LabInfo,
  opts: {
    port?: number;
    log?: (m: string) => void;
    quiet?: boolean;
    labFile?: string;
    /** `--ha`: its site (pgherd's database through that site's HAProxy), the consoles' shared secret, their public URL. */
    site?: string;
    secret?: string;
    publicUrl?: string;
    /** Started as pgherd-web.service starts it (ExecStartPre, then ExecStart), with this EnvironmentFile (writeSiteEnv's). */
    unitEnvFile?: string;
  } = {},
): Promise<RunningConsole> {
  const fromFile = opts.unitEnvFile ? readEnvFile(opts.unitEnvFile) : null;
  const port = fromFile?.PORT ? Number(fromFile.PORT) : (opts.port ?? (await freePort()));
  const url = `http://127.0.0.1:${String(port)}`;
  const secret = opts.secret ?? randomBytes(32).toString('base64url');
  const databaseUrl = (opts.site && lab.controlPlane?.databaseUrls[opts.site]) || lab.database.url;
  const unit = opts.unitEnvFile ? readUnit('pgherd-web.service') : null;
  const unitEnvironment = unit && opts.unitEnvFile ? unitEnv(unit, opts.unitEnvFile) : null;
  for (const [cmd, ...args] of unit?.pre ?? []) {
    const code = await new Promise<number | null>((resolve, reject) => {
      const pre = spawn(cmd!, args, { cwd: PROJECT_ROOT, env: unitEnvironment ?? process.env, stdio: ['ignore', 'ignore', 'inherit'] });
      pre.once('error', reject);
      pre.once('close', resolve);
    });
    if (code !== 0) throw new Error(`pgherd-web.service's ExecStartPre (${[cmd, ...args].join(' ')}) exited ${String(code)}`);
  }
  // pgherd's own server (it derives each client's address from the socket), not `next start`.
  const [cmd, ...args] = unit?.start ?? [
    process.execPath,
    '--import',
    'tsx',
    path.join(PROJECT_ROOT, CONSOLE_PROGRAM),
    '-p',
    String(port),
    '-H',
    '127.0.0.1',
  ];
  const child = spawn(cmd!, args, {
    cwd: PROJECT_ROOT,
    env: unitEnvironment ?? { ...consoleEnv(lab, opts.publicUrl ?? url, secret), DATABASE_URL: databaseUrl },
    stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', 'inherit'],
  });
  if (opts.labFile)
    await tracked(opts.labFile, child, {
      name: opts.site ? `console-${opts.site}` : 'console',
      program: CONSOLE_PROGRAM,
      ...(opts.site ? { site: opts.site } : {}),
    });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  await waitFor(
    `the console on ${url}`,
    async () => {
      if (exited) throw new Error("the console's server exited");
      const res = await fetch(`${url}/login`).catch(() => null);
      return res?.ok ? true : undefined;
    },
    60_000,
  );
  return {
    url,
    child,
    stop: async () => {
      if (!exited && child.pid) await stopPid(child.pid, 'SIGTERM', 10_000);
    },
  };
}

/**
 * A site's /etc/pgherd/pgherd.env, as an install on that machine would write it: pgherd's database through
 * the site's HAProxy, the queue through the sentinels, the consoles' public URL and shared secret, where
 * this site's console and worker listen, and the lab's settings. Read by both units (startConsole's and
 * startWorkerProcess's `unitEnvFile`).
 */
export function writeSiteEnv(
  lab: LabInfo,
  site: string,
  file: string,
  o: { secret: string; publicUrl: string; consolePort: number; metricsPort: number },
): void {
  const databaseUrl = lab.controlPlane?.databaseUrls[site];
  if (!databaseUrl || !lab.redis) throw new Error(`the lab has no site ${site} with pgherd's database and queue`);
  writeEnvFile(file, {
    DATABASE_URL: databaseUrl,
    REDIS_URL: lab.redis.url,
    NEXTAUTH_URL: o.publicUrl,
    NEXTAUTH_SECRET: o.secret,
    PORT: String(o.consolePort),
    HOST: '127.0.0.1',
    PGHERD_WORKER_METRICS_LISTEN: `127.0.0.1:${String(o.metricsPort)}`,
    // Behind the front (startConsoleFront, on loopback): its X-Forwarded-For is believed, so a client is
    // throttled and audited by its own address, not the front's. A console drains before it stops.
    PGHERD_TRUSTED_PROXIES: '127.0.0.1',
    PGHERD_WEB_DRAIN_MS: '2000',
    PGHERD_LDAP_CONFIG: lab.ldap?.configFile ?? '',
    ...labSettings(lab),
    ...(lab.aws ? labDiscoveryEnv(lab.aws) : {}),
  });
}
