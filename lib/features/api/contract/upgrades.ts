// Version upgrades: the pending maintenance list (herds behind their major's target release).
import { z } from 'zod';
import { idText, MAX_ID } from '@/lib/adapters/validation/ids';
import { defineRoute } from './define';

export const pendingQuery = z
  .object({
    environment: idText('environment', MAX_ID)
      .optional()
      .meta({ description: "An environment's id; default: every environment you may see." }),
    all: z.enum(['0', '1']).optional().meta({ description: '1: the herds that run their target already too.' }),
  })
  .strict();

export const pendingHerd = z
  .object({
    herdId: z.number().int(),
    herd: z.string(),
    environmentId: z.number().int(),
    environment: z.string(),
    major: z.number().int(),
    runs: z
      .array(z.object({ version: z.string(), members: z.number().int() }))
      .meta({ description: 'Each release its members answer with, and how many.' }),
    target: z.string().nullable().meta({ description: 'The release it should run; null: nothing newer is known for its major.' }),
    targetFrom: z
      .enum(['configured', 'installed'])
      .meta({ description: "PGHERD_MINOR_TARGETS' release for the major, or the newest installed on every member's host." }),
    members: z.number().int(),
    behind: z.number().int().meta({ description: 'Members on an older release than the target.' }),
    means: z.string().meta({ description: 'What the rolling upgrade does, in words.' }),
    blocked: z.string().nullable().meta({ description: 'Why the upgrade would be refused now; null: it can be planned.' }),
  })
  .meta({ id: 'PendingHerd' });

export const pendingMaintenanceRoute = defineRoute({
  method: 'get',
  path: '/api/v1/upgrades/pending',
  tag: 'Operations',
  summary: 'Pending maintenance',
  description:
    "The herds whose members run an older minor release than their major's target, with what the rolling upgrade (action upgrade-minor, planned with POST /api/v1/operations/plan on the herds) does and what would refuse it.",
  auth: 'read',
  query: pendingQuery,
  responses: { 200: { description: 'The herds, by environment and name.', schema: z.object({ items: z.array(pendingHerd) }) } },
});
