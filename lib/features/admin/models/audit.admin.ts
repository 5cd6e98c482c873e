// The audit log as a changelist: who did what, when, from where, to which object. Read-only here and
// everywhere (a trigger refuses UPDATE and DELETE on the table itself).
import { sql } from 'drizzle-orm';
import { auditEntries, environments } from '@/db/schema';
import { defineAdmin } from '../define-admin';

export const auditAdmin = defineAdmin({
  name: 'audit',
  label: 'audit entry',
  labelPlural: 'audit entries',
  table: auditEntries,
  id: auditEntries.id,
  joins: [{ table: environments, on: sql`${auditEntries.environmentId} = ${environments.id}`, type: 'left', displayOnly: true }],
  labelSql: sql`${auditEntries.action} || ' #' || ${auditEntries.id}`,
  // Entries about one environment are seen by its viewers; the rest (sign-ins, tokens) by global viewers.
  environmentSql: auditEntries.environmentId,
  fields: {
    at: { label: 'Date/time', sql: auditEntries.at, format: 'datetime' },
    user: { label: 'User', sql: auditEntries.username },
    address: { label: 'Address', sql: auditEntries.remoteAddr, sortable: false },
    action: { label: 'Action', sql: auditEntries.action, sortable: false },
    objectType: { label: 'Object type', sql: auditEntries.objectType, sortable: false },
    objectId: { label: 'Object id', sql: auditEntries.objectId, sortable: false },
    object: { label: 'Object', sql: auditEntries.objectLabel, sortable: false },
    environment: { label: 'Environment', sql: environments.name, sortable: false },
    changes: { label: 'Changes', sql: sql<string>`left(${auditEntries.changes}::text, 400)`, sortable: false },
  },
  listDisplay: ['at', 'user', 'address', 'action', 'objectType', 'objectId', 'object', 'environment', 'changes'],
  listFilter: [
    { key: 'user', label: 'User', kind: 'values', sql: auditEntries.username },
    { key: 'action', label: 'Action', kind: 'values', sql: auditEntries.action },
    { key: 'object_type', label: 'Object type', kind: 'values', sql: auditEntries.objectType },
    {
      key: 'environment',
      label: 'Environment',
      kind: 'relation',
      sql: auditEntries.environmentId,
      labelSql: sql`(SELECT e.name FROM environments e WHERE e.id = ${auditEntries.environmentId})`,
    },
    { key: 'date', label: 'Date', kind: 'values', sql: sql`to_char(${auditEntries.at} AT TIME ZONE 'UTC', 'YYYY-MM-DD')` },
  ],
  searchFields: ['user', 'action', 'object', 'address'],
  ordering: ['-at'],
});
