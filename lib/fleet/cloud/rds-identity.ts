// A server's RDS DB instance is a claim RDS must confirm before pgherd uses it, as an EC2 instance's is
// (identity.ts): the environment pgherd's configuration gives the DB instance (its subnet group's VPC, or
// its account; never a tag) is the server's, and the endpoint RDS gives it is where pgherd connects.
import { and, eq } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { environments, instances, servers, type RdsDetails } from '@/db/schema';
import { rdsClient } from '@/lib/adapters/aws/config';
import { describeRds, type RdsInstance } from '@/lib/adapters/aws/rds';
import { awsEnvironments, environmentOfInstance, placeOf, type AwsEnvironments } from '@/lib/adapters/aws/environments';
import type { ServerFacts } from './identity';

/** Why `live` (RDS's answer for `identifier`) is not this server's DB instance, or null when RDS confirms it is. */
export function rdsIdentityProblem(
  s: ServerFacts & { ports?: number[] },
  identifier: string,
  live: RdsInstance | null,
  map: AwsEnvironments | null = awsEnvironments(),
): string | null {
  if (!live) return `RDS does not know ${identifier} (deleted, or in another account or region)`;
  const owner = environmentOfInstance(map, live);
  if (!owner) return `${identifier} (${placeOf(live)}) is in no environment PGHERD_AWS_ENVIRONMENTS names: pgherd does not act on it`;
  if (owner.environment !== s.environment)
    return `${identifier} is ${owner.environment}'s (${placeOf(live)}), and ${s.hostname} is in ${s.environment}: refused`;
  const at = (s.address || s.hostname).toLowerCase().replace(/\.$/, '');
  if (live.endpoint && live.endpoint.address.toLowerCase().replace(/\.$/, '') !== at)
    return `RDS says ${identifier} answers at ${live.endpoint.address}, and ${s.hostname} is at ${at}: it is not this server's DB instance`;
  // Its one instance is at the endpoint's port: another port would be probed and acted on as if it were this.
  const port = live.endpoint?.port;
  const other = port === undefined ? undefined : s.ports?.find((p) => p !== port);
  if (other !== undefined)
    return `RDS says ${identifier} answers on port ${String(port)}, and the inventory has ${s.hostname}:${String(other)}: it is not this DB instance's endpoint`;
  return null;
}

/**
 * The check a step makes right before it changes anything through RDS: the server as the inventory has
 * it now still names `identifier`, and RDS still confirms it. Null, or why not.
 */
export async function recheckRdsIdentity(db: Queries, serverId: number, region: string, identifier: string): Promise<string | null> {
  const [s] = await db
    .select({ hostname: servers.hostname, address: servers.address, environment: environments.name })
    .from(servers)
    .innerJoin(environments, eq(environments.id, servers.environmentId))
    .where(
      and(
        eq(servers.id, serverId),
        eq(servers.cloudProvider, 'rds'),
        eq(servers.cloudRegion, region),
        eq(servers.cloudInstanceId, identifier),
      ),
    );
  if (!s) return `the inventory no longer says server ${serverId} is RDS's ${identifier} in ${region}`;
  const ports = (await db.select({ port: instances.port }).from(instances).where(eq(instances.serverId, serverId))).map((r) => r.port);
  return rdsIdentityProblem({ ...s, ports }, identifier, await describeRds(rdsClient(region), region, identifier));
}

export function rdsDetails(i: RdsInstance): RdsDetails {
  return {
    engineVersion: i.engineVersion,
    allocatedStorageGiB: i.allocatedStorageGiB,
    storageType: i.storageType,
    multiAz: i.multiAz,
    parameterGroup: i.parameterGroup,
    endpoint: i.endpoint ? `${i.endpoint.address}:${String(i.endpoint.port)}` : '',
    sourceIdentifier: i.sourceIdentifier,
    pendingClass: i.pendingClass,
    account: i.account,
    vpcId: i.vpcId,
  };
}

/** The server columns RDS says: an RDS server's cloud identity (the server is the DB instance). */
export function rdsIdentity(i: RdsInstance, now: Date) {
  return {
    cloudProvider: 'rds',
    cloudRegion: i.region,
    cloudInstanceId: i.identifier,
    cloudInstanceType: i.instanceClass,
    cloudAvailabilityZone: i.availabilityZone,
    cloudArchitecture: null,
    cloudState: i.status,
    cloudPrivateAddress: i.endpoint?.address ?? null,
    cloudTags: i.tags,
    cloudDetails: rdsDetails(i),
    cloudSeenAt: now,
    cloudGoneAt: null,
  };
}
