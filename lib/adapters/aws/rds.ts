// RDS as pgherd uses it: its Postgres DB instances (engine postgres) and their read replicas, and the calls
// that change one (class, stop, start, reboot, promote, a new read replica), each followed by a bounded
// wait on RDS's own status. Knows nothing of pgherd's database.
import {
  CreateDBInstanceReadReplicaCommand,
  DescribeDBInstancesCommand,
  DescribeDBParametersCommand,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  PromoteReadReplicaCommand,
  RebootDBInstanceCommand,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
  paginateDescribeDBInstances,
  paginateDescribeOrderableDBInstanceOptions,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import type { WaitBounds } from './ec2';
import { sleep } from './sleep';
import { setting } from '@/lib/settings/settings';

/** What pgherd records of an RDS DB instance: its cloud identity. */
export interface RdsInstance {
  identifier: string;
  region: string;
  /** The account that owns it (from its ARN). */
  account: string;
  /** The VPC of its subnet group ('' outside one). */
  vpcId: string;
  instanceClass: string;
  engine: string;
  engineVersion: string;
  /** RDS's status: available, creating, modifying, rebooting, stopping, stopped, starting, storage-full, ... */
  status: string;
  /** Where it answers (a DNS name in AWS); null while RDS gives none (creating). */
  endpoint: { address: string; port: number } | null;
  availabilityZone: string;
  multiAz: boolean;
  allocatedStorageGiB: number;
  storageType: string;
  parameterGroup: string;
  /**
   * Whether the instance runs what its DB parameter group holds: `in-sync`, `pending-reboot` (a static
   * value waits for its reboot), `applying`; '' when RDS says nothing.
   */
  parameterApplyStatus: string;
  /** The instance it replicates from (its identifier; an ARN for a source in another region), or null for a source. */
  sourceIdentifier: string | null;
  replicaIdentifiers: string[];
  /** A class change RDS has accepted and not applied yet. */
  pendingClass: string | null;
  tags: Record<string, string>;
}

const accountOfArn = (arn: string | undefined) => /^arn:aws[\w-]*:rds:[^:]*:(\d{12}):/.exec(arn ?? '')?.[1] ?? '';

export function rdsInstance(d: DBInstance, region: string): RdsInstance {
  return {
    identifier: d.DBInstanceIdentifier ?? '',
    region,
    account: accountOfArn(d.DBInstanceArn),
    vpcId: d.DBSubnetGroup?.VpcId ?? '',
    instanceClass: d.DBInstanceClass ?? '',
    engine: d.Engine ?? '',
    engineVersion: d.EngineVersion ?? '',
    status: d.DBInstanceStatus ?? 'unknown',
    endpoint: d.Endpoint?.Address ? { address: d.Endpoint.Address, port: d.Endpoint.Port ?? 5432 } : null,
    availabilityZone: d.AvailabilityZone ?? '',
    multiAz: d.MultiAZ ?? false,
    allocatedStorageGiB: d.AllocatedStorage ?? 0,
    storageType: d.StorageType ?? '',
    parameterGroup: d.DBParameterGroups?.[0]?.DBParameterGroupName ?? '',
    parameterApplyStatus: d.DBParameterGroups?.[0]?.ParameterApplyStatus ?? '',
    sourceIdentifier: d.ReadReplicaSourceDBInstanceIdentifier ?? null,
    replicaIdentifiers: d.ReadReplicaDBInstanceIdentifiers ?? [],
    pendingClass: d.PendingModifiedValues?.DBInstanceClass ?? null,
    tags: Object.fromEntries((d.TagList ?? []).flatMap((t) => (t.Key ? [[t.Key, t.Value ?? '']] : []))),
  };
}

/** Every Postgres DB instance of the region (other engines are not pgherd's), page after page. */
export async function describeRdsPostgres(client: RDSClient, region: string): Promise<RdsInstance[]> {
  const out: RdsInstance[] = [];
  for await (const page of paginateDescribeDBInstances({ client, pageSize: 100 }, { Filters: [{ Name: 'engine', Values: ['postgres'] }] }))
    for (const d of page.DBInstances ?? []) if (d.Engine === 'postgres') out.push(rdsInstance(d, region));
  return out;
}

/** One DB instance as RDS has it now; null when RDS does not know it (deleted, another account). */
export async function describeRds(
  client: RDSClient,
  region: string,
  identifier: string,
  signal?: AbortSignal,
): Promise<RdsInstance | null> {
  try {
    const r = await client.send(
      new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }),
      signal ? { abortSignal: signal } : {},
    );
    const d = r.DBInstances?.[0];
    return d ? rdsInstance(d, region) : null;
  } catch (err) {
    if (rdsNotFound(err)) return null;
    throw err;
  }
}

