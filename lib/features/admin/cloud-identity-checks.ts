// A server's cloud identity as the console sets it: only what EC2 confirms is saved. The instance's
// private address must be the server's address and its environment (from PGHERD_AWS_ENVIRONMENTS,
// never its tags) the server's; an id EC2 discovery bound stays until discovery sees that instance end.
import { eq } from 'drizzle-orm';
import type { Queries } from '@/db/client';
import { environments, servers } from '@/db/schema';
import { awsUnavailable, ec2Client, rdsClient } from '@/lib/adapters/aws/config';
import { describeRds } from '@/lib/adapters/aws/rds';
import { rdsIdentityProblem } from '@/lib/fleet/cloud/rds-identity';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import { describeInstancesById } from '@/lib/adapters/aws/ec2';
import { identityProblem } from '@/lib/fleet/cloud/identity';
import { valueText } from './text';

/** The server's cloud fields: admin-only, on a change and on a new server alike. */
export const CLOUD_FIELDS = ['cloudProvider', 'cloudRegion', 'cloudInstanceId', 'cloudInstanceType'];

/** What, changed, makes EC2 be asked again: the id, or where and in which environment the server is. */
const RECHECKED = ['cloudProvider', 'cloudRegion', 'cloudInstanceId', 'hostname', 'address', 'environmentId'];

const ended = (state: string | null) => state === 'terminated' || state === 'shutting-down' || state === 'gone';

/** Field errors, or null when the server's cloud identity (as saved) is confirmed or absent. */
export async function cloudIdentityRules(
  tx: Queries,
  id: number,
  before: Record<string, unknown> | null,
): Promise<Record<string, string> | null> {
  const [s] = await tx
    .select({
      hostname: servers.hostname,
      address: servers.address,
      environment: environments.name,
      environmentId: servers.environmentId,
      provider: servers.cloudProvider,
      region: servers.cloudRegion,
      instanceId: servers.cloudInstanceId,
      boundTags: servers.cloudTags,
      boundState: servers.cloudState,
    })
    .from(servers)
    .innerJoin(environments, eq(environments.id, servers.environmentId))
    .where(eq(servers.id, id));
  if (!s) return null;
  const saved: Record<string, unknown> = { ...s, cloudProvider: s.provider, cloudRegion: s.region, cloudInstanceId: s.instanceId };
  if (before && !RECHECKED.some((k) => k in before && valueText(before[k]) !== valueText(saved[k]))) return null;
  const was = before ? valueText(before.cloudInstanceId) : '';
  // Discovery's tags are only ever written by discovery: they say that it bound the id the row had.
  if (was && was !== (s.instanceId ?? '') && s.boundTags !== null && !ended(s.boundState))
    return {
      cloudInstanceId: `EC2 discovery bound ${was} to this server (EC2 says ${s.boundState ?? 'unknown'}): a hand-entered id does not replace it. Discovery moves the server when that instance ends.`,
    };
  if (!s.instanceId && !s.provider) return null;
  if (s.provider === 'rds') return rdsIdentityRules(s);
  if (s.provider !== 'aws')
    return { cloudProvider: 'pgherd acts on aws (EC2) and rds (an RDS DB instance); or leave it empty, with no instance id.' };
  if (!s.region) return { cloudRegion: 'The region of the instance (eu-west-1, say).' };
  if (!s.instanceId) return { cloudInstanceId: 'The EC2 instance id (i-0123456789abcdef0).' };
  const unavailable = await awsUnavailable();
  if (unavailable) return { cloudInstanceId: `EC2 cannot confirm the instance: ${unavailable}` };
  let live;
  try {
    [live] = await describeInstancesById(ec2Client(s.region), s.region, [s.instanceId]);
  } catch (err) {
    // An id EC2 refuses (malformed, unknown) is the form's error, in AWS's words.
    return { cloudInstanceId: `EC2 cannot confirm ${s.instanceId} in ${s.region}: ${awsErrorText(err)}` };
  }
  const problem = await identityProblem(s, s.instanceId, live ?? null);
  return problem ? { cloudInstanceId: problem } : null;
}

/** An RDS server (the DB instance): RDS must confirm its identifier, environment and endpoint. */
async function rdsIdentityRules(s: {
  hostname: string;
  address: string;
  environment: string;
  region: string | null;
  instanceId: string | null;
}): Promise<Record<string, string> | null> {
  if (!s.region) return { cloudRegion: 'The region of the DB instance (eu-west-1, say).' };
  if (!s.instanceId) return { cloudInstanceId: 'The RDS DB instance identifier.' };
  const unavailable = await awsUnavailable();
  if (unavailable) return { cloudInstanceId: `RDS cannot confirm the DB instance: ${unavailable}` };
  let live;
  try {
    live = await describeRds(rdsClient(s.region), s.region, s.instanceId);
  } catch (err) {
    return { cloudInstanceId: `RDS cannot confirm ${s.instanceId} in ${s.region}: ${awsErrorText(err)}` };
  }
  const problem = rdsIdentityProblem(s, s.instanceId, live);
  return problem ? { cloudInstanceId: problem } : null;
}
