// EC2 as pgherd uses it: instances found by tag, the instance type catalogue, and the calls that stop,
// retype and start an instance, each wait bounded. Knows nothing of pgherd's database.
import {
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  ModifyInstanceAttributeCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  waitUntilInstanceStopped,
  type EC2Client,
  type Filter,
  type Instance,
  type InstanceTypeInfo,
  paginateDescribeInstances,
  paginateDescribeInstanceTypeOfferings,
  paginateDescribeInstanceTypes,
} from '@aws-sdk/client-ec2';
import { setting } from '@/lib/settings/settings';
import { sleep } from './sleep';

/** What pgherd records of an EC2 instance: its cloud identity. */
export interface CloudInstance {
  instanceId: string;
  region: string;
  availabilityZone: string;
  instanceType: string;
  architecture: string;
  /** pending, running, stopping, stopped, shutting-down, terminated */
  state: string;
  privateAddress: string | null;
  tags: Record<string, string>;
  /** Whether the instance has ENA enabled (a type that requires ENA needs it). */
  enaSupport: boolean;
  /** hvm or paravirtual (a type must support the instance's). */
  virtualization: string;
  /** Why EC2 last changed its state (StateReason's code: Server.InsufficientInstanceCapacity, say), or ''. */
  stateReason: string;
  /** The VPC it runs in ('' outside one): with the account, what says which environment it is (lib/adapters/aws/environments.ts). */
  vpcId: string;
  /** The AWS account that owns it (its reservation's OwnerId). */
  account: string;
  /** The idempotency token it was launched with ('' when none): unlike a tag, nobody can set it afterwards. */
  clientToken?: string;
  /** When EC2 launched it, or null. */
  launchTime?: Date | null;
}

export function cloudInstance(i: Instance, region: string, account = ''): CloudInstance {
  return {
    instanceId: i.InstanceId ?? '',
    region,
    vpcId: i.VpcId ?? '',
    account,
    availabilityZone: i.Placement?.AvailabilityZone ?? '',
    instanceType: i.InstanceType ?? '',
    architecture: i.Architecture ?? '',
    state: i.State?.Name ?? 'unknown',
    privateAddress: i.PrivateIpAddress ?? null,
    tags: Object.fromEntries((i.Tags ?? []).flatMap((t) => (t.Key ? [[t.Key, t.Value ?? '']] : []))),
    // EC2 leaves these out for an instance where they do not apply: today's AMIs are HVM with ENA.
    enaSupport: i.EnaSupport ?? true,
    virtualization: i.VirtualizationType ?? 'hvm',
    stateReason: i.StateReason?.Code ?? '',
    clientToken: i.ClientToken ?? '',
    launchTime: i.LaunchTime ?? null,
  };
}

/** `Key=Value` pairs (a value of `*` matches any value) as DescribeInstances filters. */
export function tagFilters(tags: Record<string, string>): Filter[] {
  return Object.entries(tags).map(([k, v]) => (v === '*' ? { Name: 'tag-key', Values: [k] } : { Name: `tag:${k}`, Values: [v] }));
}

/** Every instance the filters match (terminated ones included: discovery marks them), page after page. */
export async function describeInstances(client: EC2Client, region: string, filters: Filter[]): Promise<CloudInstance[]> {
  const out: CloudInstance[] = [];
  for await (const page of paginateDescribeInstances({ client, pageSize: 500 }, { Filters: filters })) {
    for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) out.push(cloudInstance(i, region, r.OwnerId));
  }
  return out;
}

/** The instances with these ids (those EC2 no longer knows are left out). */
export async function describeInstancesById(client: EC2Client, region: string, ids: string[]): Promise<CloudInstance[]> {
  if (!ids.length) return [];
  const res = await client.send(new DescribeInstancesCommand({ InstanceIds: ids }));
  return (res.Reservations ?? []).flatMap((r) => (r.Instances ?? []).map((i) => cloudInstance(i, region, r.OwnerId)));
}

/** An instance type as the ranking needs it. */
export interface TypeInfo {
  name: string;
  vcpus: number;
  memoryGiB: number;
  architectures: string[];
  burstable: boolean;
  /** unsupported, supported, required */
  ena: string;
  virtualization: string[];
  currentGeneration: boolean;
}

export function typeInfo(t: InstanceTypeInfo): TypeInfo {
  return {
    name: t.InstanceType ?? '',
    vcpus: t.VCpuInfo?.DefaultVCpus ?? 0,
    memoryGiB: (t.MemoryInfo?.SizeInMiB ?? 0) / 1024,
    architectures: t.ProcessorInfo?.SupportedArchitectures ?? [],
    burstable: t.BurstablePerformanceSupported ?? false,
    ena: t.NetworkInfo?.EnaSupport ?? 'unsupported',
    virtualization: t.SupportedVirtualizationTypes ?? [],
    currentGeneration: t.CurrentGeneration ?? true,
  };
}

