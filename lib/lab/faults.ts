// Failures on purpose, for the failover tests and benchmark: a host whose SSH is gone, a crashed
// postmaster, pgherd's own database restarted; and who answers as primary afterwards. Whatever one of
// these starts again is entered in lab.json with its new PID, so that the lab's stop finds it.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fleetNodeSecurity, trackProcess, updateLab, type LabInfo, type LabInstance } from './lab';
import { freePort } from './ports';
import { cloneReplica, query, startNode, touchLog, type PgNode } from './postgres';
import { descendants, labIdentity, run, stopPid } from './proc';
import { spawnSshd } from './sshd';
import { spawnPatroni } from './patroni';

/**
 * For failure tests: SSH to `address` refused, as on a host that is gone. Stops that address's
 * daemon and every session it had open (they would keep working after their listener is gone).
 */
export async function refuseSsh(lab: LabInfo, file: string, address: string): Promise<void> {
  const i = lab.ssh?.addresses.indexOf(address) ?? -1;
  if (i < 0) throw new Error(`the lab's sshd does not listen on ${address}`);
  const p = lab.processes.find((x) => x.name === `sshd-${i}`);
  if (!p) return;
  const all = [p.pid, ...descendants(p.pid)];
  await Promise.all(all.map((pid) => stopPid(pid, 'SIGKILL', 1000)));
  lab.processes = lab.processes.filter((x) => x !== p);
  updateLab(file, (info) => {
    info.processes = info.processes.filter((x) => x.name !== p.name);
  });
}

/** Undoes refuseSsh. */
export async function allowSsh(lab: LabInfo, file: string, address: string): Promise<void> {
  const i = lab.ssh?.addresses.indexOf(address) ?? -1;
  if (i < 0 || !lab.ssh) throw new Error(`the lab's sshd does not listen on ${address}`);
  if (lab.processes.some((x) => x.name === `sshd-${i}`)) return;
  const pid = await spawnSshd(labIdentity(), lab.dir, i, address, lab.ssh.port);
  const entry = { name: `sshd-${i}`, pid, program: 'sshd', signal: 'SIGTERM' as const };
  lab.processes.push(entry);
  trackProcess(file, entry);
}

/**
 * Restarts pgherd's own database (`pg_ctl restart -m fast`, as a minor upgrade or a configuration change
 * would): every connection to it drops, and it answers again within seconds. lab.json (and `lab`)
 * name the new postmaster; returns its PID.
 */
