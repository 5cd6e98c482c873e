// Which pgherd environment an EC2 instance belongs to, as pgherd's own configuration says
// (PGHERD_AWS_ENVIRONMENTS): a VPC, or an account (in a region, or in all), mapped to an environment.
// Never a tag: pgherd's AWS role is shared wide, and anyone with ec2:CreateTags can write one.
import { setting } from '@/lib/settings/settings';
import type { CloudInstance } from './ec2';
import type { AwsEnvironment, AwsEnvironments } from '@/lib/settings/aws-environments-schema';

export type { AwsEnvironment, AwsEnvironments } from '@/lib/settings/aws-environments-schema';

/**
 * PGHERD_AWS_ENVIRONMENTS, or null when it is not set: then no EC2 instance is any environment's. A
 * bad value throws, saying what is wrong; the worker and the console refuse to start with one.
 */
export function awsEnvironments(env: Record<string, string | undefined> = process.env): AwsEnvironments | null {
  return setting('PGHERD_AWS_ENVIRONMENTS', env);
}

/**
 * The entry an instance falls under: its VPC's, else its account's in its region, else its account's in
 * every region; null when the configuration names none of them (it is then no environment's).
 */
export function environmentOfInstance(
  map: AwsEnvironments | null,
  i: Pick<CloudInstance, 'vpcId' | 'account' | 'region'>,
): AwsEnvironment | null {
  if (!map) return null;
  return (
    (i.vpcId ? map.find((e) => e.vpc === i.vpcId) : undefined) ??
    (i.account ? map.find((e) => e.account === i.account && e.region === i.region) : undefined) ??
    (i.account ? map.find((e) => e.account === i.account && !e.region) : undefined) ??
    null
  );
}

/** Where an instance is, in the words of the configuration (for refusals and discovery's reports). */
export const placeOf = (i: Pick<CloudInstance, 'vpcId' | 'account' | 'region'>) =>
  `${i.vpcId || 'no VPC'}, account ${i.account || '?'} in ${i.region}`;
