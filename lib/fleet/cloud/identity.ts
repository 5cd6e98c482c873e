// A server's EC2 instance id is a claim EC2 must confirm before pgherd uses it: the instance's private
// address is the server's address, and the environment pgherd's configuration gives the instance
// (its VPC or account, never a tag) is the server's. pgherd's AWS role reaches every environment's
// instances, so an id alone would let whoever can edit one server's row aim a stop at another's.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { eq } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { environments, servers } from '@/db/schema';
import { ec2Client } from '@/lib/adapters/aws/config';
import { describeInstancesById, type CloudInstance } from '@/lib/adapters/aws/ec2';
import { awsEnvironments, environmentOfInstance, placeOf, type AwsEnvironments } from '@/lib/adapters/aws/environments';

export interface ServerFacts {
  hostname: string;
  /** Where pgherd connects ('' means the host name). */
  address: string;
  /** Its environment's name. */
  environment: string;
}

/** The addresses pgherd reaches the server at: its address, else (or when it is a name) what the name resolves to. */
async function addressesOf(s: ServerFacts): Promise<string[] | string> {
  const at = s.address || s.hostname;
  if (isIP(at)) return [at];
  try {
    return (await lookup(at, { all: true })).map((a) => a.address);
  } catch (err) {
    return `${at} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}), so its EC2 instance cannot be confirmed`;
  }
}

/**
 * Why `live` (EC2's answer for `instanceId`) is not this server's instance, or null when EC2 confirms
 * it is. `map` is PGHERD_AWS_ENVIRONMENTS: unset, no instance belongs to any environment.
 */
export async function identityProblem(
  s: ServerFacts,
  instanceId: string,
  live: CloudInstance | null,
  map: AwsEnvironments | null = awsEnvironments(),
): Promise<string | null> {
  if (!live) return `EC2 does not know ${instanceId} (terminated, or in another account or region)`;
  const owner = environmentOfInstance(map, live);
  if (!owner) return `${instanceId} (${placeOf(live)}) is in no environment PGHERD_AWS_ENVIRONMENTS names: pgherd does not act on it`;
  if (owner.environment !== s.environment)
    return `${instanceId} is ${owner.environment}'s (${placeOf(live)}), and ${s.hostname} is in ${s.environment}: refused`;
  const addresses = await addressesOf(s);
  if (typeof addresses === 'string') return addresses;
  if (!live.privateAddress || !addresses.includes(live.privateAddress))
    return `${instanceId}'s private address is ${live.privateAddress ?? 'none'}, and ${s.hostname} is at ${addresses.join(', ')}: it is not this server's instance`;
  return null;
}

/**
 * The check a step makes right before it stops (or starts) anything: the server as the inventory has
 * it now still names `instanceId`, and EC2 still confirms it. Null, or why not.
 */
export async function recheckIdentity(db: Queries, serverId: number, region: string, instanceId: string): Promise<string | null> {
  const [s] = await db
    .select({
      hostname: servers.hostname,
      address: servers.address,
      environment: environments.name,
      instanceId: servers.cloudInstanceId,
      region: servers.cloudRegion,
    })
    .from(servers)
    .innerJoin(environments, eq(environments.id, servers.environmentId))
    .where(eq(servers.id, serverId));
  if (!s) return 'its server was deleted from the inventory';
  if (s.instanceId !== instanceId || s.region !== region)
    return `the server's cloud identity changed since the plan (${s.instanceId ?? 'none'} in ${s.region ?? '?'} now, ${instanceId} in ${region} planned)`;
  const [live] = await describeInstancesById(ec2Client(region), region, [instanceId]);
  return identityProblem(s, instanceId, live ?? null);
}
