// A herd under Patroni for the lab: a single-node etcd (Patroni's etcd3 DCS) and one Patroni per member
// on its own loopback address, run as the lab's unprivileged user, the REST API on https (a certificate
// from the lab's CA for each member's address) behind basic auth. Debian 12's patroni 3.0.2 and
// etcd-server 3.4 (a 3-member herd of them comes up and switches over on this machine). Timings are
// short (ttl 10, loop_wait 2, retry_timeout 3: an automatic failover in about 9 s), so that tests wait
// seconds, not half a minute.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { PG_BIN, PG_SUPERUSER, query } from './postgres';
import { asLabUser, mkdirOwned, stopPid, type Identity } from './proc';
import { waitFor } from '@/lib/testing/wait';
import { issueCertificate, type LabCa, type LabCertificate } from './tls';

export interface PatroniMember {
  /** Patroni's name of the member (its server's hostname in the lab's fleet). */
  name: string;
  address: string;
  pgPort: number;
  restPort: number;
  /** Postgres's own certificate (the lab's fleet: pgherd connects with TLS, verify-full). */
  pgTls?: LabCertificate;
}

export interface PatroniHerd {
  scope: string;
  members: (PatroniMember & { restUrl: string; pid: number; dataDirectory: string; configFile: string; logFile: string })[];
  restUser: string;
  restPassword: string;
  /** The CA that signed the members' REST certificates (what a client verifies them with). */
  caFile: string;
  /** The etcd client URL the members use. */
  etcd: string;
  /** pgherd's role in the herd's environment: TLS and a password (scram) only; everyone else trusted on loopback. */
  pgherdUser?: string;
  /** Patroni's synchronous_mode: a commit waits for a replica, and only that replica may be promoted. */
  synchronous?: boolean;
  /** Patroni's ttl, loop_wait and retry_timeout (s); the lab's short ones (10, 2, 3) when not said. */
  timings?: { ttl: number; loop_wait: number; retry_timeout: number };
}

/** The members' REST answer to GET /cluster (what `patronictl list` shows). */
export interface PatroniCluster {
  members: {
    name: string;
    role: string;
    state: string;
    host: string;
    port: number;
    timeline?: number;
    lag?: number | string;
    pending_restart?: boolean;
  }[];
  pause?: boolean;
  scheduled_switchover?: unknown;
}

