// Grow data volume (the fix of a disk risk: docs/risks.md): the EBS volume under an instance's data
// directory made larger (ModifyVolume, waited until EBS makes the size usable), then its filesystem grown
// on the host over SSH (xfs_growfs or resize2fs, through `sudo -n`: the one command a deployment's sudoers
// must allow pgherd's SSH user). Postgres keeps running throughout.
// The volume is the one the instance's agent last saw the data directory on (its mount table: the device,
// or an NVMe device's EBS serial), among those EC2 says are attached to the server's instance; the host
// is asked again before anything is grown. Refused: a server not on EC2 (RDS grows its own storage), a
// data directory on a partition, LVM or a filesystem pgherd does not grow, a smaller size, and a volume
// EBS would refuse (a change under way, or one in the last six hours).
import { z } from 'zod';
import { inArray } from 'drizzle-orm';
import { diskReadings, servers } from '@/db/schema';
import type { Db } from '@/db/client';
import { asks } from '@/lib/actions/drivers';
import { awsUnavailable, ec2Client } from '@/lib/adapters/aws/config';
import {
  growVolume,
  lastModifications,
  MODIFY_EVERY_MS,
  sameDevice,
  volumesOf,
  type AttachedVolume,
  type LastModification,
} from '@/lib/adapters/aws/ebs';
import { shellCommand } from '@/lib/adapters/ssh/quote';
import { sleep } from '@/lib/adapters/aws/sleep';
import { defineAction, type ActionDeps, type RunContext } from '@/lib/engine/define-action';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';

const GiB = 1024 ** 3;
/** gp3's and io2's largest: 16 TiB. */
const MAX_GIB = 16_384;

export const growVolumeParams = z
  .object({
    sizeGiB: z
      .union([
        z.number(),
        z
          .string()
          .regex(/^\d{1,6}$/, 'a whole number of GiB')
          .transform(Number),
      ])
      .pipe(
        z
          .number()
          .int('a whole number of GiB')
          .min(1)
          .max(MAX_GIB, `at most ${String(MAX_GIB)} GiB (EBS's largest)`),
      )
      .optional(),
  })
  .strict();

type Mount = { device?: string; fsType?: string; mountPoint?: string; volumeId?: string };

interface Target {
  server: { provider: string | null; region: string | null; instanceId: string | null };
  reading: { total: number; free: number; mount: Mount | null; readAt: Date } | null;
  volume: AttachedVolume | null;
  /** The volumes attached to the server's instance (said when none is the data directory's). */
  attached: AttachedVolume[];
  modification: LastModification | null;
}

type Prepared = { targets: Map<number, Target>; aws: string | null };

/** What the plan needs of each target: its server's cloud, its last disk reading, and EBS's view of its volumes. */
async function prepareGrow(targets: InstanceRef[], db: Db): Promise<Prepared> {
  const serverRows = await db
    .select({ id: servers.id, provider: servers.cloudProvider, region: servers.cloudRegion, instanceId: servers.cloudInstanceId })
    .from(servers)
    .where(inArray(servers.id, [...new Set(targets.map((t) => t.serverId))]));
  const readings = targets.length
    ? await db
        .select()
        .from(diskReadings)
        .where(
          inArray(
            diskReadings.instanceId,
            targets.map((t) => t.id),
          ),
        )
    : [];
  const byServer = new Map(serverRows.map((s) => [s.id, s]));
  const onEc2 = serverRows.flatMap((s) =>
    s.provider === 'aws' && s.instanceId && s.region ? [{ region: s.region, instanceId: s.instanceId }] : [],
  );
  const aws = onEc2.length ? await awsUnavailable() : null;
  const attached: AttachedVolume[] = [];
  const mods = new Map<string, LastModification>();
  if (!aws)
    for (const region of new Set(onEc2.map((s) => s.region))) {
      const client = ec2Client(region);
      const found = await volumesOf(
        client,
        onEc2.filter((s) => s.region === region).map((s) => s.instanceId),
      );
      attached.push(...found);
      for (const [k, v] of await lastModifications(client, [...new Set(found.map((v) => v.volumeId))])) mods.set(k, v);
    }
  const out = new Map<number, Target>();
  for (const t of targets) {
    const s = byServer.get(t.serverId);
    const r = readings.find((x) => x.instanceId === t.id);
    const mine = attached.filter((v) => s?.instanceId && v.instanceId === s.instanceId);
    const mount = r?.dataMount ?? null;
    const volume =
      mine.find((v) => mount?.volumeId && v.volumeId === mount.volumeId) ??
      mine.find((v) => mount?.device && sameDevice(v.device, mount.device)) ??
      null;
    out.set(t.id, {
      server: { provider: s?.provider ?? null, region: s?.region ?? null, instanceId: s?.instanceId ?? null },
      reading: r ? { total: r.dataTotal, free: r.dataFree, mount, readAt: r.readAt } : null,
      volume,
      attached: mine,
      modification: volume ? (mods.get(volume.volumeId) ?? null) : null,
    });
  }
  return { targets: out, aws };
}