/** The region's instance type catalogue (or the named types). */
export async function describeTypes(client: EC2Client, names?: string[]): Promise<TypeInfo[]> {
  if (names) {
    if (!names.length) return [];
    const res = await client.send(new DescribeInstanceTypesCommand({ InstanceTypes: names as never }));
    return (res.InstanceTypes ?? []).map(typeInfo);
  }
  const out: TypeInfo[] = [];
  for await (const page of paginateDescribeInstanceTypes({ client, pageSize: 100 }, {}))
    out.push(...(page.InstanceTypes ?? []).map(typeInfo));
  return out;
}

/** The types offered in an availability zone. */
export async function typesOfferedIn(client: EC2Client, availabilityZone: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const page of paginateDescribeInstanceTypeOfferings(
    { client, pageSize: 1000 },
    { LocationType: 'availability-zone', Filters: [{ Name: 'location', Values: [availabilityZone] }] },
  )) {
    for (const o of page.InstanceTypeOfferings ?? []) if (o.InstanceType) out.add(o.InstanceType);
  }
  return out;
}

/** How long a stop or a start may take, and how often EC2 is asked (seconds, the SDK waiter's units). */
export interface WaitBounds {
  maxWaitSeconds: number;
  minDelaySeconds: number;
  maxDelaySeconds: number;
  signal?: AbortSignal;
}

export const DEFAULT_WAIT: WaitBounds = { maxWaitSeconds: 600, minDelaySeconds: 5, maxDelaySeconds: 15 };

/** A wait that ran out: the instance is in `state` after the deadline. */
export class Ec2WaitTimeout extends Error {
  constructor(
    readonly instanceId: string,
    readonly wanted: string,
    seconds: number,
  ) {
    super(`${instanceId} was not ${wanted} within ${seconds} s`);
    this.name = 'Ec2WaitTimeout';
  }
}

async function waited(what: Promise<unknown>, instanceId: string, wanted: string, b: WaitBounds): Promise<void> {
  try {
    await what;
  } catch (err) {
    // The SDK's waiter says TimeoutError when its maxWaitTime runs out; other errors (an access denied,
    // an instance that terminated instead) are AWS's own and pass through.
    if (err instanceof Error && (err.name === 'TimeoutError' || /exceeded max wait time|timed out/i.test(err.message)))
      throw new Ec2WaitTimeout(instanceId, wanted, b.maxWaitSeconds);
    throw err;
  }
}

const waiterOf = (client: EC2Client, b: WaitBounds) => ({
  client,
  maxWaitTime: b.maxWaitSeconds,
  minDelay: b.minDelaySeconds,
  maxDelay: b.maxDelaySeconds,
  ...(b.signal ? { abortSignal: b.signal } : {}),
});

/** Stops the instance and waits until EC2 says stopped (at most `b.maxWaitSeconds`). */
export async function stopInstance(client: EC2Client, instanceId: string, b: WaitBounds = DEFAULT_WAIT): Promise<void> {
  await client.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
  await waited(waitUntilInstanceStopped(waiterOf(client, b), { InstanceIds: [instanceId] }), instanceId, 'stopped', b);
}

/**
 * Waits while EC2 says the instance is `pending` or `stopping` (at most `b.maxWaitSeconds`), and returns
 * it as it settled: what a cleanup does before it decides, so that a start still under way (one whose
 * own wait ran out) is neither left as it is nor started twice.
 */
export async function waitSettled(client: EC2Client, region: string, instanceId: string, b: WaitBounds = DEFAULT_WAIT) {
  const deadline = Date.now() + b.maxWaitSeconds * 1000;
  let delay = b.minDelaySeconds * 1000;
  for (;;) {
    const [i] = await describeInstancesById(client, region, [instanceId]);
    if (!i || (i.state !== 'pending' && i.state !== 'stopping') || Date.now() >= deadline) return i ?? null;
    await sleep(Math.max(0, Math.min(delay, deadline - Date.now())), b.signal);
    delay = Math.min(delay * 1.5, b.maxDelaySeconds * 1000);
  }
}

/**
 * EC2 took an instance it had accepted to start back to stopped (or ended it): its StateReason says why.
 * `Server.InsufficientInstanceCapacity` is a capacity refusal like StartInstances' own (its `Code` is
 * `InsufficientInstanceCapacity`, so the next fallback type is tried).
 */
export class Ec2StartFailed extends Error {
  readonly Code: string;
  constructor(
    readonly instanceId: string,
    readonly state: string,
    readonly reasonCode: string,
    reasonMessage: string,
  ) {
    super(`${instanceId} did not start: EC2 says ${state} (${reasonMessage || reasonCode || 'no reason given'})`);
    this.name = 'Ec2StartFailed';
    this.Code = reasonCode.replace(/^(Server|Client)\./, '') || 'Ec2StartFailed';
  }
}

