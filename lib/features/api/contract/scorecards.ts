// The scorecards the console's Recoverability and DR pages draw, for scripts: each herd's standing as a
// restore would find it, and its last DR drill.
import { z } from 'zod';
import { idText, MAX_ID } from '@/lib/adapters/validation/ids';
import { RECOVERABILITY } from '@/lib/features/backups/scorecard';
import { defineRoute, idParams } from './define';

export const scorecardQuery = z
  .object({
    environment: idText('environment', MAX_ID)
      .optional()
      .meta({ description: "An environment's id; default: every environment you may see." }),
  })
  .strict();

const when = z.string().meta({ description: 'ISO 8601, UTC.' });

export const recoverabilityRow = z
  .object({
    herdId: z.number().int(),
    herd: z.string(),
    environment: z.string(),
    verdict: z.enum(RECOVERABILITY).meta({ description: 'protected, or what needs a look, worst first.' }),
    last: z
      .object({
        operationId: z.number().int().nullable(),
        finishedAt: when,
        ok: z.boolean(),
        cause: z.string(),
        rtoMs: z.number().nullable(),
        rpoMs: z.number().nullable(),
      })
      .nullable()
      .meta({ description: 'Its last restore drill; null: never drilled.' }),
    lastFull: when.nullable().meta({ description: 'When its last full backup ended.' }),
  })
  .meta({ id: 'RecoverabilityRow' });

export const drRow = z
  .object({
    herdId: z.number().int(),
    herd: z.string(),
    environment: z.string(),
    sites: z.array(z.string()),
    verdict: z.enum(['ok', 'never', 'failed', 'stale', 'no-dr-member']),
    note: z.string().meta({ description: 'Why, in words.' }),
    last: z
      .object({
        operationId: z.number().int(),
        status: z.string(),
        finishedAt: when,
        candidate: z.string().nullable(),
        candidateSite: z.string().nullable(),
        firstWriteMs: z.number().nullable(),
        longestGapMs: z.number().nullable(),
        acknowledged: z.number().nullable(),
        lost: z.number().nullable(),
      })
      .nullable(),
  })
  .meta({ id: 'DrScorecardRow' });

export const recoverabilityRoute = defineRoute({
  method: 'get',
  path: '/api/v1/backups/scorecard',
  tag: 'Backups',
  summary: 'The recoverability scorecard',
  description:
    "Each herd (a restored copy aside) with its standing as a restore would find it: protected (its last restore drill passed within PGHERD_RESTORE_DRILL_MAX_AGE_DAYS and its archive is healthy), or not configured, archive failing, drill failed, never drilled, drill too old; with the last drill's RTO and RPO. The herds of the environments where you are a viewer.",
  auth: 'read',
  query: scorecardQuery,
  responses: { 200: { description: 'The herds, by environment and name.', schema: z.object({ items: z.array(recoverabilityRow) }) } },
});

export const drScorecardRoute = defineRoute({
  method: 'get',
  path: '/api/v1/dr/scorecard',
  tag: 'Backups',
  summary: 'The DR scorecard',
  description:
    'Each herd with its last DR drill (its outcome and figures) and what needs a look: never drilled, failed or lost a commit, older than PGHERD_DR_DRILL_MAX_AGE_DAYS, or no member outside the primary\u2019s site. The herds of the environments where you are a viewer.',
  auth: 'read',
  query: scorecardQuery,
  responses: { 200: { description: 'The herds, by environment and name.', schema: z.object({ items: z.array(drRow) }) } },
});

export const herdBackupsQuery = z
  .object({
    all: z.enum(['0', '1']).optional().meta({ description: '1: those expired from the repository too.' }),
  })
  .strict();

export const backupRow = z
  .object({
    id: z.number().int(),
    label: z.string().meta({ description: "pgBackRest's label." }),
    type: z.enum(['full', 'diff', 'incr']),
    prior: z.string().nullable().meta({ description: 'The backup it depends on.' }),
    startedAt: when,
    stoppedAt: when,
    sizeBytes: z.number(),
    repoSizeBytes: z.number().meta({ description: 'What it holds in the repository.' }),
    lsnStart: z.string(),
    lsnStop: z.string(),
    operationId: z.number().int().nullable().meta({ description: 'The operation that took it; null: taken outside pgherd.' }),
    goneAt: when.nullable().meta({ description: 'When it left the repository (retention); null: there.' }),
  })
  .meta({ id: 'Backup' });

export const herdBackupsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/herds/{id}/backups',
  tag: 'Backups',
  summary: "A herd's backups",
  description: "The backups in the herd's repository as pgherd last read them, newest first: what a point-in-time restore can start from.",
  auth: 'read',
  params: idParams,
  query: herdBackupsQuery,
  responses: { 200: { description: 'Its backups.', schema: z.object({ items: z.array(backupRow) }) } },
  errors: { 404: 'No such herd.' },
});