const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;

/** The command that grows the filesystem, as root through sudo (what sudoers must allow), or null for a type pgherd does not grow. */
export function growCommand(m: Required<Pick<Mount, 'fsType' | 'mountPoint' | 'device'>>): string[] | null {
  if (m.fsType === 'xfs') return ['sudo', '-n', '/usr/sbin/xfs_growfs', '-d', m.mountPoint];
  if (m.fsType === 'ext4') return ['sudo', '-n', '/usr/sbin/resize2fs', m.device];
  return null;
}

/** What a plan grows, every part of it known. */
interface Ready {
  volume: AttachedVolume;
  mount: Required<Pick<Mount, 'device' | 'fsType' | 'mountPoint'>> & Pick<Mount, 'volumeId'>;
  reading: NonNullable<Target['reading']>;
  region: string;
  instanceId: string;
  size: number;
  grow: string[];
}

/** Why this target cannot be grown as asked, or what it grows. */
function readiness(t: InstanceRef, x: Target | undefined, aws: string | null, sizeGiB: number | undefined): Refusal | Ready {
  if (!x) return refuse('gone', `${t.label} was not read`);
  if (x.server.provider === 'rds')
    return refuse(
      'cloud',
      `${t.label} is an RDS DB instance: RDS grows its storage (ModifyDBInstance AllocatedStorage, or storage autoscaling)`,
    );
  if (x.server.provider !== 'aws' || !x.server.instanceId)
    return refuse(
      'cloud',
      `${t.label}'s server is not an EC2 instance pgherd knows (EC2 discovery finds them): grow its disk where it runs`,
    );
  if (aws) return refuse('cloud', aws);
  const m = x.reading?.mount;
  if (!m?.mountPoint || !m.device)
    return refuse(
      'not-applicable',
      `${t.label}'s agent has not said which filesystem holds its data directory (an agent older than this pgherd, or none): pgherd cannot tell which volume to grow`,
    );
  // (An agent says a volume only for an NVMe device, whose serial names it: anything else is not an agent's word.)
  if (m.volumeId && !/^\/dev\/nvme\d+n\d+$/.test(m.device))
    return refuse(
      'not-applicable',
      `${t.label}'s agent says ${m.volumeId} for ${m.device}, which is no NVMe device: the report is not trusted`,
    );
  if (m.device.startsWith('/dev/mapper/') || m.device.startsWith('/dev/dm-'))
    return refuse('not-applicable', `${t.label}'s data directory is on ${m.device}, a device-mapper volume (LVM): grow it by hand`);
  if (!x.volume) {
    const partition = /^\/dev\/(nvme\d+n\d+p\d+|(xvd|sd)[a-z]+\d+)$/.test(m.device);
    return refuse(
      'not-applicable',
      partition
        ? `${t.label}'s data directory is on ${m.device}, a partition: grow the partition (growpart) and its filesystem by hand`
        : `no EBS volume of ${x.server.instanceId} is ${m.device}, the device under ${t.label}'s data directory (attached: ${x.attached.map((v) => `${v.volumeId} as ${v.device}`).join(', ') || 'none'})`,
    );
  }
  const mount = { fsType: m.fsType ?? '', mountPoint: m.mountPoint, device: m.device, ...(m.volumeId ? { volumeId: m.volumeId } : {}) };
  const grow = growCommand(mount);
  if (!grow)
    return refuse('not-applicable', `the data directory's filesystem is ${m.fsType ?? 'of a type not said'}: pgherd grows xfs and ext4`);
  const mod = x.modification;
  if (mod && (mod.state === 'modifying' || mod.state === 'optimizing') && (mod.targetSize ?? 0) !== sizeGiB)
    return refuse('in-use', `${x.volume.volumeId} is being modified already (${mod.state}, to ${String(mod.targetSize ?? '?')} GiB)`);
  if (!sizeGiB) return refuse('params', `give the new size above (the volume is ${String(x.volume.sizeGiB)} GiB), then update the plan`);
  if (sizeGiB < x.volume.sizeGiB)
    return refuse(
      'params',
      `${String(sizeGiB)} GiB is smaller than ${x.volume.volumeId} (${String(x.volume.sizeGiB)} GiB): EBS cannot shrink a volume`,
    );
  // (A filesystem is a little smaller than its volume: XFS's log, ext4's reserved blocks.)
  const reading = x.reading;
  if (!reading) return refuse('not-applicable', `${t.label} has no disk reading`);
  const fsShort = reading.total < sizeGiB * GiB * 0.95 - 128 * 1024 * 1024;
  if (sizeGiB === x.volume.sizeGiB && !fsShort)
    return refuse('not-applicable', `${x.volume.volumeId} is ${String(sizeGiB)} GiB already, and its filesystem fills it`);
  if (sizeGiB > x.volume.sizeGiB && mod?.startTime && Date.now() - mod.startTime.getTime() < MODIFY_EVERY_MS)
    return refuse(
      'cloud',
      `${x.volume.volumeId} was modified at ${mod.startTime.toISOString()}: EBS allows one change every six hours (from ${new Date(mod.startTime.getTime() + MODIFY_EVERY_MS).toISOString()})`,
    );
  return { volume: x.volume, mount, reading, region: x.server.region ?? '', instanceId: x.server.instanceId, size: sizeGiB, grow };
}

