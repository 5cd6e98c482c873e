// What runs on this host: Debian's pg_lsclusters when it is there (it also knows stopped clusters),
// the lock files Postgres leaves in its socket directories (.s.PGSQL.<port>.lock) and in its data
// directories (postmaster.pid), and the instances the configuration lists. Deduplicated by port.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { DEFAULT_BUILD_PATTERNS } from './builds';

const execFileP = promisify(execFile);

export const agentConfigSchema = z
  .object({
    /** The console's base URL, e.g. https://pgherd.example.com */
    server: z.url(),
    /** This server's name in pgherd, when the host calls itself otherwise (default: the host's name). */
    hostname: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9.:_%-]+$/, 'a host name')
      .optional(),
    /** A file with the server's agent token, readable only by the agent's user. */
    tokenFile: z.string().min(1),
    /** PEM file of the CA that signed the console's certificate (default: the system's CAs). */
    caFile: z.string().optional(),
    /** The role the agent connects as over the local socket (peer authentication). */
    user: z.string().default('postgres'),
    database: z.string().default('postgres'),
    intervalSeconds: z.number().int().min(5).max(86_400).default(60),
    lsclusters: z.boolean().default(true),
    socketDirectories: z.array(z.string()).default(['/var/run/postgresql', '/tmp']),
    dataDirectories: z.array(z.string()).default([]),
    /** Where Postgres builds are installed: bin directories, one `*` allowed in a component (reported for upgrades). */
    buildDirectories: z.array(z.string().startsWith('/')).max(32).default(DEFAULT_BUILD_PATTERNS),
    /** Look for Patroni (its running processes' configuration files, and these): its scope and REST address, per instance. */
    patroni: z.boolean().default(true),
    patroniConfigFiles: z.array(z.string()).max(32).default([]),
    /**
     * On a spot instance: watch the instance metadata for EC2's interruption warning (IMDSv2,
     * `/latest/meta-data/spot/instance-action`) every `everySeconds`, and relay it to pgherd once.
     */
    spot: z
      .object({ metadataUrl: z.url().default('http://169.254.169.254'), everySeconds: z.number().int().min(1).max(60).default(5) })
      .strict()
      .optional(),
    /** Instances to report whatever discovery finds (port, and where its socket is). */
    instances: z
      .array(z.object({ port: z.number().int().min(1).max(65535), socketDirectory: z.string().default('/var/run/postgresql') }).strict())
      .default([]),
  })
  .strict();

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export interface Found {
  port: number;
  /** Where to connect (a socket directory): absent for a stopped cluster. */
  socketDirectory?: string;
  dataDirectory?: string;
  running: boolean;
  /** pg_lsclusters says it for stopped clusters too. */
  majorVersion?: number;
}

/** `pg_lsclusters --json`: version, port, running, data directory, socket directory. */
async function fromLsclusters(): Promise<Found[]> {
  if (!existsSync('/usr/bin/pg_lsclusters')) return [];
  const { stdout } = await execFileP('/usr/bin/pg_lsclusters', ['--json'], { timeout: 10_000 });
  const rows = JSON.parse(stdout) as {
    version: string;
    port: number | string;
    running: number | boolean;
    pgdata: string;
    socketdir?: string;
  }[];
  return rows.map((r) => ({
    port: Number(r.port),
    dataDirectory: r.pgdata,
    running: Boolean(r.running),
    majorVersion: Number(r.version),
    socketDirectory: r.running ? (r.socketdir ?? '/var/run/postgresql') : undefined,
  }));
}

/** Lock file lines: PID, data directory, start time, port, socket directory, ... */
function readLock(file: string): { pid: number; dataDirectory: string; port: number; socketDirectory: string } | null {
  try {
    const [pid, dataDirectory = '', , port, socketDirectory = ''] = readFileSync(file, 'utf8').split('\n');
    const p = { pid: Number(pid), dataDirectory, port: Number(port), socketDirectory };
    return Number.isInteger(p.pid) && p.pid > 0 && Number.isInteger(p.port) ? p : null;
  } catch {
    return null;
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

function fromLockFiles(cfg: AgentConfig): Found[] {
  const out: Found[] = [];
  for (const dir of cfg.socketDirectories) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      const port = /^\.s\.PGSQL\.(\d+)\.lock$/.exec(n)?.[1];
      if (port === undefined) continue;
      const lock = readLock(path.join(dir, n));
      if (lock && alive(lock.pid)) out.push({ port: Number(port), socketDirectory: dir, dataDirectory: lock.dataDirectory, running: true });
    }
  }
  for (const d of cfg.dataDirectories) {
    const lock = readLock(path.join(d, 'postmaster.pid'));
    if (lock && alive(lock.pid))
      out.push({ port: lock.port, socketDirectory: lock.socketDirectory || '/var/run/postgresql', dataDirectory: d, running: true });
  }
  return out;
}

export async function discover(cfg: AgentConfig): Promise<Found[]> {
  const all: Found[] = [
    ...cfg.instances.map((i) => ({ port: i.port, socketDirectory: i.socketDirectory, running: true })),
    ...fromLockFiles(cfg),
    ...(cfg.lsclusters ? await fromLsclusters() : []),
  ];
  const byPort = new Map<number, Found>();
  // The first word about a port wins, but a running sighting beats pg_lsclusters' "down".
  for (const f of all) {
    const had = byPort.get(f.port);
    if (!had) byPort.set(f.port, f);
    else if (!had.running && f.running) byPort.set(f.port, { ...had, ...f });
    else
      byPort.set(f.port, {
        ...f,
        ...had,
        majorVersion: had.majorVersion ?? f.majorVersion,
        dataDirectory: had.dataDirectory ?? f.dataDirectory,
      });
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}
