// The lab: real services on loopback in a temporary directory, described by one JSON file.
// Used by the demo, the tests and the benchmark; `npm run lab -- up|down` drives it by hand.
import { releaseLabVolumes } from './volumes';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { LAB_BUILD_PACKAGES, labBuild, type LabBuild, type LabBuildName } from './builds';
import { DEFAULT_FLEET, planFleet, poolerServer, type FleetSpec, type PlannedMember } from './fleet';
import { startPgbouncer, type LabPgbouncer } from './pgbouncer';
import { startLdap, type LabLdap } from './ldap';
import { issueCertificate, makeCa, type LabCa } from './tls';
import { cloneReplica, dsn, initPrimary, query, startNode, touchLog, waitStreaming, type PgNode } from './postgres';
import {
  alive,
  labIdentity,
  mkdirOwned,
  pidRuns,
  processesUnder,
  stopPid,
  throwIfCancelled,
  uncancellable,
  type FoundProcess,
  type Identity,
} from './proc';
import { freePort, portFreeOnAll } from './ports';
import { startRedis } from './redis';
import { startControlPlane } from './control-plane';
import { startBind, type LabDns } from './bind';
import { startSshd, type LabSsh } from './sshd';
import { labAwsEnv, startAws, type LabAws } from './aws';
import { startRoute53 } from './route53';
import { startEtcd, startPatroniHerd } from './patroni';
import { shortEnv } from './fleet';
import { backupZoneHosts, labInternalSsh, planBackupHosts, prepareBackupHosts, type LabBackup } from './backup';
import { setting } from '@/lib/settings/settings';
import { scramVerifier } from '@/lib/fleet/objects/scram';

export interface LabProcess {
  name: string;
  pid: number;
  /** What /proc/PID/cmdline must contain, so a stale file never kills a stranger. */
  program: string;
  signal: NodeJS.Signals;
  /** Where the current PID is, for daemons that pgherd itself restarts (postmaster.pid). */
  pidFile?: string;
  /** The control plane's site it runs on (`npm run demo -- --ha`): what `npm run lab -- kill-site` kills. */
  site?: string;
}

/** The servers, stopped after their clients (the console, the workers, Patroni, moto) so that no client logs them going away. */
const SERVER_PROGRAMS = ['postgres', 'redis-server', 'sshd', 'named', 'pgbouncer', 'slapd', 'etcd'];

/** The PID now: a postmaster that pgherd's actions restarted has a new one in its pid file. */
export function currentPid(p: LabProcess): number {
  if (p.pidFile && existsSync(p.pidFile)) {
    const pid = Number(readFileSync(p.pidFile, 'utf8').split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0) return pid;
  }
  return p.pid;
}

export interface LabInstance {
  environment: string;
  herd: string;
  server: string;
  site: string;
  address: string;
  port: number;
  dataDirectory: string;
  socketDirectory: string;
  role: 'primary' | 'replica';
  upstream: string | null;
  version: number;
  /** The build it runs on when not Debian's (PGHERD_PG_BIN): its bin directory. */
  binDir?: string;
  dsn: string;
  /** The server's agent token, once the demo has made one (its agents report with it). */
  agentToken?: string;
  /** A member of a herd Patroni runs: its Patroni's REST address. */
  patroniUrl?: string;
}

/** A herd Patroni runs: what a test or an admin needs to reach its Patroni. */
export interface LabPatroni {
  environment: string;
  herd: string;
  /** Patroni's name of the cluster (patroni.yml's scope). */
  scope: string;
  members: { server: string; restUrl: string; configFile: string; logFile: string }[];
  /** The REST API's basic auth (also in PGHERD_PG_CONFIG's entry for the environment). */
  restUser: string;
  restPassword: string;
  /** The CA that signed the REST certificates. */
  caFile: string;
  /** etcd's client URL (the lab's one etcd, shared by its Patroni herds). */
  etcd: string;
}

/** An RDS herd of the lab: a source DB instance and its read replicas, each backed by a lab Postgres. */
export interface LabRds {
  environment: string;
  herd: string;
  members: (LabInstance & { identifier: string; instanceClass: string; logFile: string })[];
  /** The source is Multi-AZ (RDS says so; the lab runs no standby: a failover reboot restarts it). */
  multiAz?: boolean;
  /** Addresses where the lab's RDS puts a new read replica of the herd (CreateDBInstanceReadReplica), each with its certificate. */
  spares: { address: string; port: number; certFile: string; keyFile: string; pgherdUser: string }[];
}

export interface LabInfo {
  name: string;
  dir: string;
  osUser: string;
  pgBin: string;
  startedAt: string;
  database: { url: string; adminUrl: string };
  redis: { url: string } | null;
  /** One sshd, run by the lab user, listening on every fleet address. */
  ssh: LabSsh | null;
  /** BIND 9 with the lab's zone: server A records and each herd's write name (TSIG-keyed updates). */
  dns: LabDns | null;
  /** PgBouncers in front of herds (their servers are reached over the lab's SSH like the fleet's). */
  pgbouncer: LabPgbouncer[];
  /** Herds Patroni runs, with etcd as their DCS (their members are in `instances` too). */
  patroni?: LabPatroni[];
  /** Herds RDS runs (moto's DB instances, each a lab Postgres behind the lab's AWS front): not in `instances`, never reached over SSH. */
  rds?: LabRds[];
  /** A backup host per environment (its pgBackRest repository) and empty scratch servers for restores. */
  backup?: LabBackup;
  /** OpenLDAP slapd: ou=people, ou=groups, the service account, each user's password and groups. */
  ldap: LabLdap | null;
  /** The lab's CA (slapd's and every fleet instance's certificates) and how pgherd reaches the fleet's Postgres. */
  tls: LabCa | null;
  pgAccess: LabPgAccess | null;
  /** moto behind the lab's front: an EC2 instance per database server, Route 53 (absent: a lab without AWS). */
  aws?: LabAws | null;
  console?: { url: string; admin: { username: string; password: string }; apiToken?: string };
  /**
   * Prometheus metrics: the token the console's and the workers' /metrics ask for (PGHERD_METRICS_TOKEN),
   * the console's /metrics, and each worker's (PGHERD_WORKER_METRICS_LISTEN), as they start.
   */
  metrics?: { token: string; web?: string; workers: string[] };
  instances: LabInstance[];
  processes: LabProcess[];
  /**
   * pgherd's own state across sites (`controlPlane`): its database on Patroni behind each site's HAProxy,
   * its queue under Sentinel; `database.url` and `redis.url` are site A's.
   */
  controlPlane?: { sites: { name: string; address: string }[]; databaseUrls: Record<string, string>; redisUrl: string };
  /** The process that started the lab (the demo, a test run): another start refuses while it lives. */
  ownerPid?: number;
}

