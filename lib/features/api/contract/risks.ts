// The fleet's risks for scripts: each finding with its measure, trend and fix, and its acknowledgement.
import { z } from 'zod';
import { idText, MAX_ID } from '@/lib/adapters/validation/ids';
import { RISK_KINDS } from '@/lib/features/risks/find';
import { ackBody } from '@/lib/features/risks/acknowledge';
import { bigIdParams, defineRoute } from './define';

const when = z.string().meta({ description: 'ISO 8601, UTC.' });

export const risksQuery = z
  .object({
    environment: idText('environment', MAX_ID)
      .optional()
      .meta({ description: "An environment's id; default: every environment you may see." }),
    herd: idText('herd', MAX_ID).optional().meta({ description: "A herd's id." }),
    severity: z.enum(['warning', 'critical']).optional(),
    kind: z.enum(RISK_KINDS).optional(),
    counted: z.enum(['0', '1']).optional().meta({ description: '1: only those that count; 0: only acknowledged ones.' }),
  })
  .strict();

export const riskRow = z
  .object({
    id: z.number().int(),
    environment: z.string(),
    herdId: z.number().int().nullable(),
    herd: z.string().nullable(),
    instanceId: z.number().int().nullable(),
    instance: z.string().nullable().meta({ description: 'host:port of the member it was found on; null: the herd as a whole.' }),
    kind: z.enum(RISK_KINDS),
    subject: z.string().meta({ description: 'What on it: a database, a slot, a session (pid@start), a release.' }),
    severity: z.enum(['warning', 'critical']),
    measure: z.number(),
    unit: z.string(),
    detail: z.string(),
    facts: z.record(z.string(), z.unknown()),
    since: when.meta({ description: 'When it was first found.' }),
    seenAt: when.meta({ description: 'When it was last found.' }),
    trend: z.object({
      direction: z.enum(['worse', 'better', 'steady', 'new']),
      perDay: z.number().nullable().meta({ description: "The change a day, in the finding's unit." }),
    }),
    fix: z.object({
      action: z.string().nullable().meta({ description: 'The action that fixes it; null: what `how` says.' }),
      label: z.string(),
      how: z.string(),
      href: z.string().nullable().meta({ description: "The console's confirmation page for it." }),
    }),
    counted: z.boolean().meta({ description: 'false while an acknowledgement holds.' }),
    acknowledged: z
      .object({ by: z.string(), reason: z.string(), until: when, measure: z.number(), step: z.number().nullable() })
      .nullable(),
  })
  .meta({ id: 'Risk' });

export const risksRoute = defineRoute({
  method: 'get',
  path: '/api/v1/risks',
  tag: 'Risks',
  summary: "The fleet's risks",
  description:
    'Every risk found now (wraparound, slots, long transactions, certificates, a herd\u2019s shape, versions: docs/risks.md), critical first, with its measure, trend and fix; in the environments where you are a viewer. At most 1,000.',
  auth: 'read',
  query: risksQuery,
  responses: { 200: { description: 'The risks.', schema: z.object({ items: z.array(riskRow) }) } },
});

export const ackRoute = defineRoute({
  method: 'post',
  path: '/api/v1/risks/{id}/acknowledge',
  tag: 'Risks',
  summary: 'Acknowledge a risk',
  description:
    'An operator of its environment: it stops counting (the dashboard, the metric) until `hours` pass, it gets worse by `step`, or a warning turns critical. Audited with the reason.',
  auth: 'operate',
  params: bigIdParams,
  body: ackBody,
  responses: { 200: { description: 'Acknowledged.', schema: z.object({ id: z.number().int(), acknowledged: z.literal(true) }) } },
  errors: { 404: 'No such risk (or it cleared).' },
});

export const unackRoute = defineRoute({
  method: 'delete',
  path: '/api/v1/risks/{id}/acknowledge',
  tag: 'Risks',
  summary: 'Take an acknowledgement back',
  description: 'It counts again at once. Audited.',
  auth: 'operate',
  params: bigIdParams,
  responses: { 204: { description: 'Taken back.' } },
  errors: { 404: 'No such risk (or it cleared).', 409: 'It is not acknowledged.' },
});

export const scopedMetricsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/metrics',
  tag: 'Risks',
  summary: "The fleet's gauges, as you may see them",
  description:
    "The Prometheus text format of every gauge labelled by environment (pgherd_risks among them: docs/metrics.md), with only the environments where you are a viewer: a team's Prometheus scrapes its own environments with its own token. The whole fleet's /metrics (its own token, PGHERD_METRICS_TOKEN) has the rest.",
  auth: 'read',
  responses: {
    200: {
      description: 'Prometheus text (version 0.0.4).',
      schema: z.string().meta({ description: 'Prometheus exposition text.' }),
      contentType: 'text/plain',
    },
  },
  errors: {},
});