export function rdsNotFound(err: unknown): boolean {
  const code = err instanceof Error ? ((err as Error & { Code?: string }).Code ?? err.name) : '';
  return code === 'DBInstanceNotFound' || code === 'DBInstanceNotFoundFault';
}

/** A wait on RDS's status that ran out. */
export class RdsWaitTimeout extends Error {
  constructor(
    readonly identifier: string,
    readonly wanted: string,
    readonly last: string,
    seconds: number,
  ) {
    super(`${identifier} was not ${wanted} within ${seconds} s (RDS says ${last})`);
    this.name = 'RdsWaitTimeout';
  }
}

/** RDS ended in a status that will not become the one waited for (failed, storage-full, incompatible-...). */
export class RdsStatusError extends Error {
  constructor(
    readonly identifier: string,
    readonly status: string,
    wanted: string,
  ) {
    super(`${identifier} is ${status}: RDS will not make it ${wanted} (see its events in the RDS console)`);
    this.name = 'RdsStatusError';
  }
}

/** Statuses from which RDS does not come back by itself. */
const STUCK = new Set([
  'failed',
  'storage-full',
  'incompatible-parameters',
  'incompatible-network',
  'incompatible-option-group',
  'incompatible-restore',
  'inaccessible-encryption-credentials',
  'restore-error',
  'deleting',
]);

/** What a wait for an RDS instance waits for: which instance, what it should come to (in words, and as `done`), how long. */
export interface RdsWait {
  region: string;
  identifier: string;
  wanted: string;
  done: (i: RdsInstance) => boolean;
  bounds: WaitBounds;
  seen?: (i: RdsInstance) => void;
}

/**
 * Waits until RDS says the instance is what `done` wants (at most `b.maxWaitSeconds`, asking every
 * minDelay growing to maxDelay); throws RdsStatusError at once on a status RDS does not leave by itself,
 * RdsWaitTimeout when the bound runs out. `seen` is told every status read (a step's record).
 */
export async function waitRds(client: RDSClient, w: RdsWait): Promise<RdsInstance> {
  const { region, identifier, wanted, done, bounds: b, seen = () => {} } = w;
  const deadline = Date.now() + b.maxWaitSeconds * 1000;
  let delay = 0;
  let last = 'unknown';
  for (;;) {
    if (delay > 0) await sleep(Math.max(0, Math.min(delay, deadline - Date.now())), b.signal);
    const i = await describeRds(client, region, identifier, b.signal);
    if (!i) throw new RdsStatusError(identifier, 'unknown to RDS', wanted);
    last = i.status;
    seen(i);
    if (done(i)) return i;
    if (STUCK.has(i.status)) throw new RdsStatusError(identifier, i.status, wanted);
    if (Date.now() >= deadline) throw new RdsWaitTimeout(identifier, wanted, last, b.maxWaitSeconds);
    delay = delay === 0 ? b.minDelaySeconds * 1000 : Math.min(delay * 1.5, b.maxDelaySeconds * 1000);
  }
}

const opts = (signal?: AbortSignal) => (signal ? { abortSignal: signal } : {});

/** A new class, applied now (RDS restarts the instance to apply it). */
export async function modifyClass(client: RDSClient, identifier: string, instanceClass: string, signal?: AbortSignal): Promise<void> {
  await client.send(
    new ModifyDBInstanceCommand({ DBInstanceIdentifier: identifier, DBInstanceClass: instanceClass, ApplyImmediately: true }),
    opts(signal),
  );
}

export async function stopRds(client: RDSClient, identifier: string, signal?: AbortSignal): Promise<void> {
  await client.send(new StopDBInstanceCommand({ DBInstanceIdentifier: identifier }), opts(signal));
}

export async function startRds(client: RDSClient, identifier: string, signal?: AbortSignal): Promise<void> {
  await client.send(new StartDBInstanceCommand({ DBInstanceIdentifier: identifier }), opts(signal));
}

/** A reboot; with `failover`, a Multi-AZ instance's standby takes over (RDS refuses it for a Single-AZ one). */
export async function rebootRds(client: RDSClient, identifier: string, failover: boolean, signal?: AbortSignal): Promise<void> {
  await client.send(
    new RebootDBInstanceCommand({ DBInstanceIdentifier: identifier, ...(failover ? { ForceFailover: true } : {}) }),
    opts(signal),
  );
}

/** The read replica becomes a standalone instance that accepts writes (its source is left as it is). */
export async function promoteReplica(client: RDSClient, identifier: string, signal?: AbortSignal): Promise<void> {
  await client.send(new PromoteReadReplicaCommand({ DBInstanceIdentifier: identifier }), opts(signal));
}