export const growVolumeAction = defineAction({
  name: 'grow-volume',
  // The host's disk, not Postgres's control plane: whatever runs the herd (RDS is refused by the plan).
  control: asks(null),
  label: 'Grow data volume (EBS)',
  permission: 'operator',
  dangerous: true,
  params: {
    schema: growVolumeParams,
    fields: [
      {
        name: 'sizeGiB',
        label: 'New size (GiB)',
        kind: 'text',
        emptyLabel: 'as the Risks page suggests',
        help: "The volume's new size in GiB: larger than it is (EBS grows a volume, never shrinks one, and once in six hours). The Risks page fills in half again its size, or 60 days of its growth.",
      },
    ],
  },
  prepare: (targets, _params, db): Promise<Prepared> => prepareGrow(targets, db),
  plan: (t, { params, prepared }) => {
    // (Nothing prepared: a plan made outside the engine.)
    const p = prepared as Prepared | undefined;
    const r = readiness(t, p?.targets.get(t.id), p?.aws ?? null, params.sizeGiB);
    if (r instanceof Refusal) return r;
    const { volume: v, mount: m, reading, size, grow } = r;
    return {
      facts: [
        { label: 'Volume', value: `${v.volumeId} (${v.type}) of ${r.instanceId}, attached as ${v.device}` },
        {
          label: 'Size',
          value:
            size === v.sizeGiB ? `${String(size)} GiB already: the filesystem only` : `${String(v.sizeGiB)} GiB -> ${String(size)} GiB`,
        },
        {
          label: 'Filesystem',
          value: `${m.fsType} on ${m.mountPoint}: ${gib(reading.free)} free of ${gib(reading.total)} (its agent, ${reading.readAt.toISOString()})`,
        },
        { label: 'On the host', value: `${shellCommand(grow)} (sudoers must allow it; Postgres keeps running)` },
      ],
      steps: [
        {
          name: `check ${t.hostname}'s data directory is on ${v.volumeId}`,
          does: { kind: 'fs.check-volume', instance: t.id, device: m.device, volumeId: v.volumeId, sizeGiB: v.sizeGiB },
          says: `before EBS is asked anything, on ${t.hostname}: ${t.dataDirectory} is on ${m.device} at ${m.mountPoint} (${m.fsType}), and ${m.device} is ${v.volumeId} (${String(v.sizeGiB)} GiB${m.volumeId ? ', its NVMe serial' : ''})`,
          timeoutMs: 60_000,
          run: (rx: RunContext<unknown>) => checkOnHost(rx.deps, t, rx, m, v),
        },
        {
          name: `grow ${v.volumeId}`,
          does: { kind: 'ebs.grow', volumeId: v.volumeId, region: r.region, sizeGiB: size },
          says: `ask EBS to make ${v.volumeId} ${String(size)} GiB (ModifyVolume; nothing asked if it is already), and wait until the size is usable`,
          timeoutMs: 11 * 60_000,
          run: async (rx: RunContext<unknown>) => {
            rx.note({ command: `ModifyVolume ${v.volumeId} Size=${String(size)}` });
            const done = await growVolume(ec2Client(r.region), v.volumeId, size, { signal: rx.signal });
            rx.note({ stdout: `${v.volumeId}: ${done.asked ? 'asked for' : 'already'} ${String(size)} GiB, ${done.state}` });
          },
        },
        {
          name: `grow the filesystem on ${t.hostname}`,
          does: { kind: 'fs.grow', instance: t.id, mountPoint: m.mountPoint, device: m.device, fsType: m.fsType },
          says: `on ${t.hostname}: wait until ${m.device} is ${String(size)} GiB, then ${shellCommand(grow)}`,
          timeoutMs: 5 * 60_000,
          run: (rx: RunContext<unknown>) => growOnHost(rx.deps, t, rx, m, size, grow, v.volumeId),
        },
      ],
    };
  },
});

