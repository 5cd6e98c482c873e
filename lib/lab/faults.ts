// Failures on purpose, for the failover tests and benchmark: a host whose SSH is gone, a crashed
// postmaster; and who answers as primary afterwards.
import { writeLab, type LabInfo, type LabInstance } from './lab';
import { query } from './postgres';
import { descendants, labIdentity, run, stopPid } from './proc';
import { spawnSshd } from './sshd';

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
  writeLab(file, lab);
}

/** Undoes refuseSsh. */
export async function allowSsh(lab: LabInfo, file: string, address: string): Promise<void> {
  const i = lab.ssh?.addresses.indexOf(address) ?? -1;
  if (i < 0 || !lab.ssh) throw new Error(`the lab's sshd does not listen on ${address}`);
  if (lab.processes.some((x) => x.name === `sshd-${i}`)) return;
  const pid = await spawnSshd(labIdentity(), lab.dir, i, address, lab.ssh.port);
  lab.processes.push({ name: `sshd-${i}`, pid, program: 'sshd', signal: 'SIGTERM' });
  writeLab(file, lab);
}

/** Kills an instance's postmaster as a crash would (`-m immediate`: no shutdown checkpoint, nothing more sent). */
export async function crash(lab: LabInfo, i: LabInstance): Promise<void> {
  await run(labIdentity(), [`${lab.pgBin}/pg_ctl`, '-D', i.dataDirectory, '-m', 'immediate', '-w', 'stop']);
}

/** The member of `herd` that answers as primary now, asked of the instances themselves. */
export async function livePrimary(lab: LabInfo, herd: string, environment?: string): Promise<LabInstance> {
  for (const m of lab.instances.filter((i) => i.herd === herd && (!environment || i.environment === environment))) {
    const r = await query<{ r: boolean }>(m.dsn, 'SELECT pg_is_in_recovery() AS r').catch(() => null);
    if (r && !r[0].r) return m;
  }
  throw new Error(`no primary answers in ${herd}`);
}