/** How long a start may go on saying `stopped` with the old stop's reason, as EC2's reads catch up. */
export const START_GRACE_SECONDS = 30;

/**
 * Starts the instance and waits until EC2 says running (at most `b.maxWaitSeconds`). Unlike the SDK's
 * waiter, which waits out its whole time on an instance that is `stopped` again, a start ends as soon
 * as EC2 says it will not happen: `stopped` or `stopping` after `pending`, or with a `Server.` reason
 * (AWS accepted the start, then found no capacity: Server.InsufficientInstanceCapacity), and
 * `shutting-down` or `terminated` at any time. A `stopped` with the old stop's reason right after the
 * call is EC2's reads catching up: it is given START_GRACE_SECONDS.
 */
export async function startInstance(client: EC2Client, instanceId: string, b: WaitBounds = DEFAULT_WAIT): Promise<void> {
  await client.send(new StartInstancesCommand({ InstanceIds: [instanceId] }), b.signal ? { abortSignal: b.signal } : {});
  await startInstanceWait(client, instanceId, b);
}

/** The wait of startInstance, after the call (or after RunInstances: a new instance starts as `pending`). */
export async function startInstanceWait(client: EC2Client, instanceId: string, b: WaitBounds = DEFAULT_WAIT): Promise<void> {
  const t0 = Date.now();
  const deadline = t0 + b.maxWaitSeconds * 1000;
  const grace = t0 + Math.min(START_GRACE_SECONDS, b.maxWaitSeconds) * 1000;
  // Asked at once (as the SDK's waiter does: a start EC2 finishes quickly is seen at once), then every
  // minDelay, growing to maxDelay.
  let delay = 0;
  let moved = false;
  for (;;) {
    if (delay > 0) await sleep(Math.max(0, Math.min(delay, deadline - Date.now())), b.signal);
    const res = await client
      .send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }), b.signal ? { abortSignal: b.signal } : {})
      .catch((err: unknown) => {
        // Just started, EC2's reads may not know the id yet; anything else is AWS's answer.
        if (instanceNotFound(err)) return null;
        throw err;
      });
    const i = res?.Reservations?.flatMap((r) => r.Instances ?? [])[0];
    const state = i?.State?.Name ?? 'unknown';
    const reason = { code: i?.StateReason?.Code ?? '', message: i?.StateReason?.Message ?? '' };
    if (state === 'running') return;
    if (state === 'pending') moved = true;
    if (state === 'shutting-down' || state === 'terminated') throw new Ec2StartFailed(instanceId, state, reason.code, reason.message);
    if (state === 'stopped' || state === 'stopping') {
      if (moved || reason.code.startsWith('Server.') || Date.now() >= grace)
        throw new Ec2StartFailed(instanceId, state, reason.code, reason.message);
    }
    if (Date.now() >= deadline) throw new Ec2WaitTimeout(instanceId, 'running', b.maxWaitSeconds);
    delay = delay === 0 ? b.minDelaySeconds * 1000 : Math.min(delay * 1.5, b.maxDelaySeconds * 1000);
  }
}

/** EC2 does not know the instance id (yet, just launched or started; or any more). */
export function instanceNotFound(err: unknown): boolean {
  return (err as Error & { Code?: string }).Code === 'InvalidInstanceID.NotFound' || (err as Error).name === 'InvalidInstanceID.NotFound';
}

/** Changes a stopped instance's type (EC2 refuses it on a running one: IncorrectInstanceState). */
export async function setInstanceType(client: EC2Client, instanceId: string, instanceType: string): Promise<void> {
  await client.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, InstanceType: { Value: instanceType } }));
}

/** EC2's answer when a type cannot be had now, or cannot run there: the next fallback type is tried. */
export function isCapacityOrTypeRefusal(err: unknown): boolean {
  const code = err instanceof Error ? ((err as Error & { Code?: string }).Code ?? err.name) : '';
  return [
    'InsufficientInstanceCapacity',
    'InsufficientHostCapacity',
    'InsufficientCapacity',
    'Unsupported',
    'UnsupportedOperation',
    'InvalidInstanceType',
    'InvalidParameterValue',
  ].includes(code);
}

/**
 * The bounds this process waits with: PGHERD_EC2_WAIT_SECONDS (default 600) for a stop or a start,
 * asking every PGHERD_EC2_POLL_SECONDS (default 5, growing to 3 times that).
 */
export function waitBounds(env: Record<string, string | undefined> = process.env): WaitBounds {
  const poll = setting('PGHERD_EC2_POLL_SECONDS', env);
  return { maxWaitSeconds: setting('PGHERD_EC2_WAIT_SECONDS', env), minDelaySeconds: poll, maxDelaySeconds: poll * 3 };
}