/** On the host: the mount as planned, the device at the new size (polled), the filesystem grown, and what it is now. */
/**
 * The host says what the plan read from its agent: the data directory's mount, and that its device is the
 * volume (an NVMe device's serial; for any device, the volume's exact size: EBS volumes are whole GiB).
 * An agent's report may lie; the host's own answer, read over SSH before EBS is asked, decides.
 */
async function checkOnHost(deps: ActionDeps, t: InstanceRef, rx: RunContext<unknown>, m: Ready['mount'], v: AttachedVolume) {
  const where = await execNotedOk(
    deps,
    t,
    rx,
    ['findmnt', '--noheadings', '--output', 'SOURCE,TARGET,FSTYPE', '--target', t.dataDirectory],
    30_000,
  );
  const [source, target, fsType] = where.stdout.trim().split(/\s+/);
  if (source !== m.device || target !== m.mountPoint || fsType !== m.fsType)
    throw refuse(
      'stale',
      `${t.dataDirectory} on ${t.hostname} is on ${source ?? '?'} at ${target ?? '?'} (${fsType ?? '?'}), not ${m.device} at ${m.mountPoint} as its agent said: nothing asked of EBS`,
    );
  if (m.volumeId) {
    const serial = await execNotedOk(deps, t, rx, ['cat', `/sys/class/block/${m.device.replace(/^\/dev\//, '')}/device/serial`], 30_000);
    if (serial.stdout.trim().replace(/^vol-?/, 'vol-') !== m.volumeId)
      throw refuse(
        'stale',
        `${m.device} on ${t.hostname} is ${serial.stdout.trim() || 'no EBS volume'}, not ${m.volumeId}: nothing asked of EBS`,
      );
  }
  const size = Number(
    (await execNotedOk(deps, t, rx, ['lsblk', '--bytes', '--nodeps', '--noheadings', '--output', 'SIZE', m.device], 30_000)).stdout.trim(),
  );
  if (size !== v.sizeGiB * GiB)
    throw refuse(
      'stale',
      `${m.device} on ${t.hostname} is ${String(size)} bytes, not the ${String(v.sizeGiB)} GiB of ${v.volumeId}: it is another disk; nothing asked of EBS`,
    );
}

/** On the host, once EBS grew the volume: the device at the new size (polled), the filesystem grown, and what it is now. */
async function growOnHost(
  deps: ActionDeps,
  t: InstanceRef,
  rx: RunContext<unknown>,
  m: Ready['mount'],
  size: number,
  grow: string[],
  volumeId: string,
) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await execNotedOk(deps, t, rx, ['lsblk', '--bytes', '--nodeps', '--noheadings', '--output', 'SIZE', m.device], 30_000);
    if (Number(r.stdout.trim()) >= size * GiB) break;
    if (Date.now() > deadline)
      throw new Error(
        `${m.device} on ${t.hostname} is still ${gib(Number(r.stdout.trim()))} two minutes after EBS grew ${volumeId} to ${String(size)} GiB`,
      );
    await sleep(1000, rx.signal);
  }
  const g = await execNoted(deps, t, rx, grow, 120_000);
  if (g.code !== 0) {
    const sudo = /sudo|password|not allowed/i.test(g.stderr);
    throw new Error(
      sudo
        ? `pgherd's SSH user on ${t.hostname} may not run ${shellCommand(grow.slice(2))} as root (${g.stderr.trim().slice(0, 200)}): the volume is larger, the filesystem not yet. Allow it in sudoers (docs/risks.md), then run Grow data volume again with the same size`
        : `${shellCommand(grow)} on ${t.hostname} exited ${String(g.code)}: ${g.stderr.trim().slice(0, 300)}`,
    );
  }
  const df = await execNotedOk(deps, t, rx, ['df', '--block-size=1', '--output=size,avail', m.mountPoint], 30_000);
  const [total, avail] = (df.stdout.trim().split('\n')[1] ?? '').trim().split(/\s+/).map(Number);
  const text = `${t.label}: ${m.mountPoint} (${m.fsType}) is ${gib(total ?? 0)} now, ${gib(avail ?? 0)} free`;
  rx.note({ stdout: text });
  deps.outcome?.(text);
}
