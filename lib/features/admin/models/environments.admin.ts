import { sql } from 'drizzle-orm';
import { qualified } from '@/lib/fleet/qualified';
import { environments } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';
import { parameterGroupsAdmin } from './parameter-groups.admin';
import { objectSetsAdmin } from './object-sets.admin';
import { riskThresholdsText } from '@/lib/fleet/risks/thresholds';

export const environmentsAdmin = defineAdmin({
  name: 'environments',
  label: 'environment',
  labelPlural: 'environments',
  table: environments,
  id: environments.id,
  labelSql: environments.name,
  environmentSql: environments.id,
  // A new environment is a new scope: only global admins make one (nobody else holds a role in it yet).
  permissions: { add: 'admin', change: 'admin', delete: 'admin' },
  fields: {
    name: { label: 'Name', sql: environments.name, link: 'self' },
    description: { label: 'Description', sql: environments.description, sortable: false },
    herds: {
      label: 'Herds',
      sql: sql<number>`(SELECT count(*) FROM herds h WHERE h.environment_id = ${qualified(environments.id)})::int`,
      format: 'number',
      sortable: false,
    },
    servers: {
      label: 'Servers',
      sql: sql<number>`(SELECT count(*) FROM servers s WHERE s.environment_id = ${qualified(environments.id)})::int`,
      format: 'number',
      sortable: false,
    },
    maxRunning: { label: 'Running targets at most', sql: environments.maxRunning, format: 'number' },
    updatedAt: { label: 'Updated', sql: environments.updatedAt, format: 'datetime' },
  },
  listDisplay: ['name', 'description', 'herds', 'servers', 'maxRunning', 'updatedAt'],
  listFilter: [],
  searchFields: ['name', 'description'],
  ordering: ['name'],
  form: tableForm(environments, {
    name: { label: 'Name', help: 'Unique, for example prod, staging, dev. Typed to confirm dangerous actions here.', schema: f.name(63) },
    description: { label: 'Description', help: 'What runs here and who owns it.', input: { type: 'textarea' } },
    maxRunning: {
      label: 'Running targets at most',
      help: 'How many operation targets may run at once here, over every operation and worker. Empty: no cap.',
      schema: f.optionalInt(1, 100_000),
    },
    parameterGroupId: {
      label: 'Parameter group',
      help: 'The settings every instance here should run, unless its herd or itself has a group (docs/parameter-groups.md).',
      references: () => parameterGroupsAdmin,
      schema: f.optionalRelation(),
    },
    objectSetId: {
      label: 'Object set',
      help: 'The roles, databases, extensions and access rules every herd here should have, unless the herd has a set (docs/fleet-objects.md).',
      references: () => objectSetsAdmin,
      schema: f.optionalRelation(),
    },
    riskThresholds: {
      label: 'Risk thresholds',
      help: 'JSON: the thresholds this environment sets over the defaults, and the kinds it ignores, e.g. {"xidAgeWarning": 400000000, "ignore": ["checksums_off"]} (docs/risks.md). Empty: the defaults.',
      input: { type: 'textarea' },
      schema: riskThresholdsText,
    },
  }),
  uniqueErrors: { environments_name_key: ['name', 'An environment with this name already exists.'] },
});
