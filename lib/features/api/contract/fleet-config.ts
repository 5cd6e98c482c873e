// What the console shows of the fleet's configuration and its DR, for scripts (a team wiring pgherd to
// Terraform): DR pairs, backup policies, parameter groups, a herd's settings drift and restore window.
import { z } from 'zod';
import { idText } from '@/lib/adapters/validation/ids';
import { pagingQuery, searchText } from '@/lib/features/api/list';
import { defineRoute, idParams } from './define';

const when = z.string().meta({ description: 'ISO 8601, UTC.' });
const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), total: z.number().int(), page: z.number().int(), pages: z.number().int() });

export const drPairsQuery = z
  .object({
    environment: idText('environment').optional().meta({ description: "An environment's id." }),
    site: searchText(100).optional().meta({ description: "The primary's site." }),
    candidate_site: searchText(100).optional().meta({ description: "The candidate's site." }),
    ...pagingQuery,
  })
  .strict();

export const drPairItem = z
  .object({
    herdId: z.number().int(),
    herd: z.string(),
    environment: z.string(),
    primary: z.string().nullable().meta({ description: 'host:port of its primary.' }),
    primaryState: z.string().nullable(),
    primarySite: z.string().nullable(),
    candidate: z
      .string()
      .nullable()
      .meta({ description: 'The running replica a DR failover would promote now (the most WAL); null: none.' }),
    candidateSite: z.string().nullable(),
    lagBytes: z.number().nullable(),
  })
  .meta({ id: 'DrPair' });

export const drPairsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/dr/pairs',
  tag: 'Backups',
  summary: 'DR pairs',
  description:
    "The DR changelist: each herd with its primary and the replica a DR failover would promote now (as last observed; the failover measures again when it runs), their sites and the candidate's lag. The herds of the environments where you are a viewer.",
  auth: 'read',
  query: drPairsQuery,
  responses: { 200: { description: 'A page of herds.', schema: page(drPairItem) } },
});

export const policiesQuery = z
  .object({ environment: idText('environment').optional().meta({ description: "An environment's id." }), ...pagingQuery })
  .strict();

export const policyItem = z
  .object({
    id: z.number().int(),
    environment: z.string(),
    herdId: z.number().int().nullable().meta({ description: "Null: the environment's policy; else this herd's, in its place." }),
    scope: z.string(),
    tool: z.string(),
    repoKind: z.enum(['posix', 's3']),
    repository: z.string().meta({ description: 'host:path, or s3://bucket/path.' }),
    retentionFull: z.number().int(),
    compressType: z.string(),
    encrypt: z.boolean(),
    fromStandby: z.boolean(),
    archiveTimeoutSeconds: z.number().int(),
    herdsConfigured: z.number().int(),
  })
  .meta({ id: 'BackupPolicy' });

export const policiesRoute = defineRoute({
  method: 'get',
  path: '/api/v1/backup-policies',
  tag: 'Backups',
  summary: 'Backup policies',
  description:
    "Each environment's backup policy and the herds' own, with how many herds are configured by each; never a secret (docs/backups.md).",
  auth: 'read',
  query: policiesQuery,
  responses: { 200: { description: 'A page of policies.', schema: page(policyItem) } },
});

export const groupsQuery = z.object({ ...pagingQuery }).strict();

export const groupItem = z
  .object({
    id: z.number().int(),
    name: z.string(),
    description: z.string(),
    version: z.number().int(),
    settings: z.string().meta({ description: 'One `name = value` a line, as saved.' }),
    assigned: z.string().meta({ description: 'How many environments, herds and instances it is assigned to.' }),
    updatedAt: when,
  })
  .meta({ id: 'ParameterGroup' });

export const groupsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/parameter-groups',
  tag: 'Inventory',
  summary: 'Parameter groups',
  description:
    'Every parameter group with its settings and version (a catalogue: whoever sees an environment sees every group; docs/parameter-groups.md).',
  auth: 'read',
  query: groupsQuery,
  responses: { 200: { description: 'A page of groups.', schema: page(groupItem) } },
});

export const driftEntry = z.object({
  name: z.string(),
  kind: z.string().meta({ description: 'What differs: a value, a setting not running, a restart pending...' }),
  wanted: z.string().nullable(),
  running: z.string().nullable(),
  changedAt: when.nullable(),
  operationId: z.number().int().nullable(),
});

export const herdSettingsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/herds/{id}/settings',
  tag: 'Inventory',
  summary: "A herd's settings drift",
  description:
    "Each member's groups and the settings where what it runs differs from what they say (since when, and by which operation, if pgherd's), and the settings whose values differ between members: the herd page's Settings.",
  auth: 'read',
  params: idParams,
  responses: {
    200: {
      description: 'Its members.',
      schema: z.object({
        members: z.array(
          z.object({
            id: z.number().int(),
            label: z.string(),
            role: z.string(),
            groups: z.string(),
            readAt: when.nullable(),
            drift: z.array(driftEntry),
          }),
        ),
        differing: z.array(z.object({ name: z.string(), values: z.array(z.object({ label: z.string(), value: z.string() })) })),
        rdsGroups: z
          .union([
            z.object({
              region: z.string(),
              groups: z.array(
                z.object({
                  name: z.string(),
                  members: z.array(
                    z.object({
                      label: z.string(),
                      identifier: z.string(),
                      applyStatus: z.string().meta({ description: "RDS's ParameterApplyStatus: in-sync, pending-reboot, applying" }),
                    }),
                  ),
                  drift: z.array(
                    z.object({
                      name: z.string(),
                      wanted: z.string(),
                      from: z.string(),
                      inGroup: z.string().nullable().meta({ description: "Null: not set in the group (RDS's default applies)" }),
                    }),
                  ),
                  outside: z.array(z.object({ name: z.string(), value: z.string() })),
                }),
              ),
            }),
            z.object({ error: z.string() }),
          ])
          .nullable()
          .meta({
            description:
              "An RDS herd's DB parameter groups as RDS has them now (read at most every 30 s): what each holds against pgherd's groups, what was set in it outside them, and each member's ParameterApplyStatus; null for a herd with no RDS member (docs/rds.md).",
          }),
      }),
    },
  },
  errors: { 404: 'No such herd.' },
});

export const restoreWindowRoute = defineRoute({
  method: 'get',
  path: '/api/v1/herds/{id}/restore-window',
  tag: 'Backups',
  summary: "A herd's restore window",
  description:
    "Where a point-in-time restore of the herd can land: from the end of its oldest backup still in the repository to the last WAL archived, and pgherd's operations on the herd within it (a restore can stop just before each: the restore action's before-operation target).",
  auth: 'read',
  params: idParams,
  responses: {
    200: {
      description: 'Its window; nulls where it has no backup or archive yet.',
      schema: z.object({
        earliest: when.nullable(),
        latest: when.nullable().meta({ description: 'When the last WAL segment was archived.' }),
        backups: z.number().int(),
        operations: z.array(z.object({ id: z.number().int(), action: z.string(), status: z.string(), startedAt: when })),
      }),
    },
  },
  errors: { 404: 'No such herd.' },
});
