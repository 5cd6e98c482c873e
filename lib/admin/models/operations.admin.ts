import { sql } from 'drizzle-orm';
import { qualified } from '@/lib/admin/qualified';
import { operations, operationStatus } from '@/db/schema';
import { defineAdmin } from '../define-admin';

const targetCount = sql<number>`(SELECT count(*) FROM operation_targets t WHERE t.operation_id = ${qualified(operations.id)})::int`;
const environmentsOf = sql<string>`(SELECT string_agg(DISTINCT e.name, ', ') FROM operation_targets t JOIN herds h ON h.id = t.herd_id JOIN environments e ON e.id = h.environment_id WHERE t.operation_id = ${qualified(operations.id)})`;

/** Operations are records: listed and filtered here, shown on /operations/<id>, never edited. */
export const operationsAdmin = defineAdmin({
  name: 'operations',
  label: 'operation',
  labelPlural: 'operations',
  table: operations,
  id: operations.id,
  labelSql: sql`${operations.action} || ' #' || ${operations.id}`,
  objectHref: '/operations',
  // Seen by whoever may see one of its targets' environments.
  scopeSql: (envIds) =>
    sql`EXISTS (SELECT 1 FROM operation_targets t JOIN herds h ON h.id = t.herd_id WHERE t.operation_id = ${qualified(operations.id)} AND h.environment_id IN (${sql.join(
      envIds.map((e) => sql`${e}`),
      sql`, `,
    )}))`,
  fields: {
    id: { label: '#', sql: operations.id, link: 'self', format: 'number' },
    action: { label: 'Action', sql: operations.action },
    status: { label: 'Status', sql: operations.status, format: 'badge' },
    user: { label: 'Requested by', sql: operations.requestedByName },
    targets: { label: 'Targets', sql: targetCount, format: 'number', sortable: false },
    environments: { label: 'Environments', sql: environmentsOf, sortable: false },
    createdAt: { label: 'Requested', sql: operations.createdAt, format: 'datetime' },
    finishedAt: { label: 'Finished', sql: operations.finishedAt, format: 'datetime' },
  },
  listDisplay: ['id', 'action', 'status', 'user', 'targets', 'environments', 'createdAt', 'finishedAt'],
  listFilter: [
    { key: 'status', label: 'Status', kind: 'choice', sql: operations.status, choices: operationStatus.enumValues },
    { key: 'action', label: 'Action', kind: 'values', sql: operations.action },
    { key: 'user', label: 'User', kind: 'values', sql: operations.requestedByName },
    {
      key: 'environment',
      label: 'Environment',
      kind: 'values',
      sql: sql`(SELECT min(e.name) FROM operation_targets t JOIN herds h ON h.id = t.herd_id JOIN environments e ON e.id = h.environment_id WHERE t.operation_id = ${qualified(operations.id)})`,
    },
  ],
  searchFields: ['action', 'user'],
  ordering: ['-id'],
});
