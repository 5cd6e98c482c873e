// Who holds which role where: a directory group or a user, globally or in one environment. Managed by
// admins (an environment's admins for bindings in it; global bindings need a global admin).
import { sql } from 'drizzle-orm';
import { environments, roleBindings, roleName, bindingSubject } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { roleBindingForm } from './role-bindings.form';

export const roleBindingsAdmin = defineAdmin({
  name: 'role-bindings',
  label: 'role binding',
  labelPlural: 'role bindings',
  table: roleBindings,
  id: roleBindings.id,
  joins: [{ table: environments, on: sql`${roleBindings.environmentId} = ${environments.id}`, type: 'left' }],
  labelSql: sql`${roleBindings.role} || ' for ' || ${roleBindings.subjectType} || ' ' || ${roleBindings.subject} || ' in ' || coalesce(${environments.name}, 'every environment')`,
  environmentSql: roleBindings.environmentId,
  permissions: { view: 'admin', add: 'admin', change: 'admin', delete: 'admin' },
  auditAs: 'access',
  fields: {
    subject: { label: 'Group DN or username', sql: roleBindings.subject, link: 'self' },
    subjectType: { label: 'Bound to', sql: roleBindings.subjectType },
    role: { label: 'Role', sql: roleBindings.role, format: 'badge' },
    environment: { label: 'Environment', sql: sql<string>`coalesce(${environments.name}, '(every environment)')`, sortable: false },
    createdAt: { label: 'Created', sql: roleBindings.createdAt, format: 'datetime' },
  },
  listDisplay: ['subject', 'subjectType', 'role', 'environment', 'createdAt'],
  listFilter: [
    { key: 'role', label: 'Role', kind: 'choice', sql: roleBindings.role, choices: roleName.enumValues },
    { key: 'bound_to', label: 'Bound to', kind: 'choice', sql: roleBindings.subjectType, choices: bindingSubject.enumValues },
    { key: 'environment', label: 'Environment', kind: 'relation', sql: roleBindings.environmentId, labelSql: environments.name },
  ],
  searchFields: ['subject'],
  ordering: ['subject'],
  form: roleBindingForm,
  uniqueErrors: { role_bindings_key: ['subject', 'This binding exists already.'] },
});
