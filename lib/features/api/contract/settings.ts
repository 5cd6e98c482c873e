// An instance's settings as pgherd read them (lib/fleet/settings): at a time, and what changed between two.
import { z } from 'zod';
import { bigIdParams, defineRoute } from './define';

const time = z.iso.datetime({ offset: true });

export const settingsQuery = z
  .object({
    at: time.optional().meta({ description: 'The settings in force at this time (ISO 8601 with its offset); default now.' }),
    from: time.optional().meta({ description: 'With `to`: also every change after this time...' }),
    to: time.optional().meta({ description: '...up to this time, oldest first (at most 500).' }),
  })
  .strict()
  .refine((q) => !q.from === !q.to, { message: 'give both from and to, or neither', path: ['from'] });

const reading = z.object({
  value: z.string().meta({ description: "As pg_settings shows it, in the setting's own unit (shared_buffers in 8kB pages)." }),
  source: z.string().meta({ description: "pg_settings' source: default, configuration file, command line, override..." }),
  file: z.string().nullable().meta({ description: 'The file and line it comes from, when Postgres says.' }),
  pendingRestart: z.boolean(),
});

export const instanceSettingsResponse = z
  .object({
    instanceId: z.number().int(),
    at: z.string().meta({ description: 'The time asked for.' }),
    snapshot: z
      .object({
        effectiveAt: z.string().meta({ description: 'When these settings took effect (the configuration load that made them).' }),
        readAt: z.string(),
        serverVersionNum: z.number().int(),
        settings: z.record(z.string(), reading),
      })
      .nullable()
      .meta({ description: 'Null: its settings had not been read by then.' }),
    changes: z
      .array(
        z.object({
          at: z.string(),
          changes: z.record(z.string(), z.object({ from: z.string().nullable(), to: z.string().nullable() })),
          operationId: z.number().int().nullable().meta({ description: 'The operation that made it; null: made outside pgherd.' }),
        }),
      )
      .optional(),
  })
  .meta({ id: 'InstanceSettings' });

export const instanceSettingsRoute = defineRoute({
  method: 'get',
  path: '/api/v1/instances/{id}/settings',
  tag: 'Inventory',
  summary: "An instance's settings, at a time and between two",
  description:
    'What the instance ran at `at` as pgherd read it (pg_settings), and with `from` and `to` each change in between: what changed before an incident, and which operation made it.',
  auth: 'read',
  params: bigIdParams,
  query: settingsQuery,
  responses: { 200: { description: 'Its settings.', schema: instanceSettingsResponse } },
  errors: { 404: 'No such instance.' },
});
