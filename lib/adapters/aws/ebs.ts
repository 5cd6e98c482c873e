// EBS as pgherd uses it: the volumes attached to an EC2 instance, their last modification, and growing
// one (ModifyVolume, then waiting until EBS says the new size is usable: `optimizing` or `completed`).
import {
  DescribeVolumesCommand,
  DescribeVolumesModificationsCommand,
  ModifyVolumeCommand,
  type EC2Client,
  type Volume,
  type VolumeModification,
} from '@aws-sdk/client-ec2';
import { sleep } from './sleep';

export interface AttachedVolume {
  volumeId: string;
  sizeGiB: number;
  type: string;
  state: string;
  instanceId: string;
  /** The device name it was attached under (/dev/sdf, /dev/xvdf; on a Nitro host the kernel calls it nvmeXn1). */
  device: string;
}

export interface LastModification {
  state: string;
  startTime: Date | null;
  targetSize: number | null;
  message: string | null;
}

/** How often EBS lets a volume be modified: once in six hours. */
export const MODIFY_EVERY_MS = 6 * 3_600_000;

const attached = (v: Volume): AttachedVolume[] =>
  (v.Attachments ?? []).map((a) => ({
    volumeId: v.VolumeId ?? '',
    sizeGiB: v.Size ?? 0,
    type: v.VolumeType ?? '',
    state: v.State ?? '',
    instanceId: a.InstanceId ?? '',
    device: a.Device ?? '',
  }));

/** The volumes attached to these instances (every attachment: a volume attached to two is listed twice). */
export async function volumesOf(client: EC2Client, instanceIds: string[]): Promise<AttachedVolume[]> {
  if (!instanceIds.length) return [];
  const out: AttachedVolume[] = [];
  let NextToken: string | undefined;
  do {
    const r = await client.send(
      new DescribeVolumesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: instanceIds }], NextToken, MaxResults: 500 }),
    );
    for (const v of r.Volumes ?? []) out.push(...attached(v).filter((a) => instanceIds.includes(a.instanceId)));
    NextToken = r.NextToken;
  } while (NextToken);
  return out;
}

/** Each volume's latest modification, by volume id (none: never modified). */
export async function lastModifications(client: EC2Client, volumeIds: string[]): Promise<Map<string, LastModification>> {
  const out = new Map<string, LastModification>();
  if (!volumeIds.length) return out;
  const r = await client.send(new DescribeVolumesModificationsCommand({ VolumeIds: volumeIds }));
  const latest = new Map<string, VolumeModification>();
  for (const m of r.VolumesModifications ?? []) {
    const was = latest.get(m.VolumeId ?? '');
    if (!was || (m.StartTime?.getTime() ?? 0) >= (was.StartTime?.getTime() ?? 0)) latest.set(m.VolumeId ?? '', m);
  }
  for (const [id, m] of latest)
    out.set(id, {
      state: m.ModificationState ?? '',
      startTime: m.StartTime ?? null,
      targetSize: m.TargetSize ?? null,
      message: m.StatusMessage ?? null,
    });
  return out;
}

/** The device names one attachment goes by: /dev/sdf and /dev/xvdf are the same disk on a Xen host. */
export function sameDevice(attachment: string, mounted: string): boolean {
  const norm = (d: string) => d.replace(/^\/dev\/(xvd|sd)/, '/dev/sd');
  return norm(attachment) === norm(mounted);
}

/**
 * Asks EBS for `sizeGiB` (nothing asked when it is that size already: a step run again), then waits
 * until the size is usable (`optimizing` or `completed`), bounded by `maxWaitMs`. A `failed` one throws
 * with EBS's message.
 */
export async function growVolume(
  client: EC2Client,
  volumeId: string,
  sizeGiB: number,
  { maxWaitMs = 600_000, everyMs = 2000, signal }: { maxWaitMs?: number; everyMs?: number; signal?: AbortSignal } = {},
): Promise<{ asked: boolean; state: string }> {
  const now = (await client.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes?.[0];
  if (!now) throw new Error(`EBS has no volume ${volumeId}`);
  const asked = (now.Size ?? 0) < sizeGiB;
  if (asked) await client.send(new ModifyVolumeCommand({ VolumeId: volumeId, Size: sizeGiB }));
  const until = Date.now() + maxWaitMs;
  for (;;) {
    const m = (await lastModifications(client, [volumeId])).get(volumeId);
    if (!m) return { asked, state: 'completed' };
    if (m.state === 'failed') throw new Error(`EBS could not modify ${volumeId}: ${m.message ?? 'failed'}`);
    if (m.state === 'optimizing' || m.state === 'completed') return { asked, state: m.state };
    if (Date.now() > until)
      throw new Error(`${volumeId} is still ${m.state} after ${String(maxWaitMs / 1000)} s: EBS has not made the new size usable yet`);
    await sleep(everyMs, signal);
  }
}