/**
 * pgherd's access to the fleet, per environment as PGHERD_PG_CONFIG gives it: a role of its own
 * (pgherd_<environment>, superuser) with a password, accepted only over TLS (scram-sha-256), whose
 * server certificate is verified against the lab CA for the address connected to.
 */
export interface LabPgAccess {
  /** The file PGHERD_PG_CONFIG names for the console, the worker and the tests. */
  configFile: string;
  roles: Record<string, { user: string; password: string; passwordFile: string }>;
}

/** Another process runs this lab: starting it again would stop that one's services under it. */
export class LabBusyError extends Error {
  constructor(file: string, pid: number, url?: string) {
    super(
      `${path.relative(process.cwd(), file) || file} belongs to a lab that process ${pid} is running${url ? ` (console at ${url})` : ''}: stop it first (Ctrl-C in its terminal, or kill ${pid})`,
    );
    this.name = 'LabBusyError';
  }
}

/** Throws LabBusyError when the lab file names a live owner other than this process. */
export function refuseIfOwned(file: string): void {
  if (!existsSync(file)) return;
  let info: LabInfo;
  try {
    info = readLab(file);
  } catch {
    return;
  }
  const owner = info.ownerPid;
  if (owner && owner !== process.pid && alive(owner) && pidRuns(owner, 'node')) throw new LabBusyError(file, owner, info.console?.url);
}

