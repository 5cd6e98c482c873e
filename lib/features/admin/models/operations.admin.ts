import { sql, type SQL } from 'drizzle-orm';
import { qualified } from '@/lib/fleet/qualified';
import { operations, operationStatus } from '@/db/schema';
import { defineAdmin, type FilterDef } from '../define-admin';

const targetCount = sql<number>`(SELECT count(*) FROM operation_targets t WHERE t.operation_id = ${qualified(operations.id)})::int`;

/**
 * Its targets' environments (only those in `envIds` when given: a reader is not told the others'
 * names). The ids are written as literals: the facets group by this expression in GROUPING SETS, where
 * Postgres matches expressions by their text, and a parameter is another $n at each place it is used.
 */
const targetEnvironments = (pick: SQL, envIds?: number[]) =>
  sql<string>`(SELECT ${pick} FROM environments e WHERE e.id IN (SELECT h.environment_id FROM operation_targets t JOIN herds h ON h.id = t.herd_id
      WHERE t.operation_id = ${qualified(operations.id)} UNION ALL SELECT unnest(${qualified(operations.environmentIds)}))${
        envIds ? sql.raw(` AND e.id IN (${envIds.map((e) => String(Math.trunc(e))).join(', ') || 'NULL'})`) : sql``
      })`;
const environmentsOf = (envIds?: number[]) => targetEnvironments(sql`string_agg(DISTINCT e.name, ', ')`, envIds);
const filters = (envIds?: number[]): FilterDef[] => [
  { key: 'status', label: 'Status', kind: 'choice', sql: operations.status, choices: operationStatus.enumValues },
  { key: 'action', label: 'Action', kind: 'values', sql: operations.action },
  { key: 'user', label: 'User', kind: 'values', sql: operations.requestedByName },
  { key: 'environment', label: 'Environment', kind: 'values', sql: targetEnvironments(sql`min(e.name)`, envIds) },
];

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
  // One awaiting approval has no targets yet: its plan's environments say.
  scopeSql: (envIds) =>
    sql`(EXISTS (SELECT 1 FROM operation_targets t JOIN herds h ON h.id = t.herd_id WHERE t.operation_id = ${qualified(operations.id)} AND h.environment_id IN (${sql.join(
      envIds.map((e) => sql`${e}`),
      sql`, `,
    )})) OR ${qualified(operations.environmentIds)} && ${sql.param(envIds)}::int[])`,
  // A mixed operation seen from one of its environments names only the environments its reader sees.
  scoped: (envIds) => ({
    fields: { environments: { label: 'Environments', sql: environmentsOf(envIds), sortable: false } },
    listFilter: filters(envIds),
  }),
  fields: {
    id: { label: '#', sql: operations.id, link: 'self', format: 'number' },
    action: { label: 'Action', sql: operations.action },
    status: { label: 'Status', sql: operations.status, format: 'badge' },
    approval: {
      label: 'Approval',
      sql: sql<string>`CASE WHEN ${qualified(operations.breakGlassReason)} IS NOT NULL THEN 'break glass'
        WHEN ${qualified(operations.approvalsRequired)} IS NOT NULL THEN 'two people' ELSE '' END`,
      format: 'badge',
      sortable: false,
    },
    user: { label: 'Requested by', sql: operations.requestedByName },
    targets: { label: 'Targets', sql: targetCount, format: 'number', sortable: false },
    environments: { label: 'Environments', sql: environmentsOf(), sortable: false },
    createdAt: { label: 'Requested', sql: operations.createdAt, format: 'datetime' },
    finishedAt: { label: 'Finished', sql: operations.finishedAt, format: 'datetime' },
  },
  listDisplay: ['id', 'action', 'status', 'approval', 'user', 'targets', 'environments', 'createdAt', 'finishedAt'],
  listFilter: filters(),
  searchFields: ['action', 'user'],
  ordering: ['-id'],
});
