// Auto-replace policies: where the system replaces a member that is gone by itself (docs/grow.md), for an
// environment's herds or one herd (in place of its environment's). Off where no policy says so. Only
// admins change them: a policy lets the system launch, seed and retire instances, and fail over.
import { eq, sql } from 'drizzle-orm';
import { autoReplacePolicies, environments } from '@/db/schema';
import { qualified } from '@/lib/fleet/qualified';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';
import { environmentsAdmin } from './environments.admin';
import { herdsAdmin } from './herds.admin';
import { yesNo } from './backup-policies.admin';

const scope = sql<string>`${environments.name} || coalesce('/' || (SELECT h.name FROM herds h WHERE h.id = ${qualified(autoReplacePolicies.herdId)}), '')`;

export const autoReplacePoliciesAdmin = defineAdmin({
  name: 'auto-replace-policies',
  label: 'auto-replace policy',
  labelPlural: 'auto-replace policies',
  table: autoReplacePolicies,
  id: autoReplacePolicies.id,
  joins: [{ table: environments, on: eq(autoReplacePolicies.environmentId, environments.id) }],
  labelSql: scope,
  environmentSql: autoReplacePolicies.environmentId,
  sameEnvironment: ['herdId'],
  permissions: { add: 'admin', change: 'admin', delete: 'admin' },
  fields: {
    scope: {
      label: 'Applies to',
      sql: sql<string>`${environments.name} || coalesce('/' || (SELECT h.name FROM herds h WHERE h.id = ${qualified(autoReplacePolicies.herdId)}), ' (every herd)')`,
      link: 'self',
      sortable: false,
    },
    environment: { label: 'Environment', sql: environments.name },
    enabled: {
      label: 'Replaces',
      sql: sql<string>`CASE WHEN ${qualified(autoReplacePolicies.enabled)} THEN 'yes' ELSE 'no' END`,
      format: 'badge',
    },
    afterSeconds: { label: 'Silent for (s)', sql: autoReplacePolicies.afterSeconds, format: 'number' },
    perHour: { label: 'At most an hour', sql: autoReplacePolicies.perHour, format: 'number' },
    primaries: {
      label: 'Primaries (DR failover first)',
      sql: sql<string>`CASE WHEN ${qualified(autoReplacePolicies.primaries)} THEN 'yes' ELSE 'no' END`,
      format: 'badge',
    },
    lastHour: {
      label: 'Replaced in the last hour',
      sql: sql<number>`(SELECT count(*) FROM auto_replace_decisions d WHERE d.environment_id = ${qualified(autoReplacePolicies.environmentId)}
                         AND d.verdict IN ('replace', 'failover') AND d.decided_at > now() - interval '1 hour')::int`,
      format: 'number',
      sortable: false,
    },
  },
  listDisplay: ['scope', 'enabled', 'afterSeconds', 'perHour', 'primaries', 'lastHour'],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: autoReplacePolicies.environmentId, labelSql: environments.name },
  ],
  searchFields: ['environment'],
  ordering: ['environment'],
  form: tableForm(autoReplacePolicies, {
    environmentId: { label: 'Environment', references: () => environmentsAdmin },
    herdId: {
      label: 'Herd',
      help: 'Empty: every herd of the environment. A herd: its own policy, in place of the environment\u2019s (Replaces: no turns it off there).',
      references: () => herdsAdmin,
      schema: f.optionalRelation(),
    },
    enabled: { label: 'Replaces', help: 'no: a herd policy that keeps the environment\u2019s from replacing its members.', ...yesNo },
    afterSeconds: {
      label: 'Silent for (s)',
      help: 'How long a member must not have answered before its host is looked at: above the longest blip you ride out (30 s to a day).',
      schema: f.int(30, 86400),
    },
    perHour: {
      label: 'At most an hour',
      help: 'Replacements (and failovers) the environment\u2019s policy allows in an hour, across its herds; the environment\u2019s figure counts.',
      schema: f.int(1, 100),
    },
    primaries: {
      label: 'Primaries too',
      help: 'yes: a primary gone is failed over first (DR failover, as the system), then replaced once it is a replica.',
      ...yesNo,
    },
  }),
  uniqueErrors: {
    auto_replace_policies_environment_key: ['environmentId', 'This environment has a policy already: change it, or give a herd its own.'],
    auto_replace_policies_herd_key: ['herdId', 'This herd has a policy of its own already.'],
  },
});
