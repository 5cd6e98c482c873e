// Lag history (lib/fleet/lag-history.ts) as the charts and automation read it.
import { z } from 'zod';
import { instanceState, operationStatus } from '@/db/schema';
import { bigIdParams, defineRoute, idParams } from './define';

export const lagQuery = z
  .object({
    range: z
      .enum(['hour', 'day', 'week'])
      .optional()
      .meta({ description: 'The last hour (every sample), day (5-minute buckets) or week (30-minute buckets); default hour.' }),
  })
  .strict();

const ms = z.number().int().meta({ description: 'Milliseconds since the epoch.' });

export const lagHistoryResponse = z
  .object({
    range: z.enum(['hour', 'day', 'week']),
    from: ms,
    to: ms,
    series: z.array(
      z.object({
        instanceId: z.number().int(),
        label: z.string(),
        points: z.array(
          z.object({
            t: ms,
            bytes: z
              .number()
              .nullable()
              .meta({ description: 'The worst replay lag in bytes in the bucket; null for a primary, or when not known.' }),
            seconds: z.number().nullable(),
            state: z.enum(instanceState.enumValues),
          }),
        ),
      }),
    ),
    operations: z
      .array(
        z.object({
          id: z.number().int(),
          action: z.string(),
          status: z.enum(operationStatus.enumValues),
          requestedBy: z.string(),
          from: ms,
          to: ms.nullable().meta({ description: 'When it ended; null while it runs.' }),
        }),
      )
      .meta({ description: 'The operations on the herd that ran during the range.' }),
  })
  .meta({ id: 'LagHistory' });

export const herdLagRoute = defineRoute({
  method: 'get',
  path: '/api/v1/herds/{id}/lag',
  tag: 'Inventory',
  summary: "A herd's lag history",
  description:
    "Each member's replay lag (bytes and seconds) and state as sampled (every PGHERD_LAG_SAMPLE_MS from what the refresher and the agents last observed), and the operations on the herd in that time.",
  auth: 'read',
  params: idParams,
  query: lagQuery,
  responses: { 200: { description: 'The samples.', schema: lagHistoryResponse } },
  errors: { 404: 'No such herd.' },
});

export const instanceLagRoute = defineRoute({
  method: 'get',
  path: '/api/v1/instances/{id}/lag',
  tag: 'Inventory',
  summary: "An instance's lag history",
  description: "The instance's replay lag and state as sampled, and the operations on its herd in that time.",
  auth: 'read',
  params: bigIdParams,
  query: lagQuery,
  responses: { 200: { description: 'The samples.', schema: lagHistoryResponse } },
  errors: { 404: 'No such instance.' },
});
