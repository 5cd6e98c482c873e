// The shape of PGHERD_AWS_DISCOVERY: which regions EC2 discovery reads, the tags its instances carry,
// and which tags name a server's host, environment, herd and site. Plain zod, so that the settings
// module checks the value at start.
import { z } from 'zod';

const tagKey = z.string().min(1).max(128);
export const discoveryConfigSchema = z
  .object({
    regions: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'a region such as eu-west-1')).min(1),
    /** Instances carrying all of these (`*`: the tag with any value). */
    tags: z.record(tagKey, z.string().max(256)).refine((t) => Object.keys(t).length > 0, 'at least one tag to filter on'),
    /** Also every Postgres DB instance RDS runs in the regions (a source and its read replicas: a herd run by RDS). */
    rds: z.boolean().default(false),
    /** Which tags say the server's host name, environment and site. */
    map: z
      .object({
        hostname: tagKey.default('Name'),
        environment: tagKey.default('pgherd:environment'),
        herd: tagKey.default('pgherd:herd'),
        site: tagKey.default('pgherd:site'),
      })
      .strict()
      .default({ hostname: 'Name', environment: 'pgherd:environment', herd: 'pgherd:herd', site: 'pgherd:site' }),
  })
  .strict();
export type DiscoveryConfig = z.infer<typeof discoveryConfigSchema>;