export async function restartDatabase(lab: LabInfo, file: string): Promise<number> {
  const p = lab.processes.find((x) => x.name === 'pgherd-db');
  if (!p?.pidFile) throw new Error(`${file} names no pgherd-db with its pid file`);
  const dataDirectory = path.dirname(p.pidFile);
  const logFile = path.join(lab.dir, 'log', 'pgherd-db.log');
  await run(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', dataDirectory, '-l', logFile, '-m', 'fast', '-w', '-t', '60', 'restart']);
  p.pid = Number(readFileSync(p.pidFile, 'utf8').split('\n')[0]);
  trackProcess(file, p);
  return p.pid;
}

/**
 * Restarts an instance (`pg_ctl restart -m fast`, on the build it runs), as an admin does for a setting
 * that only a restart applies; its replicas reconnect by themselves a few seconds later.
 */
export async function restartInstance(lab: LabInfo, i: LabInstance): Promise<void> {
  const bin = i.binDir ?? lab.pgBin;
  const log = path.join(lab.dir, 'log', `${i.server}.log`);
  await run(labIdentity(), [`${bin}/pg_ctl`, '-D', i.dataDirectory, '-l', log, '-m', 'fast', '-w', '-t', '60', 'restart']);
}

/** Kills an instance's postmaster as a crash would (`-m immediate`: no shutdown checkpoint, nothing more sent). */
export async function crash(lab: LabInfo, i: LabInstance): Promise<void> {
  await run(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', i.dataDirectory, '-m', 'immediate', '-w', 'stop']);
}

/** The member of `herd` that answers as primary now, asked of the instances themselves. */
export async function livePrimary(lab: LabInfo, herd: string, environment?: string): Promise<LabInstance> {
  for (const m of lab.instances.filter((i) => i.herd === herd && (!environment || i.environment === environment))) {
    const r = await query<{ r: boolean }>(m.dsn, 'SELECT pg_is_in_recovery() AS r').catch(() => null);
    if (r && !r[0]!.r) return m;
  }
  throw new Error(`no primary answers in ${herd}`);
}

/**
 * A copy of `source` restored from a base backup and started on its own rather than as a replica, as
 * after a backup restored in the wrong place: it shares the herd's system identifier and answers as
 * a primary (a split brain for pgherd to notice). Listens on `address` at a free port, with its own
 * socket directory; `remove()` stops it and deletes its files.
 */
export async function restoredCopy(
  lab: LabInfo,
  file: string,
  source: LabInstance,
  name: string,
  address: string,
): Promise<{ node: PgNode; remove: () => Promise<void> }> {
  const id = labIdentity();
  const dir = path.join(lab.dir, 'restored', name);
  const bare: PgNode = {
    name,
    address,
    port: await freePort(address),
    dataDirectory: path.join(dir, 'data'),
    socketDirectory: path.join(dir, 'run'),
    logFile: path.join(dir, 'log', 'postgresql.log'),
  };
  // Served like the fleet's own (its certificate, pgherd's role over TLS), so that pgherd can see it.
  const node = await fleetNodeSecurity(id, lab, bare, source.environment, name);
  await cloneReplica(id, node, {
    ...node,
    name: source.server,
    address: source.address,
    port: source.port,
    dataDirectory: source.dataDirectory,
    socketDirectory: source.socketDirectory,
  });
  rmSync(path.join(node.dataDirectory, 'standby.signal'));
  touchLog(id, node.logFile);
  const entry = `restored-${name}`;
  // In lab.json as it runs: a test that dies before remove() leaves it to the lab's stop.
  trackProcess(file, {
    name: entry,
    pid: await startNode(id, node),
    program: 'postgres',
    signal: 'SIGINT',
    pidFile: path.join(node.dataDirectory, 'postmaster.pid'),
  });
  return {
    node,
    remove: async () => {
      await run(id, [`${lab.pgBin}/pg_ctl`, '-D', node.dataDirectory, '-m', 'fast', '-w', 'stop']).catch(() => {});
      updateLab(file, (info) => {
        info.processes = info.processes.filter((x) => x.name !== entry);
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A copy of the lab's DNS configuration (zones, owners) whose key BIND does not know; returns its path. */
export function dnsConfigWithWrongKey(lab: LabInfo, file: string): string {
  const cfg = JSON.parse(readFileSync(lab.dns!.configFile, 'utf8')) as { zones: { key: { secret: string } }[] };
  for (const z of cfg.zones) z.key.secret = randomBytes(32).toString('base64');
  writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
  return file;
}

/**
 * A Patroni member's host lost: its Patroni and its Postgres killed at once (SIGKILL), so
 * nothing renews its leader key or demotes anything; the others take over once the key expires.
 */
export async function killPatroniMember(lab: LabInfo, server: string): Promise<void> {
  const p = lab.processes.find((x) => x.name === `patroni-${server}`);
  const i = lab.instances.find((x) => x.server === server);
  if (!p || !i) throw new Error(`the lab has no Patroni member ${server}`);
  let postmaster: number | null = null;
  try {
    postmaster = Number(readFileSync(path.join(i.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]) || null;
  } catch {
    postmaster = null; // not running
  }
  await stopPid(p.pid, 'SIGKILL', 2000);
  if (postmaster) await stopPid(postmaster, 'SIGKILL', 2000);
}

/** Starts a Patroni member again with its configuration (it rejoins its cluster; pg_rewind if it must). */
export async function startPatroniMember(lab: LabInfo, file: string, server: string): Promise<void> {
  const m = lab.patroni?.flatMap((h) => h.members).find((x) => x.server === server);
  const p = lab.processes.find((x) => x.name === `patroni-${server}`);
  if (!m || !p) throw new Error(`the lab has no Patroni member ${server}`);
  p.pid = spawnPatroni(labIdentity(), m.configFile, m.logFile);
  // Its Postgres keeps its entry: Patroni starts it in a moment, and its pid file names it then.
  trackProcess(file, p);
}