export interface LabOptions {
  /** Where lab.json goes; its directory is created. */
  file: string;
  /**
   * pgherd's database and queue on three sites (lib/lab/control-plane.ts) instead of one Postgres and
   * one Redis: sites a, b and c on <subnet>.1-3.
   */
  controlPlane?: { subnet: string };
  fleet?: FleetSpec | false;
  redis?: boolean;
  /** BIND 9 for the fleet (default: with the fleet). */
  dns?: boolean;
  /**
   * Herds that get a PgBouncer in front (default: production/billing when the fleet has it). `scram`: its
   * admin console over TLS with SCRAM, the password in the environment's `pgbouncer` entry of PGHERD_PG_CONFIG.
   */
  pgbouncer?: { environment: string; herd: string; scram?: boolean }[];
  /** OpenLDAP slapd with the lab's people and groups (default: with the fleet). */
  ldap?: boolean;
  /** moto and an EC2 instance per database server (default: with the fleet). */
  aws?: boolean;
  /** A backup host and scratch servers per environment (default: with the fleet). */
  backup?: boolean;
  /** An environment whose names Route 53 serves (a hosted zone in moto) instead of BIND; needs aws and dns. */
  route53?: string;
  /**
   * Herds run by Patroni (etcd, a Patroni per member on its own address, REST on https with basic auth),
   * beside the fleet: `members` (default 3) on <subnet>.1-N (default 127.0.20).
   */
  patroni?: { environment: string; herd: string; members?: number; subnet?: string }[];
  /**
   * Herds RDS runs (needs aws): a source and `replicas` (default 1) read replicas, DB instances in moto, each
   * backed by a lab Postgres on <subnet>.1-N (default 127.0.22) that the lab's AWS front starts, stops and
   * promotes as RDS would. Found by RDS discovery, not seeded.
   */
  rds?: { environment: string; herd: string; replicas?: number; subnet?: string; multiAz?: boolean }[];
  log?: (msg: string) => void;
}

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** The demo's and the browser tests' herd run by Patroni (beside the default fleet's herds). */
export const DEMO_PATRONI: NonNullable<LabOptions['patroni']> = [{ environment: 'staging', herd: 'ledger' }];
/** The demo's and the browser tests' herd run by RDS: a source and a read replica, found by discovery. */
export const DEMO_RDS: NonNullable<LabOptions['rds']> = [{ environment: 'staging', herd: 'reports', replicas: 1 }];
export const DEFAULT_LAB_FILE = path.join(PROJECT_ROOT, '.lab', 'lab.json');

/** The settings that point pgherd (console, worker, a test process) at the lab's DNS and fleet credentials. */
export function labSettings(lab: LabInfo): { PGHERD_DNS_CONFIG: string; PGHERD_PG_CONFIG: string } & Record<string, string> {
  return {
    PGHERD_DNS_CONFIG: lab.dns?.configFile ?? '',
    PGHERD_PG_CONFIG: lab.pgAccess?.configFile ?? '',
    // The lab's webhook receivers listen on loopback, which pgherd refuses by default (SSRF).
    PGHERD_WEBHOOK_ALLOW_NETWORKS: '127.0.0.0/8',
    // The lab's rules fire every few seconds; a real pgherd keeps rules a minute apart at least.
    PGHERD_RULE_MIN_INTERVAL_SECONDS: '1',
    ...(lab.metrics ? { PGHERD_METRICS_TOKEN: lab.metrics.token } : {}),
    ...(lab.aws ? labAwsEnv(lab.aws) : {}),
    // The lab's CA signs every environment's certificates: Rotate certificate issues from it.
    ...(lab.tls
      ? {
          PGHERD_CERT_AUTHORITIES: JSON.stringify(
            Object.fromEntries(
              [...new Set(lab.instances.map((i) => i.environment))].map((e) => [
                e,
                { certFile: lab.tls!.caFile, keyFile: lab.tls!.keyFile },
              ]),
            ),
          ),
        }
      : {}),
    // A key per environment, as a fleet should run: each environment's hosts authorize only their own.
    ...(lab.ssh
      ? {
          PGHERD_SSH_KEY: lab.ssh.privateKeyPath,
          PGHERD_SSH_KEYS: JSON.stringify(Object.fromEntries(Object.entries(lab.ssh.environments).map(([e, k]) => [e, k.privateKeyPath]))),
          PGHERD_SSH_AUTHORIZED_KEYS: JSON.stringify(
            Object.fromEntries(Object.entries(lab.ssh.environments).flatMap(([e, k]) => (k.authorizedKeys ? [[e, k.authorizedKeys]] : []))),
          ),
        }
      : {}),
  };
}

/** Applies labSettings to this process (tests and benchmarks that run actions in-process). */
export function useLabSettings(lab: LabInfo): void {
  Object.assign(process.env, labSettings(lab));
}

export function readLab(file = DEFAULT_LAB_FILE): LabInfo {
  return JSON.parse(readFileSync(file, 'utf8')) as LabInfo;
}

export function writeLab(file: string, info: LabInfo) {
  mkdirSync(path.dirname(file), { recursive: true });
  // Written aside and renamed over: a reader (a test, `npm run lab -- down`, the demo's own refresh)
  // never sees half a file.
  const aside = `${file}.${process.pid}.tmp`;
  writeFileSync(aside, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  renameSync(aside, file);
}

/**
 * Reads the lab file, applies `change`, writes it back; false (and nothing written) when the file is
 * gone, as after the lab's stop: an update that comes late must not bring a stopped lab's file back.
 */
export function updateLab(file: string, change: (info: LabInfo) => void): boolean {
  if (!existsSync(file)) return false;
  const info = readLab(file);
  change(info);
  writeLab(file, info);
  return true;
}

/** Enters `p` in the lab file's processes, in place of an entry of the same name (a restarted process). */
export function trackProcess(file: string, p: LabProcess): boolean {
  return updateLab(file, (info) => {
    info.processes = [...info.processes.filter((x) => x.name !== p.name), p];
  });
}

/**
 * Brings the PIDs of daemons that others restart (pgherd's actions, Patroni, the lab's EC2 front, a
 * person with pg_ctl) up to date from their pid files; true when lab.json changed.
 */
export function refreshPids(file: string): boolean {
  if (!existsSync(file) || !staleEntries(readLab(file)).length) return false;
  return updateLab(file, (info) => {
    for (const { p, now } of staleEntries(info)) p.pid = now;
  });
}

function staleEntries(info: LabInfo): { p: LabProcess; now: number }[] {
  return info.processes
    .map((p) => ({ p, now: currentPid(p) }))
    .filter(({ p, now }) => now !== p.pid && alive(now) && pidRuns(now, p.program));
}

/** Some of a lab's processes would not stop: its directory and lab.json are kept for another try. */
export class LabStopError extends Error {
  constructor(file: string, left: { pid: number; command: string }[]) {
    super(
      `${left.length} processes of the lab in ${file} still run after SIGKILL: ${left.map((p) => `${p.pid} (${p.command.slice(0, 120)})`).join(', ')}; its directory and lab.json are kept`,
    );
    this.name = 'LabStopError';
  }
}

/**
 * Stops what a lab file says it started, then whatever else still runs in the lab's directory, and
 * only then removes the directory and the file. Never cancelled: it is what a cancelled start runs.
 */
export function stopLab(file = DEFAULT_LAB_FILE, log: (m: string) => void = () => {}): Promise<void> {
  return uncancellable(() => stopLabNow(file, log));
}

async function stopLabNow(file: string, log: (m: string) => void): Promise<void> {
  if (!existsSync(file)) return;
  let info: LabInfo;
  try {
    info = readLab(file);
  } catch {
    rmSync(file, { force: true });
    return;
  }
  const running = info.processes.map((p) => ({ ...p, pid: currentPid(p) })).filter((p) => alive(p.pid) && pidRuns(p.pid, p.program));
  if (running.length) log(`stopping ${running.length} processes: ${running.map((p) => `${p.name} (${p.pid})`).join(', ')}`);
  // Clients (the console, the workers) first, so they do not log the servers going away.
  // Patroni (a client of etcd) stops its Postgres first; etcd after it, with the servers.
  const isServer = (p: LabProcess) => SERVER_PROGRAMS.includes(p.program);
  await Promise.all(running.filter((p) => !isServer(p)).map((p) => stopPid(p.pid, p.signal)));
  await Promise.all(running.filter(isServer).map((p) => stopPid(p.pid, p.signal)));
  const ours = info.dir && info.dir.startsWith(os.tmpdir()) && path.basename(info.dir).startsWith('pgherd-lab-');
  if (ours) {
    // What lab.json does not list but still uses the directory: a Postgres started by hand or by a test
    // that died before it stopped it, a command left running by an SSH session. Removing the directory
    // under it would leave it running on deleted files. A process with a terminal is someone's (a shell
    // in a log directory, a `tail -f`): told, not stopped.
    const strays = processesUnder(info.dir);
    const theirs = strays.filter((p) => p.terminal);
    const unlisted = strays.filter((p) => !p.terminal);
    const named = (ps: FoundProcess[]) => ps.map((p) => `${p.pid} (${p.command.slice(0, 80)})`).join(', ');
    if (unlisted.length) {
      log(`stopping ${unlisted.length} processes that lab.json did not list: ${named(unlisted)}`);
      await Promise.all(unlisted.map((p) => stopPid(p.pid, 'SIGTERM', 5_000)));
    }
    if (theirs.length) log(`left alone, as they run in a terminal: ${named(theirs)}; the lab's directory goes from under them`);
    const left = processesUnder(info.dir).filter((p) => !p.terminal);
    if (left.length) throw new LabStopError(file, left);
    // Its volumes' mounts and loop devices (lib/lab/volumes.ts), before their directory goes.
    await releaseLabVolumes(info.dir);
    rmSync(info.dir, { recursive: true, force: true });
  }
  rmSync(file, { force: true });
}

export async function startLab(opts: LabOptions): Promise<LabInfo> {
  const log = opts.log ?? (() => {});
  refuseIfOwned(opts.file);
  await stopLab(opts.file, log); // a previous run that was killed hard leaves its file behind
  const id = labIdentity();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgherd-lab-'));
  chmodSync(dir, 0o755);
  chownSync(dir, id.uid, id.gid);

  const info: LabInfo = {
    name: path.basename(opts.file, '.json'),
    dir,
    osUser: id.user,
    pgBin: setting('PGHERD_PG_BIN'),
    startedAt: new Date().toISOString(),
    database: { url: '', adminUrl: '' },
    redis: null,
    ssh: null,
    dns: null,
    pgbouncer: [],
    ldap: null,
    tls: null,
    pgAccess: null,
    metrics: { token: randomBytes(24).toString('hex'), workers: [] },
    instances: [],
    processes: [],
    ownerPid: process.pid,
  };
  writeLab(opts.file, info);
  // Written as soon as anything runs, so a failure half-way can still be cleaned up by PID; a start
  // cancelled meanwhile ends here, with the process it has just started recorded for the stop.
  const track = (p: LabProcess) => {
    info.processes.push(p);
    writeLab(opts.file, info);
    throwIfCancelled();
  };
  try {
    // Every Postgres of the lab logs here (pgherd's own database made it first before it had sites).
    mkdirOwned(id, path.join(dir, 'log'), 0o755);
    if (opts.controlPlane) {
      info.tls = await makeCa(id, path.join(dir, 'ca'));
      const sites = ['a', 'b', 'c'].map((name, i) => ({ name, address: `${opts.controlPlane!.subnet}.${String(i + 1)}` }));
      log(
        `starting pgherd's control plane on sites ${sites.map((x) => `${x.name} (${x.address})`).join(', ')}: etcd, Patroni, HAProxy, Redis and Sentinel`,
      );
      const programs: Record<string, { program: string; signal: NodeJS.Signals }> = {
        etcd: { program: 'etcd', signal: 'SIGTERM' },
        patroni: { program: 'patroni', signal: 'SIGTERM' },
        haproxy: { program: 'haproxy', signal: 'SIGTERM' },
        redis: { program: 'redis-server', signal: 'SIGTERM' },
        sentinel: { program: 'redis-sentinel', signal: 'SIGTERM' },
        postgres: { program: 'postgres', signal: 'SIGINT' },
      };
      const cp = await startControlPlane(id, path.join(dir, 'control-plane'), info.tls, sites, (p) =>
        track({
          name: `${p.name}-${p.site}`,
          pid: p.pid,
          site: p.site,
          ...programs[p.name]!,
          ...(p.pidFile ? { pidFile: p.pidFile } : {}),
        }),
      );
      info.database = { url: cp.databaseUrls.a!, adminUrl: cp.databaseUrls.a!.replace(/\/[^/]+$/, '/postgres') };
      info.redis = { url: cp.redisUrl };
      info.controlPlane = { sites, databaseUrls: cp.databaseUrls, redisUrl: cp.redisUrl };
      writeLab(opts.file, info);
    }
    if (!opts.controlPlane) {
      const dbPort = await freePort();
      const db: PgNode = node(dir, 'pgherd-db', '127.0.0.1', dbPort);
      log(`starting pgherd's database on 127.0.0.1:${dbPort}`);
      // pgherd's own database gets Postgres's default memory, not the small fleet instances' 16 MB.
      await initPrimary(id, db, ["shared_buffers = '128MB'", 'max_connections = 100']);
      touchLog(id, db.logFile);
      track({
        name: 'pgherd-db',
        pid: await startNode(id, db),
        program: 'postgres',
        signal: 'SIGINT',
        pidFile: path.join(db.dataDirectory, 'postmaster.pid'),
      });
      await query(dsn(db), 'CREATE DATABASE pgherd');
      info.database = { url: dsn(db, 'pgherd'), adminUrl: dsn(db) };

      if (opts.redis !== false) {
        const port = await freePort();
        log(`starting Redis on 127.0.0.1:${port}`);
        const pid = await startRedis(id, dir, port);
        track({ name: 'redis', pid, program: 'redis-server', signal: 'SIGTERM' });
        info.redis = { url: `redis://127.0.0.1:${port}` };
      }
    }

    if (opts.fleet !== false) {
      const spec = opts.fleet ?? DEFAULT_FLEET;
      const members = planFleet(spec);
      const port = await portFreeOnAll(
        members.map((m) => m.address),
        [5432, 5433, ...range(25432, 40)],
      );
      info.tls ??= await makeCa(id, path.join(dir, 'ca'));
      info.pgAccess = writePgAccess(dir, info.tls, [
        ...new Set([
          ...members.map((m) => m.environment),
          ...(opts.patroni ?? []).map((p) => p.environment),
          ...(opts.rds ?? []).map((p) => p.environment),
        ]),
      ]);
      log(`starting the sandbox fleet: ${members.length} instances on port ${port} (TLS, pgherd's role per environment)`);
      // Every build the lab has is installed (the agents report them all); some herds run on one.
      for (const name of Object.keys(LAB_BUILD_PACKAGES) as LabBuildName[]) labBuild(name);
      const builds = new Map(Object.entries(spec.builds ?? {}).map(([herd, name]) => [herd, labBuild(name)]));
      await startFleet(id, dir, members, port, info, track, builds);
      if (opts.patroni?.length) await startLabPatroni(id, dir, opts.patroni, spec.sites, info, track, log);
      if (opts.rds?.length && opts.aws !== false) info.rds = await startRdsPostgres(id, dir, opts.rds, spec.sites, info, track, log);
      // In front of a fleet herd or a Patroni herd.
      const pooled = (opts.pgbouncer ?? [{ environment: 'production', herd: 'billing' }]).filter((h) =>
        info.instances.some((m) => m.environment === h.environment && m.herd === h.herd),
      );
      const poolerHosts = pooled.map((h, k) => ({ ...h, ...poolerServer(spec, h.environment, h.herd, k) }));
      if (poolerHosts.length) {
        const bouncerPort = await portFreeOnAll(
          poolerHosts.map((p) => p.address),
          [6432, ...range(26432, 40)],
        );
        for (const p of poolerHosts) {
          const primary = info.instances.find((i) => i.environment === p.environment && i.herd === p.herd && i.role === 'primary')!;
          log(`starting PgBouncer for ${p.environment}/${p.herd} on ${p.address}:${bouncerPort}`);
          const admin = p.scram ? await poolerAdminSecurity(id, dir, info, p) : undefined;
          const b = await startPgbouncer(id, dir, { ...p, server: p.hostname, site: primary.site, port: bouncerPort, primary, admin });
          track({ name: `pgbouncer-${p.hostname}`, pid: b.pid, program: 'pgbouncer', signal: 'SIGTERM' });
          info.pgbouncer.push(b.pooler);
        }
      }
      if (opts.backup !== false) {
        info.backup = planBackupHosts(dir, [...new Set(members.map((m) => m.environment))], spec.sites, spec.subnet);
        await prepareBackupHosts(id, info.backup, info.tls);
      }
      const hosts = [
        ...members.map((m) => ({ address: m.address, environment: m.environment })),
        ...(info.backup?.hosts ?? []).map((h) => ({ address: h.address, environment: h.environment })),
        ...(info.backup?.scratch ?? []).map((h) => ({ address: h.address, environment: h.environment })),
        // Where EC2 instances the lab's AWS launches answer.
        ...(opts.aws === false ? [] : (info.backup?.launch ?? [])).map((h) => ({ address: h.address, environment: h.environment })),
        ...poolerHosts.map((p) => ({ address: p.address, environment: p.environment })),
        ...info.instances.filter((i) => i.patroniUrl).map((i) => ({ address: i.address, environment: i.environment })),
      ];
      const sshPort = await portFreeOnAll(
        hosts.map((h) => h.address),
        [2222, ...range(22022, 40)],
      );
      log(`starting sshd on port ${sshPort} of every fleet address (a host key and an authorized pgherd key per environment)`);
      const sshd = await startSshd(id, dir, hosts, sshPort);
      sshd.pids.forEach((pid, i) => track({ name: `sshd-${i}`, pid, program: 'sshd', signal: 'SIGTERM' }));
      info.ssh = sshd.ssh;
      // pgBackRest's own SSH between an environment's hosts (WAL pushed to the backup host, backups read from the members).
      if (info.backup) await labInternalSsh(id, sshd.authorizedFiles);
      if (opts.dns !== false) {
        const dnsPort = await freePort();
        log(`starting BIND 9 on 127.0.0.1:${dnsPort} (zone ${LAB_ZONE})`);
        const zone = labZone(info.instances, info.pgbouncer, backupZoneHosts(info.backup));
        const bind = await startBind(id, dir, dnsPort, zone);
        track({ name: 'named', pid: bind.pid, program: 'named', signal: 'SIGTERM' });
        info.dns = { ...bind.dns, herds: zone.herds };
      }
      if (opts.aws !== false) {
        log('starting moto (AWS) behind the lab front: an EC2 instance per database server');
        info.aws = await startAws(
          id,
          dir,
          // Patroni's members are not EC2 instances here: the lab's EC2 front starts and stops Postgres with pg_ctl, behind Patroni's back.
          info.instances
            .filter((i) => !i.patroniUrl)
            .map((i) => ({ ...i, hostname: i.server, logFile: path.join(dir, 'log', `${i.server}.log`) })),
          spec.sites,
          info.pgBin,
          track,
          { ca: info.tls, environments: [...new Set(info.instances.map((i) => i.environment))] },
          (info.backup?.launch ?? []).map((l) => ({ ...l, fingerprint: info.ssh!.environments[l.environment]!.hostKeyFingerprint })),
          info.rds ?? [],
        );
        // Each environment's S3 repository, where PGHERD_PG_CONFIG says backups to S3 go (its bucket in the store).
        if (info.aws.s3) addS3Places(info.pgAccess, info.aws.s3);
        // What the environment's image gives a launched instance: its certificate, naming every launch address.
        for (const v of info.aws.vpcs ?? []) {
          const tls = info.backup?.images.find((img) => img.environment === v.environment)?.tls;
          if (tls) v.launchTls = { certFile: tls.certFile, keyFile: tls.keyFile };
        }
        if (opts.route53 && info.dns) {
          const env = opts.route53;
          log(`serving ${env}'s names from Route 53 (a hosted zone in moto)`);
          info.aws.route53 = await startRoute53(
            info.aws.motoUrl,
            env,
            LAB_ZONE,
            info.dns.herds
              .filter((h) => h.environment === env)
              .map((h) => ({
                name: h.writeName,
                target: info.instances.find((i) => i.environment === env && i.herd === h.herd && i.role === 'primary')!.server,
              })),
            info.dns.configFile,
          );
        }
      }
      if (opts.ldap !== false) {
        const ldapPort = await freePort();
        log(`starting OpenLDAP slapd on 127.0.0.1:${ldapPort} (dc=lab,dc=internal)`);
        const l = await startLdap(id, dir, ldapPort, await freePort(), info.tls);
        track({ name: 'slapd', pid: l.pid, program: 'slapd', signal: 'SIGTERM' });
        info.ldap = l.ldap;
      }
    }
    // Patroni's members were entered with Patroni's PID: their postmasters run now.
    for (const { p, now } of staleEntries(info)) p.pid = now;
    writeLab(opts.file, info);
    return info;
  } catch (err) {
    await stopLab(opts.file, log);
    throw err;
  }
}

/**
 * Awaits every promise, then throws the first failure: parallel starts all end before the lab's
 * cleanup runs, so none starts a process after the stop has read lab.json.
 */
async function settled<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The lab's DNS zone: every server by name, and a write name per herd (`<herd>.<environment>.db.<zone>`). */
export const LAB_ZONE = 'lab.internal';
export const writeNameOf = (environment: string, herd: string, zone = LAB_ZONE) => `${herd}.${environment}.db.${zone}`;
/** A replica's read name (`<host>-ro.<environment>.db.<zone>`): a record matched to that instance, which a resize drains. */
export const readNameOf = (i: { server: string; environment: string }, zone = LAB_ZONE) =>
  `${i.server.split('.')[0] ?? i.server}-ro.${i.environment}.db.${zone}`;
/** The read names' TTL: short, so that a drain's wait is short in the lab. */
export const READ_NAME_TTL = 2;

function labZone(instances: LabInstance[], poolers: LabPgbouncer[], others: { name: string; address: string }[] = []) {
  const herds = [...new Map(instances.map((i) => [`${i.environment}/${i.herd}`, i])).values()].map((i) => ({
    environment: i.environment,
    herd: i.herd,
    writeName: writeNameOf(i.environment, i.herd),
  }));
  return {
    zone: LAB_ZONE,
    hosts: [
      ...instances.map((i) => ({ name: i.server, address: i.address })),
      ...poolers.map((p) => ({ name: p.server, address: p.address })),
      ...others,
    ],
    aliases: [
      ...herds.map((h) => ({
        name: h.writeName,
        target: instances.find((i) => i.environment === h.environment && i.herd === h.herd && i.role === 'primary')!.server,
      })),
      ...instances.filter((i) => i.role === 'replica').map((i) => ({ name: readNameOf(i), target: i.server, ttl: READ_NAME_TTL })),
    ],
    herds,
  };
}

function range(from: number, n: number) {
  return Array.from({ length: n }, (_, i) => from + i);
}

function node(dir: string, name: string, address: string, port: number): PgNode {
  const home = path.join(dir, 'pg', name);
  return {
    name,
    address,
    port,
    dataDirectory: path.join(home, 'data'),
    socketDirectory: path.join(home, 'run'),
    logFile: path.join(dir, 'log', `${name}.log`),
  };
}

/** A PostgreSQL role name for pgherd in `environment`: pgherd_<environment>, other characters as _. */
export const pgherdRoleOf = (environment: string) => `pgherd_${environment.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);

function writePgAccess(dir: string, ca: LabCa, environments: string[]): LabPgAccess {
  const home = path.join(dir, 'pg-access');
  mkdirSync(home, { mode: 0o700 });
  const roles: LabPgAccess['roles'] = {};
  const cipherFiles: Record<string, string> = {};
  for (const env of environments) {
    const passwordFile = path.join(home, `${env}.password`);
    const password = randomBytes(18).toString('base64url');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    roles[env] = { user: pgherdRoleOf(env), password, passwordFile };
    // The environment's backup repository passphrase (pgBackRest's repo1-cipher-pass).
    cipherFiles[env] = path.join(home, `${env}.backup-cipher`);
    writeFileSync(cipherFiles[env], `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    // Its S3 keys (moto takes any; a real store checks them).
    writeFileSync(path.join(home, `${env}.s3-key`), `LAB${randomBytes(8).toString('hex').toUpperCase()}\n`, { mode: 0o600 });
    writeFileSync(path.join(home, `${env}.s3-secret`), `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  }
  const configFile = path.join(home, 'pg-access.json');
  writeFileSync(
    configFile,
    JSON.stringify(
      {
        environments: Object.fromEntries(
          environments.map((env) => [
            env,
            {
              user: roles[env]!.user,
              passwordFile: roles[env]!.passwordFile,
              tls: { mode: 'verify-full', caFile: ca.caFile },
              backup: {
                cipherPassFile: cipherFiles[env],
                s3KeyFile: path.join(home, `${env}.s3-key`),
                s3SecretFile: path.join(home, `${env}.s3-secret`),
              },
            },
          ]),
        ),
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  return { configFile, roles };
}

/** The node's certificate and pgherd's role, for a fleet member of `environment`. */
export async function fleetNodeSecurity(
  id: Identity,
  lab: Pick<LabInfo, 'tls' | 'dir'>,
  n: PgNode,
  environment: string,
  hostname: string,
): Promise<PgNode> {
  const tls = await issueCertificate(id, lab.tls!, path.join(lab.dir, 'pg', n.name, 'tls'), 'server', {
    ips: [n.address],
    names: [hostname],
  });
  return { ...n, tls, pgherdUser: pgherdRoleOf(environment) };
}

/**
 * The lab's Patroni herds: one etcd for all, then each herd's members (Patroni's name: the server's host
 * name), Postgres with TLS and pgherd's role like the fleet's, and the REST credentials in
 * PGHERD_PG_CONFIG's entry for the environment (`patroni`).
 */
async function startLabPatroni(
  id: Identity,
  dir: string,
  specs: NonNullable<LabOptions['patroni']>,
  sites: string[],
  info: LabInfo,
  track: (p: LabProcess) => void,
  log: (m: string) => void,
) {
  const etcd = await startEtcd(id, dir, await freePort(), await freePort());
  track({ name: 'etcd', pid: etcd.pid, program: 'etcd', signal: 'SIGTERM' });
  info.patroni = [];
  for (const spec of specs) {
    const n = spec.members ?? 3;
    const planned = Array.from({ length: n }, (_, k) => ({
      name: `db-${shortEnv(spec.environment)}-${spec.herd}-${String(k + 1)}.lab.internal`,
      address: `${spec.subnet ?? '127.0.20'}.${String(k + 1)}`,
      site: sites[k % sites.length] ?? 'dc-east',
    }));
    const addresses = planned.map((m) => m.address);
    const pgPort = await portFreeOnAll(addresses, [5432, 5433, ...range(25432, 40)]);
    const restPort = await portFreeOnAll(addresses, [8008, 8009, ...range(28008, 40)]);
    const role = info.pgAccess!.roles[spec.environment]!;
    const restPassword = randomBytes(18).toString('base64url');
    const scope = `${spec.environment}-${spec.herd}`;
    log(
      `starting Patroni herd ${scope}: ${String(n)} members on ${addresses.join(', ')} (Postgres ${String(pgPort)}, REST https ${String(restPort)})`,
    );
    const members = await settled(
      planned.map(async (m) => ({
        name: m.name,
        address: m.address,
        pgPort,
        restPort,
        pgTls: await issueCertificate(id, info.tls!, path.join(dir, 'patroni-tls', m.name), 'server', {
          ips: [m.address],
          names: [m.name],
        }),
      })),
    );
    const herd = await startPatroniHerd(id, dir, {
      scope,
      members,
      etcd: etcd.url,
      restUser: 'pgherd',
      restPassword,
      ca: info.tls!,
      pgherd: { user: role.user, password: role.password },
      started: (m) => {
        track({ name: `patroni-${m.name}`, pid: m.pid, program: 'patroni', signal: 'SIGTERM' });
        // Its Postgres, in case its Patroni dies without stopping it (SIGKILL): the lab stops it after Patroni.
        track({ name: m.name, pid: m.pid, program: 'postgres', signal: 'SIGINT', pidFile: path.join(m.dataDirectory, 'postmaster.pid') });
      },
    });
    const [leader] = herd.members;
    for (const [k, m] of herd.members.entries())
      info.instances.push({
        environment: spec.environment,
        herd: spec.herd,
        server: m.name,
        site: planned[k]!.site,
        address: m.address,
        port: m.pgPort,
        dataDirectory: m.dataDirectory,
        socketDirectory: path.join(path.dirname(m.dataDirectory), 'socket'),
        role: k === 0 ? 'primary' : 'replica',
        upstream: k === 0 ? null : leader!.name,
        version: 15,
        dsn: dsn({ address: m.address, port: m.pgPort }),
        patroniUrl: m.restUrl,
      });
    info.patroni.push({
      environment: spec.environment,
      herd: spec.herd,
      scope,
      members: herd.members.map((m) => ({ server: m.name, restUrl: m.restUrl, configFile: m.configFile, logFile: m.logFile })),
      restUser: herd.restUser,
      restPassword,
      caFile: herd.caFile,
      etcd: etcd.url,
    });
    addPatroniAccess(info.pgAccess!, spec.environment, { user: herd.restUser, password: restPassword, caFile: herd.caFile, dir });
  }
}

/** The DB instance identifier of an RDS herd's member k (0: its source). */
export const rdsIdentifierOf = (environment: string, herd: string, k: number) => `${shortEnv(environment)}-${herd}-${String(k + 1)}`;
/** The class the lab's RDS instances are created with. */
export const LAB_RDS_CLASS = 'db.m6i.large';

/**
 * The Postgres behind each of the lab's RDS herds: a source and its replicas streaming, with TLS and
 * pgherd's role like the fleet's, on addresses of their own that no sshd answers at (RDS gives no shell).
 */
async function startRdsPostgres(
  id: Identity,
  dir: string,
  specs: NonNullable<LabOptions['rds']>,
  sites: string[],
  info: LabInfo,
  track: (p: LabProcess) => void,
  log: (m: string) => void,
): Promise<LabRds[]> {
  const out: LabRds[] = [];
  let n = 0;
  for (const spec of specs) {
    const planned: PlannedMember[] = Array.from({ length: (spec.replicas ?? 1) + 1 }, (_, k) => ({
      environment: spec.environment,
      herd: spec.herd,
      hostname: rdsIdentifierOf(spec.environment, spec.herd, k),
      address: `${spec.subnet ?? '127.0.22'}.${String(++n)}`,
      site: sites[k % sites.length] ?? 'dc-east',
      role: k === 0 ? 'primary' : 'replica',
      index: k,
    }));
    const port = await portFreeOnAll(
      planned.map((m) => m.address),
      [5432, 5433, ...range(25432, 40)],
    );
    log(
      `starting RDS herd ${spec.environment}/${spec.herd}'s Postgres: ${planned.map((m) => `${m.hostname} on ${m.address}:${String(port)}`).join(', ')}`,
    );
    const started: LabInfo = { ...info, instances: [] };
    await startFleet(id, dir, planned, port, started, track, new Map());
    // Two spare addresses for read replicas RDS is asked to create, certified like the members'.
    const spares = await settled(
      [1, 2].map(async () => {
        const address = `${spec.subnet ?? '127.0.22'}.${String(++n)}`;
        const tls = await issueCertificate(id, info.tls!, path.join(dir, 'rds-spares', address), 'server', {
          ips: [address],
          names: [address],
        });
        return { address, port, ...tls, pgherdUser: pgherdRoleOf(spec.environment) };
      }),
    );
    out.push({
      environment: spec.environment,
      herd: spec.herd,
      ...(spec.multiAz ? { multiAz: true } : {}),
      members: started.instances.map((i) => ({
        ...i,
        identifier: i.server,
        instanceClass: LAB_RDS_CLASS,
        logFile: path.join(dir, 'log', `${i.server}.log`),
      })),
      spares,
    });
  }
  return out;
}

