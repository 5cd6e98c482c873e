// New EC2 instances as pgherd launches them: like an instance that exists (its image, subnet, security
// groups, key pair and instance profile: a herd's member is the template of the hosts it gets), of a type
// chosen; their SSH host key read from the instance's console, where cloud-init prints it at first boot
// (AWS's own channel, so the key is never taken on first contact over the network); terminated when done.
// Knows nothing of pgherd's database.
import {
  DescribeInstancesCommand,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  waitUntilInstanceTerminated,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { cloudInstance, Ec2WaitTimeout, instanceNotFound, startInstanceWait, type CloudInstance, type WaitBounds } from './ec2';

/** What a new instance copies from the instance it is launched like. */
export interface LaunchTemplate {
  /** The instance it is read from. */
  like: string;
  region: string;
  imageId: string;
  subnetId: string;
  vpcId: string;
  account: string;
  availabilityZone: string;
  securityGroupIds: string[];
  keyName: string | null;
  /** The instance profile's ARN, when it has one. */
  instanceProfileArn: string | null;
  architecture: string;
  /** Its tags (a new instance carries those discovery looks for). */
  tags: Record<string, string>;
}

/** The launch template of an instance, read from EC2 now; null when EC2 does not know it. */
export async function launchTemplateOf(client: EC2Client, region: string, instanceId: string): Promise<LaunchTemplate | null> {
  const res = await client.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })).catch((err: unknown) => {
    if (instanceNotFound(err)) return null;
    throw err;
  });
  const r = res?.Reservations?.find((x) => x.Instances?.length);
  const i = r?.Instances?.[0];
  if (!i?.InstanceId || !i.ImageId || !i.SubnetId || i.State?.Name === 'terminated') return null;
  return {
    like: i.InstanceId,
    region,
    imageId: i.ImageId,
    subnetId: i.SubnetId,
    vpcId: i.VpcId ?? '',
    account: r?.OwnerId ?? '',
    availabilityZone: i.Placement?.AvailabilityZone ?? '',
    securityGroupIds: (i.SecurityGroups ?? []).flatMap((g) => (g.GroupId ? [g.GroupId] : [])),
    keyName: i.KeyName ?? null,
    instanceProfileArn: i.IamInstanceProfile?.Arn ?? null,
    architecture: i.Architecture ?? '',
    tags: Object.fromEntries((i.Tags ?? []).flatMap((t) => (t.Key ? [[t.Key, t.Value ?? '']] : []))),
  };
}

/**
 * Launches one instance like the template, of `instanceType`, with `tags`. `clientToken` makes the call
 * idempotent (EC2 returns the instance the token launched before, never a second one): a step run again
 * after its worker died launches nothing new.
 */
export async function launchInstance(
  client: EC2Client,
  t: LaunchTemplate,
  instanceType: string,
  tags: Record<string, string>,
  clientToken: string,
  opts: { spot?: boolean } = {},
): Promise<CloudInstance> {
  const res = await client.send(
    new RunInstancesCommand({
      ImageId: t.imageId,
      InstanceType: instanceType as never,
      MinCount: 1,
      MaxCount: 1,
      SubnetId: t.subnetId,
      ...(t.securityGroupIds.length ? { SecurityGroupIds: t.securityGroupIds } : {}),
      ...(t.keyName ? { KeyName: t.keyName } : {}),
      ...(t.instanceProfileArn ? { IamInstanceProfile: { Arn: t.instanceProfileArn } } : {}),
      ClientToken: clientToken,
      // A one-time spot request, terminated when EC2 takes the capacity back (its replacement is a new instance).
      ...(opts.spot
        ? {
            InstanceMarketOptions: {
              MarketType: 'spot',
              SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
            },
          }
        : {}),
      TagSpecifications: [
        { ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
        { ResourceType: 'volume', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
      ],
    }),
  );
  const i = res.Instances?.[0];
  if (!i?.InstanceId) throw new Error('EC2 answered RunInstances without an instance');
  return cloudInstance(i, t.region, res.OwnerId ?? t.account);
}

/** Waits until the launched instance runs (EC2's reads may not know a new id at once). */
export async function waitLaunched(client: EC2Client, instanceId: string, b: WaitBounds): Promise<void> {
  await startInstanceWait(client, instanceId, b);
}

/** SSH host key fingerprints (OpenSSH's SHA256 form) by key type, lower case: { ed25519: 'SHA256:...' }. */
export type HostKeyFingerprints = Record<string, string>;

/**
 * The host key fingerprints cloud-init printed to the console at first boot, between its
 * "-----BEGIN SSH HOST KEY FINGERPRINTS-----" and "-----END SSH HOST KEY FINGERPRINTS-----" lines (each
 * line "256 SHA256:... root@host (ED25519)", after a prefix such as "ec2: "). Empty when the console does
 * not hold the block (yet). Two blocks that disagree (a console written again with other keys) give
 * nothing: which one is the host's cannot be told.
 */
export function consoleFingerprints(text: string): HostKeyFingerprints {
  const lines = text.split(/\r?\n/);
  const blocks: HostKeyFingerprints[] = [];
  let current: HostKeyFingerprints | null = null;
  for (const line of lines) {
    if (/-----BEGIN SSH HOST KEY FINGERPRINTS-----/.test(line)) current = {};
    else if (/-----END SSH HOST KEY FINGERPRINTS-----/.test(line)) {
      if (current) blocks.push(current);
      current = null;
    } else if (current) {
      const [, fp, type] = /\b\d+\s+(SHA256:[A-Za-z0-9+/]{43})\s+.*\((\w+)\)\s*$/.exec(line) ?? [];
      if (fp && type) current[type.toLowerCase()] = fp;
    }
  }
  const [head] = blocks;
  if (!head) return {};
  const first = JSON.stringify(head);
  return blocks.every((b) => JSON.stringify(b) === first) ? head : {};
}

/** The instance's console, decoded ('' when EC2 has none yet). */
export async function consoleText(client: EC2Client, instanceId: string, signal?: AbortSignal): Promise<string> {
  const res = await client.send(
    new GetConsoleOutputCommand({ InstanceId: instanceId, Latest: true }),
    signal ? { abortSignal: signal } : {},
  );
  return res.Output ? Buffer.from(res.Output, 'base64').toString('utf8') : '';
}

/**
 * Terminates the instance and waits until EC2 says terminated (at most `b.maxWaitSeconds`). An instance
 * EC2 no longer knows is terminated already.
 */
export async function terminateInstance(client: EC2Client, instanceId: string, b: WaitBounds): Promise<void> {
  try {
    await client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  } catch (err) {
    if (instanceNotFound(err)) return;
    throw err;
  }
  try {
    await waitUntilInstanceTerminated(
      {
        client,
        maxWaitTime: b.maxWaitSeconds,
        minDelay: b.minDelaySeconds,
        maxDelay: b.maxDelaySeconds,
        ...(b.signal ? { abortSignal: b.signal } : {}),
      },
      { InstanceIds: [instanceId] },
    );
  } catch (err) {
    if (err instanceof Error && (err.name === 'TimeoutError' || /exceeded max wait time|timed out/i.test(err.message)))
      throw new Ec2WaitTimeout(instanceId, 'terminated', b.maxWaitSeconds);
    throw err;
  }
}
