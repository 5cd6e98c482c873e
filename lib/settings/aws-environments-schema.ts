// The shape of PGHERD_AWS_ENVIRONMENTS: a VPC, or an account (in a region, or in all), mapped to a pgherd
// environment. Apart from environments.ts so that the settings module checks the value at start
// without importing what reads it (which imports the settings).
import { z } from 'zod';

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
    /**
     * The TLS certificate and key a new instance launched here holds (its image makes them, naming the
     * instance's address): what a replica pgherd lays out on one is given, unless the action says others.
     */
    launchTls: z
      .object({
        certFile: z.string().regex(/^\/[A-Za-z0-9._@+/-]+$/, 'an absolute path'),
        keyFile: z.string().regex(/^\/[A-Za-z0-9._@+/-]+$/, 'an absolute path'),
      })
      .strict()
      .optional(),
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