/** PGHERD_PG_CONFIG's backup entries gain their environment's S3 repository (its bucket in the lab's store). */
function addS3Places(access: LabPgAccess, s3: NonNullable<NonNullable<LabInfo['aws']>['s3']>) {
  const config = JSON.parse(readFileSync(access.configFile, 'utf8')) as {
    environments: Record<string, { backup?: Record<string, unknown> }>;
  };
  for (const [environment, entry] of Object.entries(config.environments)) {
    const bucket = s3.buckets[environment];
    if (bucket && entry.backup)
      entry.backup.s3 = { bucket, endpoint: s3.endpoint, region: 'eu-west-1', connectHost: s3.host, port: s3.port, caFile: s3.caFile };
  }
  writeFileSync(access.configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
}

/** PGHERD_PG_CONFIG's entry for `environment` gains Patroni's REST credentials (the password in a file of its own). */
function addPatroniAccess(access: LabPgAccess, environment: string, p: { user: string; password: string; caFile: string; dir: string }) {
  const passwordFile = path.join(p.dir, 'pg-access', `${environment}.patroni-password`);
  writeFileSync(passwordFile, `${p.password}\n`, { mode: 0o600 });
  const config = JSON.parse(readFileSync(access.configFile, 'utf8')) as { environments: Record<string, Record<string, unknown>> };
  const entry = config.environments[environment];
  if (!entry) throw new Error(`PGHERD_PG_CONFIG has no entry for ${environment}`);
  // Each member's patroni.yml sits beside its data directory (lib/lab/patroni.ts).
  entry.patroni = { user: p.user, passwordFile, caFile: p.caFile, configFile: '{data_directory}/../patroni.yml' };
  writeFileSync(access.configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
}

/**
 * A pooler's certificate, and its admin user's SCRAM verifier: of the environment's PgBouncer password
 * (made by its first such pooler, in the `pgbouncer` entry of PGHERD_PG_CONFIG with the lab's CA).
 */
async function poolerAdminSecurity(
  id: Identity,
  dir: string,
  info: LabInfo,
  p: { environment: string; hostname: string; address: string },
): Promise<{ verifier: string; certFile: string; keyFile: string }> {
  const access = info.pgAccess!;
  const passwordFile = path.join(dir, 'pg-access', `${p.environment}.pgbouncer-password`);
  if (!existsSync(passwordFile)) {
    writeFileSync(passwordFile, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
    const config = JSON.parse(readFileSync(access.configFile, 'utf8')) as { environments: Record<string, Record<string, unknown>> };
    const entry = config.environments[p.environment];
    if (!entry) throw new Error(`PGHERD_PG_CONFIG has no entry for ${p.environment}`);
    entry.pgbouncer = { passwordFile, tls: { mode: 'verify-full', caFile: info.tls!.caFile } };
    writeFileSync(access.configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
  }
  const cert = await issueCertificate(id, info.tls!, path.join(dir, 'pgbouncer-tls'), p.hostname, {
    ips: [p.address],
    names: [p.hostname],
  });
  return { verifier: scramVerifier(readFileSync(passwordFile, 'utf8').trim()), ...cert };
}

async function startFleet(
  id: Identity,
  dir: string,
  members: PlannedMember[],
  port: number,
  info: LabInfo,
  track: (p: LabProcess) => void,
  builds: Map<string, LabBuild>,
) {
  const herds = new Map<string, PlannedMember[]>();
  for (const m of members) {
    const key = `${m.environment}/${m.herd}`;
    herds.set(key, [...(herds.get(key) ?? []), m]);
  }
  const toInstance = (m: PlannedMember, n: PgNode, upstream: string | null): LabInstance => ({
    environment: m.environment,
    herd: m.herd,
    server: m.hostname,
    site: m.site,
    address: m.address,
    port,
    dataDirectory: n.dataDirectory,
    socketDirectory: n.socketDirectory,
    role: m.role,
    upstream,
    version: 15,
    ...(builds.has(`${m.environment}/${m.herd}`) ? { binDir: builds.get(`${m.environment}/${m.herd}`)!.binDir } : {}),
    dsn: dsn(n),
  });
  // Herds come up in parallel; within a herd the primary first, then its replicas together.
  await settled(
    [...herds.values()].map(async (group) => {
      const [p, ...replicas] = group;
      const bin = builds.get(`${p!.environment}/${p!.herd}`)?.binDir ?? info.pgBin;
      const primary = await fleetNodeSecurity(id, info, node(dir, p!.hostname, p!.address, port), p!.environment, p!.hostname);
      touchLog(id, primary.logFile);
      await initPrimary(id, primary, [], bin);
      track({
        name: p!.hostname,
        pid: await startNode(id, primary, bin),
        program: 'postgres',
        signal: 'SIGINT',
        pidFile: path.join(primary.dataDirectory, 'postmaster.pid'),
      });
      // pgherd's role, before the replicas are cloned (they get it with the data).
      const role = info.pgAccess!.roles[p!.environment];
      await query(dsn(primary), `CREATE ROLE ${role!.user} LOGIN SUPERUSER PASSWORD '${role!.password}'`);
      info.instances.push(toInstance(p!, primary, null));
      await settled(
        replicas.map(async (r) => {
          const n = await fleetNodeSecurity(id, info, node(dir, r.hostname, r.address, port), r.environment, r.hostname);
          touchLog(id, n.logFile);
          await cloneReplica(id, n, primary);
          track({
            name: r.hostname,
            pid: await startNode(id, n, bin),
            program: 'postgres',
            signal: 'SIGINT',
            pidFile: path.join(n.dataDirectory, 'postmaster.pid'),
          });
          info.instances.push(toInstance(r, n, p!.hostname));
        }),
      );
      await waitStreaming(
        primary,
        replicas.map((r) => r.hostname),
      );
    }),
  );
  const order = new Map(members.map((m, i) => [m.hostname, i]));
  info.instances.sort((a, b) => order.get(a.server)! - order.get(b.server)!);
}
