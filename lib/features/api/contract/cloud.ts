// EC2 (and RDS) discovery: whether it can run here, its passes, and asking for one now.
import { z } from 'zod';
import { defineRoute, idParams } from './define';

const when = z.iso.datetime({ offset: true });

const runShape = {
  id: z.number().int(),
  requestedBy: z.string().meta({ description: "Who asked: a user name, or 'schedule' for the worker's own passes." }),
  requestedAt: when,
  startedAt: when.nullable(),
  finishedAt: when.nullable(),
  status: z.enum(['waiting', 'running', 'done', 'failed']).meta({ description: 'Poll until it is done or failed.' }),
  summary: z
    .object({
      found: z.number().int().meta({ description: 'The instances EC2 listed.' }),
      created: z.array(z.string()).meta({ description: 'The servers it made.' }),
      updated: z.number().int(),
      gone: z
        .array(z.string())
        .meta({ description: 'Servers whose instance EC2 lists as terminated or no longer lists, marked this pass.' }),
      skipped: z
        .array(z.object({ instanceId: z.string(), reason: z.string() }))
        .meta({ description: 'Instances it could not make a server of, with the reason.' }),
      problems: z
        .array(z.object({ instanceId: z.string(), problem: z.string() }))
        .optional()
        .meta({ description: 'What it saw and did not obey: an environment tag that disagrees with PGHERD_AWS_ENVIRONMENTS, say.' }),
      rds: z
        .object({
          found: z.number().int().meta({ description: 'The Postgres DB instances RDS listed.' }),
          herds: z.array(z.string()).meta({ description: 'The herds it made (environment/herd), one a source and its read replicas.' }),
          created: z.array(z.string()).meta({ description: 'The DB instances it made servers of.' }),
          updated: z.number().int(),
          gone: z.array(z.string()).meta({ description: 'Servers whose DB instance RDS no longer lists, marked this pass.' }),
          skipped: z.array(z.object({ instanceId: z.string(), reason: z.string() })),
          problems: z.array(z.object({ instanceId: z.string(), problem: z.string() })),
        })
        .optional()
        .meta({ description: 'RDS, when discovery reads it too (PGHERD_AWS_DISCOVERY rds): the same, for DB instances.' }),
    })
    .nullable()
    .meta({
      description: 'What the pass did, once it is done; null until then, when it failed, and for a caller without a global role.',
    }),
  error: z.string().nullable().meta({ description: 'Why it failed (null for a caller without a global role).' }),
};

export const discoveryRunResponse = z.object(runShape).meta({ id: 'DiscoveryRun' });

export const discoveryStatusRoute = defineRoute({
  method: 'get',
  path: '/api/v1/cloud/discovery',
  tag: 'Cloud',
  summary: 'EC2 discovery: status and latest passes',
  description: 'Whether discovery can run here (and why not), and its latest passes.',
  auth: 'read',
  responses: {
    200: {
      description: 'Whether it can run, and its last 10 passes, newest first.',
      schema: z
        .object({
          available: z.boolean(),
          reason: z
            .string()
            .nullable()
            .meta({ description: 'Why it cannot run here (not configured, AWS unavailable); null when it can.' }),
          runs: z.array(discoveryRunResponse),
        })
        .meta({ id: 'DiscoveryStatus' }),
    },
  },
});

export const requestDiscoveryRoute = defineRoute({
  method: 'post',
  path: '/api/v1/cloud/discovery',
  tag: 'Cloud',
  summary: 'Ask for an EC2 discovery pass',
  description:
    'Asks the workers for a pass now (the one already waiting when there is one). A global admin\u2019s act: a pass creates servers in any environment its tags name. It takes no body: what a pass reads is PGHERD_AWS_DISCOVERY.',
  auth: 'operate',
  noBody: true,
  responses: {
    202: {
      description: 'The pass; poll it at Location.',
      schema: z
        .object({
          ...runShape,
          created: z.boolean().meta({ description: 'False when a pass was already waiting (this is that one).' }),
        })
        .meta({ id: 'DiscoveryRequested' }),
      headers: { location: '/api/v1/cloud/discovery/{id}' },
    },
  },
  errors: {
    503: "EC2 discovery or AWS is not configured here (the error says why), or pgherd's database is unavailable (Retry-After says when to try again).",
  },
});

export const getDiscoveryRunRoute = defineRoute({
  method: 'get',
  path: '/api/v1/cloud/discovery/{id}',
  tag: 'Cloud',
  summary: 'Get an EC2 discovery pass',
  description: 'One pass, to poll until its status is done or failed.',
  auth: 'read',
  params: idParams,
  responses: { 200: { description: 'The pass.', schema: discoveryRunResponse } },
  errors: { 404: 'No such discovery pass.' },
});
