// POST /api/agent/v1/report: what an agent on a database host says runs there.
import { z } from 'zod';
import { MAX_REPORT_BYTES, reportSchema } from '@/lib/agent/report';
import { defineRoute } from './define';

export const agentReportRoute = defineRoute({
  method: 'post',
  path: '/api/agent/v1/report',
  tag: 'Agents',
  summary: "Report a server's instances (the agent)",
  description: `The agent's token names the server: a report speaks only for its own host. A report is refused whole (4xx, nothing written) when it is larger than ${MAX_REPORT_BYTES} bytes, is not JSON, does not fit the schema, or names another host.`,
  auth: 'agent',
  body: reportSchema,
  responses: {
    200: {
      description: 'Written.',
      schema: z
        .object({
          server: z.string(),
          created: z.number().int(),
          updated: z.number().int(),
          stopped: z.number().int(),
          herdsCreated: z.number().int(),
          held: z
            .number()
            .int()
            .optional()
            .meta({ description: "Instances held as conflicts (their system identifier is a herd's in another environment)." }),
          dataDirectories: z.array(z.string()).meta({
            description:
              'The data directories of the instances pgherd has on record on this server: the agent looks for their lock files too.',
          }),
        })
        .meta({ id: 'ReportResult' }),
    },
  },
  errors: { 422: 'The report names what is not on its own server (a Patroni address on another host); nothing was written.' },
});