/** A new read replica of `source`, of a class, in a zone (RDS picks one when none is given), tagged. */
export async function createReadReplica(
  client: RDSClient,
  p: { identifier: string; source: string; instanceClass: string; availabilityZone?: string; tags: Record<string, string> },
  signal?: AbortSignal,
): Promise<void> {
  await client.send(
    new CreateDBInstanceReadReplicaCommand({
      DBInstanceIdentifier: p.identifier,
      SourceDBInstanceIdentifier: p.source,
      DBInstanceClass: p.instanceClass,
      ...(p.availabilityZone ? { AvailabilityZone: p.availabilityZone } : {}),
      Tags: Object.entries(p.tags).map(([Key, Value]) => ({ Key, Value })),
    }),
    opts(signal),
  );
}

/** RDS's answer when a class cannot be had now, or not for this engine there. */
export function isRdsCapacityOrClassRefusal(err: unknown): boolean {
  const code = err instanceof Error ? ((err as Error & { Code?: string }).Code ?? err.name) : '';
  return [
    'InsufficientDBInstanceCapacity',
    'InsufficientDBInstanceCapacityFault',
    'InvalidParameterCombination',
    'InvalidParameterValue',
  ].includes(code);
}

/** An RDS class's EC2 twin (db.m6i.large runs on m6i.large): what its vCPU and memory are read from. */
export const ec2TypeOfClass = (instanceClass: string) => instanceClass.replace(/^db\./, '');

/** The classes RDS offers for this PostgreSQL version in this zone (DescribeOrderableDBInstanceOptions). */
export async function orderableClasses(client: RDSClient, engineVersion: string, zone: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const page of paginateDescribeOrderableDBInstanceOptions(
    { client, pageSize: 1000 },
    { Engine: 'postgres', EngineVersion: engineVersion, Vpc: true },
  ))
    for (const o of page.OrderableDBInstanceOptions ?? [])
      if (o.DBInstanceClass && (o.AvailabilityZones ?? []).some((z) => z.Name === zone)) out.add(o.DBInstanceClass);
  return out;
}

/** The bounds this process waits on RDS with: PGHERD_RDS_WAIT_SECONDS, asking every PGHERD_RDS_POLL_SECONDS (growing to 3 times that). */
export function rdsWaitBounds(env: Record<string, string | undefined> = process.env): WaitBounds {
  const poll = setting('PGHERD_RDS_POLL_SECONDS', env);
  return { maxWaitSeconds: setting('PGHERD_RDS_WAIT_SECONDS', env), minDelaySeconds: poll, maxDelaySeconds: poll * 3 };
}

/** A parameter of a DB parameter group, and when RDS applies it: now (dynamic), or at the next reboot (static). */
export interface RdsParameterChange {
  name: string;
  value: string;
  applyMethod: 'immediate' | 'pending-reboot';
}

/** A parameter a DB parameter group holds, as DescribeDBParameters says it (the value in the setting's base unit, a boolean 1 or 0). */
export interface RdsGroupParameter {
  name: string;
  value: string;
  /** `static` (at the next reboot) or `dynamic`. */
  applyType: string;
}

/**
 * The parameters someone set in `group` (Source `user`: what is not the engine's default), page after page.
 * A parameter listed without a value is one RDS lists and nobody set: left out.
 */
export async function describeRdsParameters(client: RDSClient, group: string, signal?: AbortSignal): Promise<RdsGroupParameter[]> {
  const out: RdsGroupParameter[] = [];
  let marker: string | undefined;
  do {
    const page = await client.send(
      new DescribeDBParametersCommand({
        DBParameterGroupName: group,
        Source: 'user',
        MaxRecords: 100,
        ...(marker ? { Marker: marker } : {}),
      }),
      opts(signal),
    );
    for (const p of page.Parameters ?? [])
      if (p.ParameterName && p.ParameterValue !== undefined && (p.Source ?? 'user') === 'user')
        out.push({ name: p.ParameterName, value: p.ParameterValue, applyType: p.ApplyType ?? '' });
    marker = page.Marker;
  } while (marker);
  return out;
}

/**
 * ModifyDBParameterGroup: `changes` into the group `group` (RDS takes at most 20 a call: sent in turns).
 * RDS refuses a default group (default.postgres15): it cannot be changed, only replaced by one of your own.
 */
export async function modifyRdsParameterGroup(
  client: RDSClient,
  group: string,
  changes: RdsParameterChange[],
  signal?: AbortSignal,
): Promise<void> {
  for (let i = 0; i < changes.length; i += 20)
    await client.send(
      new ModifyDBParameterGroupCommand({
        DBParameterGroupName: group,
        Parameters: changes.slice(i, i + 20).map((c) => ({ ParameterName: c.name, ParameterValue: c.value, ApplyMethod: c.applyMethod })),
      }),
      opts(signal),
    );
}
