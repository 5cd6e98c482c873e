// The lab's EBS volumes. EBS grows a volume under a running host; the host then grows its filesystem.
// In the lab a volume is a file on a loop device with an XFS filesystem, mounted in the lab's directory,
// an instance's data directory moved onto it (the old path a link to it), and a volume in moto attached to
// the server's EC2 instance under the loop device's name (what the host's mount table says: the agent
// reports it). The front grows the file and the loop device on ModifyVolume (growLabVolume), as EBS does;
// growing the filesystem is the host's (pgherd's Grow data volume runs xfs_growfs over SSH, through sudo:
// the lab allows its user exactly that command for exactly that mount, as an admin's sudoers would).
// Loop devices and mounts are root's: a lab not started as root has none, and says so.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AttachVolumeCommand, CreateVolumeCommand, EC2Client } from '@aws-sdk/client-ec2';
import { isRoot, labIdentity, run } from './proc';
import type { LabInfo, LabInstance } from './lab';

const execFileP = promisify(execFile);
const GiB = 1024 ** 3;

export interface LabVolume {
  volumeId: string;
  /** The sparse file behind the loop device. */
  file: string;
  device: string;
  mountPoint: string;
  /** The sudoers drop-in that lets the lab's user grow this filesystem (removed with the volume). */
  sudoers: string;
}

/** Where a lab keeps its volumes (the front reads it on ModifyVolume): beside the capacity file. */
export const volumesFileBeside = (capacityFile: string) => path.join(path.dirname(capacityFile), 'aws-volumes.json');

export function readVolumes(file: string): Record<string, LabVolume> {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, LabVolume>;
  } catch {
    return {};
  }
}

async function root(argv: string[]): Promise<string> {
  try {
    return (await execFileP(argv[0]!, argv.slice(1), { env: { ...process.env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } })).stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${argv.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Why the lab cannot make a volume here (not root, no loop devices, no mkfs.xfs or sudo), or null. */
export function volumesUnavailable(): string | null {
  if (!isRoot) return 'the lab makes volumes on loop devices, which only root may: start it as root';
  if (!existsSync('/dev/loop-control')) return 'this machine has no loop devices (/dev/loop-control)';
  for (const [tool, pkg] of [
    ['/usr/sbin/mkfs.xfs', 'xfsprogs'],
    ['/usr/sbin/xfs_growfs', 'xfsprogs'],
    ['/usr/bin/sudo', 'sudo'],
  ] as const)
    if (!existsSync(tool)) return `${tool} is missing (apt-get install ${pkg})`;
  return null;
}

/**
 * Moves `i`'s data directory onto a new volume of `sizeGiB` (the instance stopped and started again),
 * attached to its server's EC2 instance in moto: what Grow data volume then finds and grows.
 */
export async function makeLabVolume(lab: LabInfo, i: LabInstance, sizeGiB: number): Promise<LabVolume> {
  const why = volumesUnavailable();
  if (why) throw new Error(why);
  const aws = lab.aws;
  if (!aws) throw new Error('a lab volume is an EBS volume: start the lab with AWS');
  const ec2 = aws.instances.find((x) => x.server === i.server);
  if (!ec2) throw new Error(`${i.server} has no EC2 instance in the lab`);
  const id = labIdentity();
  const dir = path.join(lab.dir, 'volumes');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${i.server}.img`);
  const mountPoint = path.join(dir, i.server);
  await root(['truncate', '-s', String(sizeGiB * GiB), file]);
  const device = await root(['losetup', '--find', '--show', file]);
  const volumesFile = volumesFileBeside(aws.capacityFile);
  const volume: LabVolume = { volumeId: '', file, device, mountPoint, sudoers: '' };
  try {
    await root(['mkfs.xfs', '-q', device]);
    mkdirSync(mountPoint, { recursive: true });
    await root(['mount', device, mountPoint]);
    chownSync(mountPoint, id.uid, id.gid);
    // The instance's data moves onto it, stopped; its old path becomes a link to the new one.
    const bin = i.binDir ?? lab.pgBin;
    const log = path.join(lab.dir, 'log', `${i.server}.log`);
    await run(id, [`${bin}/pg_ctl`, '-D', i.dataDirectory, '-m', 'fast', '-w', '-t', '60', 'stop']);
    const data = path.join(mountPoint, 'pgdata');
    await run(id, ['cp', '-a', i.dataDirectory, data]);
    const old = `${i.dataDirectory}.before-volume`;
    renameSync(i.dataDirectory, old);
    symlinkSync(data, i.dataDirectory);
    rmSync(old, { recursive: true, force: true });
    await run(id, [`${bin}/pg_ctl`, '-D', i.dataDirectory, '-l', log, '-w', '-t', '60', 'start']);
    // EBS's side: a volume of that size in the instance's zone, attached under the device's name.
    const client = new EC2Client({
      endpoint: aws.motoUrl,
      region: aws.region,
      credentials: { accessKeyId: aws.accessKeyId, secretAccessKey: aws.secretAccessKey },
    });
    try {
      const made = await client.send(new CreateVolumeCommand({ Size: sizeGiB, AvailabilityZone: ec2.availabilityZone, VolumeType: 'gp3' }));
      volume.volumeId = made.VolumeId!;
      await client.send(new AttachVolumeCommand({ VolumeId: volume.volumeId, InstanceId: ec2.instanceId, Device: device }));
    } finally {
      client.destroy();
    }
    // The host's sudoers: the lab's user may grow this filesystem, and nothing else.
    volume.sudoers = `/etc/sudoers.d/pgherd-lab-${path.basename(lab.dir).replace(/[^A-Za-z0-9_-]/g, '_')}-${i.server.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const line = `${id.user} ALL=(root) NOPASSWD: /usr/sbin/xfs_growfs -d ${mountPoint}\n`;
    const draft = path.join(dir, `${i.server}.sudoers`);
    writeFileSync(draft, line, { mode: 0o440 });
    await root(['visudo', '-c', '-q', '-f', draft]);
    mkdirSync('/etc/sudoers.d', { recursive: true, mode: 0o750 });
    renameSync(draft, volume.sudoers);
    writeFileSync(volumesFile, JSON.stringify({ ...readVolumes(volumesFile), [volume.volumeId]: volume }, null, 2));
    return volume;
  } catch (err) {
    await releaseVolume(volume);
    throw err;
  }
}

/**
 * EBS's side of ModifyVolume for a lab volume: its file made `sizeGiB` and the loop device told (the
 * filesystem on it stays as it was, as on a real host). A smaller size is refused, as EBS refuses it.
 */
export async function growLabVolume(v: LabVolume, sizeGiB: number): Promise<void> {
  const now = statSync(v.file).size;
  if (sizeGiB * GiB < now) throw new Error(`New size cannot be smaller than existing size (${String(now / GiB)} GiB)`);
  await root(['truncate', '-s', String(sizeGiB * GiB), v.file]);
  await root(['losetup', '--set-capacity', v.device]);
}

async function releaseVolume(v: LabVolume): Promise<void> {
  if (v.sudoers) rmSync(v.sudoers, { force: true });
  await root(['umount', '--lazy', v.mountPoint]).catch(() => {});
  await root(['losetup', '--detach', v.device]).catch(() => {});
  rmSync(v.file, { force: true });
}

/** Unmounts and detaches a lab's volumes, and takes their sudoers lines out (the lab stopping: its processes are gone). */
export async function releaseLabVolumes(labDir: string): Promise<void> {
  const file = path.join(labDir, 'aws-volumes.json');
  for (const v of Object.values(readVolumes(file))) await releaseVolume(v);
  rmSync(file, { force: true });
}
