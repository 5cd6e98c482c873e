// Which pgherd environment an EC2 instance belongs to, as pgherd's own configuration says
// (PGHERD_AWS_ENVIRONMENTS): a VPC, or an account (in a region, or in all), mapped to an environment.
// Never a tag: pgherd's AWS role is shared wide, and anyone with ec2:CreateTags can write one.
import { z } from 'zod';
import type { CloudInstance } from './ec2';

const entry = z
  .object({
    environment: z.string().min(1).max(100),
    vpc: z
      .string()
      .regex(/^vpc-[0-9a-f]+$/, 'a VPC id such as vpc-0123abcd')
      .optional(),
    account: z
      .string()
      .regex(/^\d{12}$/, 'a 12-digit AWS account id')
      .optional(),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'a region such as eu-west-1')
      .optional(),
    /** What discovery finds here waits for an admin's approval before pgherd acts on it. */
    approve: z.boolean().default(false),
  })
  .strict()
  .refine((e) => !!e.vpc !== !!e.account, 'either a vpc, or an account (with a region or not)')
  .refine((e) => !(e.vpc && e.region), 'a vpc is in one region already: no region with it');

export const awsEnvironmentsSchema = z
  .array(entry)
  .min(1)
  .superRefine((list, ctx) => {
    const seen = new Map<string, string>();
    for (const e of list) {
      const key = keyOf(e);
      const other = seen.get(key);
      if (other !== undefined && other !== e.environment)
        ctx.addIssue({ code: 'custom', message: `${key} is mapped to both ${other} and ${e.environment}` });
      seen.set(key, e.environment);
    }
  });
export type AwsEnvironments = z.infer<typeof awsEnvironmentsSchema>;
export type AwsEnvironment = AwsEnvironments[number];

const keyOf = (e: { vpc?: string; account?: string; region?: string }) =>
  e.vpc ? `vpc ${e.vpc}` : `account ${e.account ?? ''}${e.region ? ` in ${e.region}` : ''}`;

/** A configuration that cannot be used: the worker and the console refuse to start with it. */
export class AwsEnvironmentsConfigError extends Error {
  constructor(why: string) {
    super(`PGHERD_AWS_ENVIRONMENTS: ${why}`);
    this.name = 'AwsEnvironmentsConfigError';
  }
}

/** PGHERD_AWS_ENVIRONMENTS (JSON), or null when it is not set: then no EC2 instance is any environment's. */
export function awsEnvironments(env: Record<string, string | undefined> = process.env): AwsEnvironments | null {
  const raw = env.PGHERD_AWS_ENVIRONMENTS;
  if (!raw) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new AwsEnvironmentsConfigError(`not JSON: ${(err as Error).message}`);
  }
  const r = awsEnvironmentsSchema.safeParse(parsed);
  if (!r.success)
    throw new AwsEnvironmentsConfigError(r.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; '));
  return r.data;
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