/** etcd 3.4 on loopback, one node, v3 API; returns its PID. */
export async function startEtcd(id: Identity, dir: string, clientPort: number, peerPort: number): Promise<{ pid: number; url: string }> {
  const data = path.join(dir, 'etcd');
  mkdirOwned(id, data);
  chmodSync(data, 0o700);
  const log = path.join(dir, 'etcd.log');
  const out = openSync(log, 'a');
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const [cmd, ...args] = asLabUser(id, [
    '/usr/bin/etcd',
    '--name',
    'lab',
    '--data-dir',
    data,
    '--listen-client-urls',
    url,
    '--advertise-client-urls',
    url,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `lab=${peer}`,
    '--enable-v2=false',
  ]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  await waitFor(
    `etcd on ${url}`,
    async () =>
      (await fetch(`${url}/health`)
        .then((r) => r.ok)
        .catch(() => false))
        ? true
        : undefined,
    30_000,
  );
  return { pid: child.pid!, url };
}

/** A member's Patroni configuration (YAML is a superset of JSON: written as JSON). */
function configOf(
  herd: Omit<PatroniHerd, 'members'>,
  m: PatroniMember,
  dataDirectory: string,
  socketDirectory: string,
  cert: LabCertificate,
) {
  return {
    scope: herd.scope,
    name: m.name,
    restapi: {
      listen: `${m.address}:${m.restPort}`,
      connect_address: `${m.address}:${m.restPort}`,
      authentication: { username: herd.restUser, password: herd.restPassword },
      certfile: cert.certFile,
      keyfile: cert.keyFile,
    },
    // What a member (and patronictl) verifies the others' REST certificates with.
    ctl: { cacert: herd.caFile },
    // One etcd, or an etcd cluster's client URLs separated by commas.
    etcd3: { hosts: herd.etcd.replace(/http:\/\//g, '') },
    bootstrap: {
      dcs: {
        ...(herd.timings ?? { ttl: 10, loop_wait: 2, retry_timeout: 3 }),
        maximum_lag_on_failover: 16 << 20,
        ...(herd.synchronous ? { synchronous_mode: true } : {}),
        postgresql: {
          use_pg_rewind: true,
          // Patroni's shared configuration, written by Patroni on every member: pgherd's Apply fleet objects
          // changes it there (a member's own postgresql.pg_hba would win over it).
          pg_hba: [
            ...(herd.pgherdUser
              ? [`hostssl all ${herd.pgherdUser} 127.0.0.0/8 scram-sha-256`, `host all ${herd.pgherdUser} 0.0.0.0/0 reject`]
              : []),
            'local all all trust',
            'host all all 127.0.0.0/8 trust',
            'local replication all trust',
            'host replication all 127.0.0.0/8 trust',
          ],
          parameters: {
            wal_level: 'replica',
            hot_standby: 'on',
            wal_log_hints: 'on',
            max_wal_senders: 10,
            max_replication_slots: 10,
            wal_keep_size: '256MB',
            // As on the lab's other members: WAL archiving needs only an archive_command (Configure backups) to begin.
            archive_mode: 'on',
          },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }, 'data-checksums'],
    },
    postgresql: {
      listen: `${m.address}:${m.pgPort}`,
      connect_address: `${m.address}:${m.pgPort}`,
      data_dir: dataDirectory,
      bin_dir: PG_BIN,
      pgpass: path.join(path.dirname(dataDirectory), 'pgpass'),
      authentication: {
        superuser: { username: PG_SUPERUSER, password: 'lab' },
        replication: { username: 'replicator', password: 'lab' },
        rewind: { username: PG_SUPERUSER, password: 'lab' },
      },
      parameters: {
        unix_socket_directories: socketDirectory,
        max_connections: 40,
        shared_buffers: '16MB',
        fsync: 'off',
        cluster_name: m.name,
        ...(m.pgTls ? { ssl: 'on', ssl_cert_file: m.pgTls.certFile, ssl_key_file: m.pgTls.keyFile } : {}),
      },
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

/** GET a member's REST endpoint with the herd's credentials; the parsed JSON body, or an error. */
export async function patroniGet<T>(herd: Pick<PatroniHerd, 'caFile'>, restUrl: string, what: string): Promise<T> {
  const ca = readFileSync(herd.caFile);
  return new Promise<T>((resolve, reject) => {
    const req = https.get(`${restUrl}${what}`, { ca, timeout: 3_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200 && res.statusCode !== 503) reject(new Error(`GET ${restUrl}${what}: HTTP ${String(res.statusCode)}`));
        else
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** Starts a member's Patroni as the lab user, detached; its log beside its configuration. */
async function startMember(id: Identity, dir: string, base: Omit<PatroniHerd, 'members'>, ca: LabCa, m: PatroniMember) {
  const home = path.join(dir, 'patroni', base.scope, m.name);
  mkdirOwned(id, home);
  const cert = await issueCertificate(id, ca, path.join(home, 'tls'), 'rest', { ips: [m.address], names: [m.name] });
  const dataDirectory = path.join(home, 'data');
  const socketDirectory = path.join(home, 'socket');
  mkdirOwned(id, socketDirectory);
  const configFile = path.join(home, 'patroni.yml');
  writeFileSync(configFile, `${JSON.stringify(configOf(base, m, dataDirectory, socketDirectory, cert), null, 2)}\n`, { mode: 0o600 });
  chownSync(configFile, id.uid, id.gid);
  const logFile = path.join(home, 'patroni.log');
  const member: PatroniHerd['members'][number] = {
    ...m,
    restUrl: `https://${m.address}:${String(m.restPort)}`,
    pid: spawnPatroni(id, configFile, logFile),
    dataDirectory,
    configFile,
    logFile,
  };
  return member;
}

/** Starts Patroni with `configFile` as the lab user, detached, its output appended to `logFile`; its PID. */
export function spawnPatroni(id: Identity, configFile: string, logFile: string): number {
  const out = openSync(logFile, 'a');
  const [cmd, ...args] = asLabUser(id, ['/usr/bin/patroni', configFile]);
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out, out], cwd: path.dirname(configFile) });
  child.unref();
  return child.pid!;
}

/** Waits until the herd's /cluster (asked of `member`) satisfies `ok`; returns it. */
export function waitCluster(
  herd: PatroniHerd,
  what: string,
  ok: (c: PatroniCluster) => boolean,
  timeoutMs = 60_000,
  member = herd.members[0]!,
) {
  return waitFor(
    `Patroni herd ${herd.scope}: ${what}`,
    async () => {
      const cluster = await patroniGet<PatroniCluster>(herd, member.restUrl, '/cluster');
      return ok(cluster) ? cluster : undefined;
    },
    timeoutMs,
  );
}

/**
 * Starts the herd: the first member alone, which bootstraps it (initdb) and leads; then the others,
 * which clone it; returns once every other member streams from the leader with no lag.
 */
export async function startPatroniHerd(
  id: Identity,
  dir: string,
  spec: {
    scope: string;
    members: PatroniMember[];
    etcd: string;
    restUser: string;
    restPassword: string;
    ca: LabCa;
    /** pgherd's role: made on the leader once it runs (the others clone it), with this password. */
    pgherd?: { user: string; password: string };
    /** Called with each member's Patroni as soon as it runs (the lab tracks it for its stop). */
    started?: (m: PatroniHerd['members'][number]) => void;
    synchronous?: boolean;
    timings?: PatroniHerd['timings'];
  },
): Promise<PatroniHerd> {
  const base = {
    scope: spec.scope,
    ...(spec.synchronous ? { synchronous: true } : {}),
    ...(spec.timings ? { timings: spec.timings } : {}),
    etcd: spec.etcd,
    restUser: spec.restUser,
    restPassword: spec.restPassword,
    caFile: spec.ca.caFile,
    ...(spec.pgherd ? { pgherdUser: spec.pgherd.user } : {}),
  };
  const [first, ...rest] = spec.members;
  if (!first) throw new Error('a Patroni herd needs a member');
  const start = async (m: PatroniMember) => {
    const started = await startMember(id, dir, base, spec.ca, m);
    spec.started?.(started);
    return started;
  };
  const herd: PatroniHerd = { ...base, members: [await start(first)] };
  await waitCluster(
    herd,
    `${first.name} leading`,
    (c) => c.members.some((x) => x.name === first.name && x.role === 'leader' && x.state === 'running'),
    90_000,
  );
  if (spec.pgherd) {
    // Before the others clone the leader: they get the role with the data.
    const { user, password } = spec.pgherd;
    if (!/^[a-z_][a-z0-9_]*$/.test(user) || /'/.test(password)) throw new Error('the lab makes plain role names and quote-free passwords');
    await query(
      `postgres://${PG_SUPERUSER}@${first.address}:${String(first.pgPort)}/postgres`,
      `CREATE ROLE ${user} LOGIN SUPERUSER PASSWORD '${password}'`,
    );
  }
  for (const m of rest) herd.members.push(await start(m));
  await waitCluster(
    herd,
    `${first.name} leading and ${String(rest.length)} replicas streaming`,
    (c) =>
      c.members.filter((x) => x.name !== first.name && x.role !== 'leader' && ['running', 'streaming'].includes(x.state) && x.lag === 0)
        .length === rest.length,
    120_000,
  );
  // Patroni 3.0.2 says a replica is running (lag 0) before its WAL receiver streams: the herd is ready
  // once the leader's Postgres has every replica streaming. A write made before then may be missing on a
  // replica promoted at once (a switchover the moment the lab is up).
  await waitFor(
    `${String(rest.length)} replicas streaming from ${first.name}, as its Postgres says`,
    async () => {
      const [r] = await query<{ n: number }>(
        `postgres://${PG_SUPERUSER}@${first.address}:${String(first.pgPort)}/postgres`,
        "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'",
      );
      return r && r.n >= rest.length ? true : undefined;
    },
    120_000,
  );
  return herd;
}

/** Stops each member's Patroni (which stops its Postgres), then nothing else: etcd is the caller's. */
export async function stopPatroniHerd(herd: PatroniHerd): Promise<void> {
  await Promise.all(herd.members.map((m) => stopPid(m.pid, 'SIGTERM', 30_000)));
}

/** A lab Patroni herd as lab.json describes it: its members' REST addresses and the CA that signed them. */
interface LabPatroniRest {
  caFile: string;
  members: { restUrl: string }[];
}

/** Patroni's leader, asked of each member in turn (one that is down is skipped); null when nobody leads or answers. */
export async function labLeader(p: LabPatroniRest): Promise<string | null> {
  for (const m of p.members) {
    try {
      return (await patroniGet<PatroniCluster>(p, m.restUrl, '/cluster')).members.find((x) => x.role === 'leader')?.name ?? null;
    } catch {
      // that member is down: ask the next
    }
  }
  return null;
}

/** Waits until every member runs and the replicas have no lag, as Patroni (any member that answers) says. */
export async function waitSettled(p: LabPatroniRest, timeoutMs = 120_000) {
  let last: PatroniCluster | null = null;
  try {
    return await waitFor(
      'every member of the Patroni herd running with no lag',
      async () => {
        for (const m of p.members) {
          const c = await patroniGet<PatroniCluster>(p, m.restUrl, '/cluster').catch(() => null);
          if (c) {
            last = c;
            return c.members.length === p.members.length &&
              c.members.every((x) => x.state === 'running' && (x.role === 'leader' || x.lag === 0))
              ? true
              : undefined;
          }
        }
        return undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    // Say what Patroni said last, and what the members not running logged last.
    const seen = last as PatroniCluster | null;
    const off = (seen?.members ?? []).filter((x) => x.state !== 'running' || (x.role !== 'leader' && x.lag !== 0));
    const logs = off.map((x) => {
      const m = (p.members as { name?: string; logFile?: string }[]).find((y) => y.name === x.name);
      const tail = m?.logFile ? readTail(m.logFile) : '';
      return `${x.name} (${x.role}, ${x.state}, lag ${String(x.lag)}):\n${tail}`;
    });
    throw new Error(
      `${(err as Error).message}; Patroni said: ${JSON.stringify(seen?.members.map((x) => [x.name, x.role, x.state, x.lag]) ?? null)}\n${logs.join('\n')}`,
    );
  }
}

/** The last lines of a file ('' when it cannot be read). */
function readTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Waits until Patroni names a leader other than `old`; returns it. */
export function waitNewLeader(p: LabPatroniRest, old: string, timeoutMs = 60_000) {
  return waitFor(
    'Patroni names a new leader',
    async () => {
      const l = await labLeader(p);
      return l && l !== old ? l : undefined;
    },
    timeoutMs,
  );
}
