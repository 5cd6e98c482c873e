// pgherd's own state across sites, for the lab: pgherd's database on a Patroni herd of three members
// (synchronous_mode: a commit pgherd was told of is on a second member), one per site, its DCS an etcd
// cluster of three (one member a site), and an HAProxy on each site that pgherd's processes of that
// site connect through: it sends them to whichever member Patroni's REST API says is the primary
// (GET /primary answers 200 on the leader only) and cuts their sessions to a member marked down, so a
// pool's connections to a demoted primary end instead of meeting read-only errors. The queue is a Redis
// master (site A) and its replica (site B) under three sentinels, one a site. Sites A and B run
// pgherd's processes; site C is the tie-breaker (an etcd and a Patroni member, no pgherd process).
// A "site" is a loopback address; losing it is SIGKILL of everything on it.
import { spawn } from 'node:child_process';
import { chownSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from '@/lib/testing/wait';
import { PG_SUPERUSER, query } from './postgres';
import { asLabUser, mkdirOwned, stopPid, type Identity } from './proc';
import { startPatroniHerd, type PatroniHerd } from './patroni';
import { redisServerArgv } from './redis';
import type { LabCa } from './tls';

export interface ControlPlaneSite {
  name: string;
  address: string;
}

/**
 * A process of the control plane. A Patroni member's Postgres is not Patroni's child (Patroni detaches
 * it): it is listed on its own, by its postmaster.pid (its PID once it has started).
 */
export interface ControlPlaneProcess {
  site: string;
  name: string;
  pid: number;
  pidFile?: string;
}

export interface ControlPlane {
  sites: ControlPlaneSite[];
  /** Every process the control plane runs, by site: what `kill-site` kills. */
  processes: ControlPlaneProcess[];
  etcd: string[];
  patroni: PatroniHerd;
  /** pgherd's database through each site's HAProxy (sites A and B). */
  databaseUrls: Record<string, string>;
  /** pgherd's database on each member directly (for a test to read what each holds). */
  memberUrls: Record<string, string>;
  /** The queue's REDIS_URL: its sentinels and the master's name. */
  redisUrl: string;
}

const ETCD_CLIENT = 2379;
const ETCD_PEER = 2380;
const PG_PORT = 5432;
const REST_PORT = 8008;
export const HAPROXY_PORT = 5000;
export const CONTROL_DATABASE = 'pgherd';
/**
 * Patroni's timings for pgherd's own database, as docs/deployment.md gives them: a leader that dies is
 * replaced within ttl + loop_wait (25 s), inside the 30 s that pgherd's lease outlasts (its TTL of
 * 45 s is given up at 3/4, 33.75 s, without a renewal).
 */
export const CONTROL_PATRONI_TIMINGS = { ttl: 20, loop_wait: 5, retry_timeout: 5 };

/** One etcd member of a cluster of `sites`, on its site's address; returns its PID. */
function spawnEtcd(id: Identity, dir: string, site: ControlPlaneSite, sites: ControlPlaneSite[]): number {
  const data = path.join(dir, `etcd-${site.name}`);
  mkdirOwned(id, data);
  const out = openSync(path.join(dir, `etcd-${site.name}.log`), 'a');
  const client = `http://${site.address}:${ETCD_CLIENT}`;
  const peer = `http://${site.address}:${ETCD_PEER}`;
  const [cmd, ...args] = asLabUser(id, [
    '/usr/bin/etcd',
    '--name',
    site.name,
    '--data-dir',
    data,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    sites.map((s) => `${s.name}=http://${s.address}:${ETCD_PEER}`).join(','),
    '--initial-cluster-state',
    'new',
    '--initial-cluster-token',
    'pgherd-control-plane',
    '--enable-v2=false',
  ]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  return child.pid!;
}

/** HAProxy's configuration for one site: pgherd's database, wherever Patroni says its primary is. */
export function haproxyConfig(
  site: ControlPlaneSite,
  members: { name: string; address: string }[],
  caFile: string,
  statsSocket: string | null = null,
): string {
  return [
    'global',
    '  maxconn 400',
    ...(statsSocket ? [`  stats socket ${statsSocket} mode 600 level user`] : []),
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    // A pool keeps idle connections for long: HAProxy must not end them first.
    '  timeout client 1h',
    '  timeout server 1h',
    '  timeout check 2s',
    `listen pgherd_db`,
    `  bind ${site.address}:${HAPROXY_PORT}`,
    '  option httpchk',
    '  http-check send meth GET uri /primary',
    '  http-check expect status 200',
    // Checked twice a second; down after two misses, up after one answer. A member marked down has its
    // sessions cut: a pool's connection to a demoted primary ends rather than meeting read-only errors.
    '  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
    ...members.map((m) => `  server ${m.name} ${m.address}:${PG_PORT} check port ${REST_PORT} check-ssl verify required ca-file ${caFile}`),
    '',
  ].join('\n');
}

/** Where a site's HAProxy answers `show stat` (the lab reads which member it sends to). */
const statsSocketOf = (dir: string, site: ControlPlaneSite) => path.join(dir, `haproxy-${site.name}.sock`);

/** What a site's HAProxy says of each member: "UP", "DOWN" (and the transitions between). */
export async function haproxyView(dir: string, site: ControlPlaneSite): Promise<Record<string, string>> {
  const text = await new Promise<string>((resolve, reject) => {
    const s = net.connect(statsSocketOf(dir, site));
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('utf8')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.write('show stat\n');
  });
  const [head, ...rows] = text.trim().split('\n');
  const cols = (head ?? '').replace(/^# /, '').split(',');
  const [px, sv, st] = ['pxname', 'svname', 'status'].map((c) => cols.indexOf(c));
  const view: Record<string, string> = {};
  for (const r of rows) {
    const f = r.split(',');
    if (f[px!] === 'pgherd_db' && !['FRONTEND', 'BACKEND'].includes(f[sv!] ?? '')) view[f[sv!]!] = f[st!] ?? '';
  }
  return view;
}

function spawnHaproxy(id: Identity, dir: string, site: ControlPlaneSite, config: string): number {
  const file = path.join(dir, `haproxy-${site.name}.cfg`);
  writeFileSync(file, config, { mode: 0o644 });
  chownSync(file, id.uid, id.gid);
  const out = openSync(path.join(dir, `haproxy-${site.name}.log`), 'a');
  const [cmd, ...args] = asLabUser(id, ['/usr/sbin/haproxy', '-db', '-f', file]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  return child.pid!;
}

const REDIS_PORT = 6379;
const SENTINEL_PORT = 26379;
/** The master's name the sentinels watch. */
export const SENTINEL_MASTER = 'pgherd';
/**
 * Sentinel's timings for pgherd's queue (docs/deployment.md): a master that does not answer for 2 s is
 * down for a sentinel; two of three agreeing, one of them fails it over.
 */
export const SENTINEL_DOWN_AFTER_MS = 2000;

/** redis-server on a site's address: the master, or a replica of it (`of`). */
function spawnRedis(id: Identity, dir: string, site: ControlPlaneSite, of: ControlPlaneSite | null): number {
  const home = path.join(dir, `redis-${site.name}`);
  mkdirOwned(id, home);
  const out = openSync(path.join(dir, `redis-${site.name}.log`), 'a');
  const [cmd, ...args] = asLabUser(id, [
    ...redisServerArgv(REDIS_PORT, site.address, home),
    // Its own address, not the one its connections leave from (127.0.0.1 on loopback): what Sentinel records.
    '--replica-announce-ip',
    site.address,
    ...(of ? ['--replicaof', of.address, String(REDIS_PORT)] : []),
  ]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  return child.pid!;
}

/** A sentinel on a site's address, watching `master` (it rewrites its configuration file: the lab user's). */
function spawnSentinel(id: Identity, dir: string, site: ControlPlaneSite, master: ControlPlaneSite): number {
  const file = path.join(dir, `sentinel-${site.name}.conf`);
  writeFileSync(
    file,
    [
      `port ${String(SENTINEL_PORT)}`,
      `bind ${site.address}`,
      // Announced to the other sentinels as its site's address (else the loopback source address, the same for all).
      `sentinel announce-ip ${site.address}`,
      `dir ${dir}`,
      `sentinel monitor ${SENTINEL_MASTER} ${master.address} ${String(REDIS_PORT)} 2`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER} ${String(SENTINEL_DOWN_AFTER_MS)}`,
      `sentinel failover-timeout ${SENTINEL_MASTER} 10000`,
      `sentinel parallel-syncs ${SENTINEL_MASTER} 1`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  chownSync(file, id.uid, id.gid);
  const out = openSync(path.join(dir, `sentinel-${site.name}.log`), 'a');
  const [cmd, ...args] = asLabUser(id, ['/usr/bin/redis-sentinel', file]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  return child.pid!;
}

/** Asks a sentinel `SENTINEL <args>` about the master; null when it does not answer. */
async function askSentinel(address: string, ...args: string[]): Promise<unknown> {
  const { default: IORedis } = await import('ioredis');
  const c = new IORedis({
    host: address,
    port: SENTINEL_PORT,
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call('SENTINEL', ...args);
  } catch {
    return null;
  } finally {
    c.disconnect();
  }
}

/** Asks a sentinel where the master is: "host:port", or null when it does not answer. */
export async function sentinelMaster(address: string): Promise<string | null> {
  const r = (await askSentinel(address, 'get-master-addr-by-name', SENTINEL_MASTER)) as [string, string] | null;
  return r ? `${r[0]}:${r[1]}` : null;
}

/** Whether a sentinel knows the master, `replicas` replicas in sync and `peers` other sentinels: able to fail over. */
async function sentinelReady(address: string, master: string, replicas: number, peers: number): Promise<boolean> {
  if ((await sentinelMaster(address)) !== master) return false;
  const flat = (x: unknown) =>
    (Array.isArray(x) ? (x as string[][]) : []).map((kv) => Object.fromEntries(kv.flatMap((v, i) => (i % 2 ? [] : [[v, kv[i + 1]]]))));
  const rs = flat(await askSentinel(address, 'replicas', SENTINEL_MASTER));
  const ss = flat(await askSentinel(address, 'sentinels', SENTINEL_MASTER));
  return rs.filter((r) => r['master-link-status'] === 'ok' && !String(r.flags).includes('down')).length === replicas && ss.length === peers;
}

/**
 * Starts the control plane's state on `sites` (three: A and B run pgherd's processes, the third is the
 * tie-breaker): etcd on each, a Patroni member on each (the first bootstraps and leads), HAProxy on the
 * first two; creates pgherd's database. `onProcess` is told of each process as it starts.
 */
export async function startControlPlane(
  id: Identity,
  dir: string,
  ca: LabCa,
  sites: ControlPlaneSite[],
  onProcess: (p: ControlPlaneProcess) => void = () => {},
): Promise<ControlPlane> {
  if (sites.length !== 3) throw new Error('the control plane runs on three sites (two and a tie-breaker)');
  mkdirOwned(id, dir, 0o755);
  const processes: ControlPlane['processes'] = [];
  const track = (p: ControlPlaneProcess) => {
    processes.push(p);
    onProcess(p);
  };
  for (const s of sites) track({ site: s.name, name: 'etcd', pid: spawnEtcd(id, dir, s, sites) });
  const etcd = sites.map((s) => `http://${s.address}:${ETCD_CLIENT}`);
  await waitFor(
    'the control plane\u2019s etcd cluster healthy on every member',
    async () => {
      const ok = await Promise.all(
        etcd.map((u) =>
          fetch(`${u}/health`)
            .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true')
            .catch(() => false),
        ),
      );
      return ok.every(Boolean) ? true : undefined;
    },
    60_000,
  );
  const patroni = await startPatroniHerd(id, dir, {
    scope: 'pgherd-control',
    members: sites.map((s) => ({ name: `pgherd-${s.name}`, address: s.address, pgPort: PG_PORT, restPort: REST_PORT })),
    etcd: etcd.join(','),
    restUser: 'patroni',
    restPassword: 'lab',
    ca,
    synchronous: true,
    timings: CONTROL_PATRONI_TIMINGS,
    started: (m) => {
      const site = sites.find((s) => s.address === m.address)!.name;
      track({ site, name: 'patroni', pid: m.pid });
      track({ site, name: 'postgres', pid: m.pid, pidFile: path.join(m.dataDirectory, 'postmaster.pid') });
    },
  });
  const leader = patroni.members[0]!;
  await query(`postgres://${PG_SUPERUSER}@${leader.address}:${String(PG_PORT)}/postgres`, `CREATE DATABASE ${CONTROL_DATABASE}`);
  const members = patroni.members.map((m) => ({ name: m.name, address: m.address }));
  const databaseUrls: Record<string, string> = {};
  for (const s of sites.slice(0, 2)) {
    track({ site: s.name, name: 'haproxy', pid: spawnHaproxy(id, dir, s, haproxyConfig(s, members, ca.caFile, statsSocketOf(dir, s))) });
    databaseUrls[s.name] = `postgres://${PG_SUPERUSER}@${s.address}:${String(HAPROXY_PORT)}/${CONTROL_DATABASE}`;
  }
  // HAProxy takes a server for up until its checks say otherwise: ready once it sends to the leader alone.
  await Promise.all(
    sites.slice(0, 2).map((s) =>
      waitFor(
        `site ${s.name}'s HAProxy sending to ${leader.name} alone`,
        async () => {
          const view = await haproxyView(dir, s);
          return Object.entries(view).every(([name, st]) => (name === leader.name ? st === 'UP' : st === 'DOWN')) &&
            Object.keys(view).length === members.length
            ? true
            : undefined;
        },
        30_000,
      ),
    ),
  );
  await Promise.all(
    Object.entries(databaseUrls).map(([site, url]) =>
      waitFor(
        `pgherd's database through site ${site}'s HAProxy`,
        async () =>
          (await query(url, 'SELECT 1').then(
            () => true,
            () => false,
          ))
            ? true
            : undefined,
        30_000,
      ),
    ),
  );
  // The queue: the master on A, a replica on B, a sentinel on each site.
  const [a, b] = sites as [ControlPlaneSite, ControlPlaneSite, ControlPlaneSite];
  track({ site: a.name, name: 'redis', pid: spawnRedis(id, dir, a, null) });
  track({ site: b.name, name: 'redis', pid: spawnRedis(id, dir, b, a) });
  for (const s of sites) track({ site: s.name, name: 'sentinel', pid: spawnSentinel(id, dir, s, a) });
  // Sentinels learn the replica from the master's INFO (every 10 s) and each other from its hello
  // channel: until then, a lost master is not failed over.
  await waitFor(
    'every sentinel names the master, and knows the replica in sync and the other sentinels',
    async () => {
      const ready = await Promise.all(
        sites.map((s) => sentinelReady(s.address, `${a.address}:${String(REDIS_PORT)}`, 1, sites.length - 1)),
      );
      return ready.every(Boolean) ? true : undefined;
    },
    60_000,
  );
  const redisUrl = `redis+sentinel://${sites.map((s) => `${s.address}:${String(SENTINEL_PORT)}`).join(',')}/${SENTINEL_MASTER}`;
  const memberUrls = Object.fromEntries(
    patroni.members.map((m) => [m.name, `postgres://${PG_SUPERUSER}@${m.address}:${String(PG_PORT)}/${CONTROL_DATABASE}`]),
  );
  return { sites, processes, etcd, patroni, databaseUrls, memberUrls, redisUrl };
}

/** Everything of the control plane stopped: Patroni (and its Postgres) first, then HAProxy and etcd. */
export async function stopControlPlane(cp: ControlPlane): Promise<void> {
  const of = (name: string) => cp.processes.filter((p) => p.name === name);
  await Promise.all(of('patroni').map((p) => stopPid(p.pid, 'SIGTERM', 30_000)));
  // A Postgres whose Patroni was killed outlives it: stopped by its postmaster.pid.
  for (const p of of('postgres')) {
    const pid = postmasterPid(p.pidFile);
    if (pid !== null) await stopPid(pid, 'SIGINT', 30_000);
  }
  await Promise.all(cp.processes.filter((p) => !['patroni', 'postgres'].includes(p.name)).map((p) => stopPid(p.pid, 'SIGTERM', 10_000)));
}

/**
 * The load balancer in front of the consoles (`npm run demo -- --ha`): HAProxy in HTTP mode on
 * 127.0.0.1:`port`, sending to the consoles whose GET /readyz answers 200 (checked twice a second; down
 * after two misses), so that a console whose site is lost, or that drains before it stops, gets no
 * request. Returns its PID.
 */
export async function startConsoleFront(
  id: Identity,
  dir: string,
  port: number,
  consoles: { name: string; port: number }[],
  /**
   * `retries: 0`: a load balancer that never tries a request again (on a connection refused or a closed
   * keep-alive), as many do: a console that stops without draining first fails the requests sent to it.
   */
  opts: { retries?: number } = {},
): Promise<number> {
  mkdirOwned(id, dir, 0o755);
  const file = path.join(dir, 'haproxy-front.cfg');
  const retries = opts.retries ?? 2;
  writeFileSync(
    file,
    [
      'global',
      '  maxconn 400',
      // What its health checks say of each console (frontServers): read on this socket, never over HTTP.
      `  stats socket ${path.join(dir, 'admin.sock')} mode 600 level user`,
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 60s',
      '  timeout server 60s',
      '  timeout check 2s',
      ...(retries > 0 ? ['  option redispatch', `  retries ${String(retries)}`] : ['  retries 0']),
      'listen consoles',
      `  bind 127.0.0.1:${String(port)}`,
      '  balance roundrobin',
      // The client's address for the consoles (sign-in throttling, the audit): they trust this front (PGHERD_TRUSTED_PROXIES).
      '  option forwardfor',
      '  option httpchk',
      '  http-check send meth GET uri /readyz',
      '  http-check expect status 200',
      '  default-server inter 500ms fall 2 rise 2',
      ...consoles.map((c) => `  server ${c.name} 127.0.0.1:${String(c.port)} check`),
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  chownSync(file, id.uid, id.gid);
  const out = openSync(path.join(dir, 'haproxy-front.log'), 'a');
  const [cmd, ...args] = asLabUser(id, ['/usr/sbin/haproxy', '-db', '-f', file]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  await waitFor(
    `the consoles behind 127.0.0.1:${String(port)}`,
    async () =>
      (await fetch(`http://127.0.0.1:${String(port)}/readyz`).then(
        (r) => r.ok,
        () => false,
      ))
        ? true
        : undefined,
    30_000,
  );
  return child.pid!;
}

/**
 * What the front's health checks say of each console now, by server name (`UP`, `DOWN`, `UP 1/2`, …): HAProxy's
 * `show stat` on the front's stats socket. A rolling upgrade moves to the next console only once the front
 * sends requests to the one it replaced: its own `/readyz` answering is not that (the front needs two checks).
 */
export function frontServers(dir: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path.join(dir, 'admin.sock'));
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(5000, () => socket.destroy(new Error("the front's stats socket did not answer in 5 s")));
    socket.on('connect', () => socket.write('show stat\n'));
    socket.on('data', (d: string) => (text += d));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head, ...rows] = text.trim().split('\n');
      const cols = (head ?? '').replace(/^# /, '').split(',');
      const [name, status] = [cols.indexOf('svname'), cols.indexOf('status')];
      const out = new Map<string, string>();
      for (const r of rows.map((l) => l.split(','))) {
        if (r[name] && r[name] !== 'FRONTEND' && r[name] !== 'BACKEND') out.set(r[name], r[status] ?? '');
      }
      resolve(out);
    });
  });
}

/** The PID in a postmaster.pid (null when there is none to read). */
export function postmasterPid(pidFile: string | undefined): number | null {
  if (!pidFile) return null;
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
