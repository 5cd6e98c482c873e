// Who holds which role where: a directory group or a user, globally or in one environment. Managed by
// admins (an environment's admins for bindings in it; global bindings need a global admin).
import { sql } from 'drizzle-orm';
import { environments, roleBindings, roleName, bindingSubject } from '@/db/schema';
import { AccessDenied, can } from '@/lib/engine/access';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';
import { environmentsAdmin } from './environments.admin';

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
  form: tableForm(
    roleBindings,
    {
      role: {
        label: 'Role',
        help: 'viewer: look at everything in scope. operator: start, stop, restart, reload, rebuild, re-point; add and change inventory. admin: promote, switchover, DR failover, deletes, role bindings.',
      },
      // Groups first: they are how most people are given a role.
      subjectType: {
        label: 'Bound to',
        help: 'A directory group (every member) or one user.',
        input: { type: 'select', choices: ['group', 'user'] },
      },
      subject: { label: 'Group DN or username', help: 'Compared without regard to case.', schema: f.name(500) },
      environmentId: { label: 'Environment', help: 'Leave empty for every environment.', references: () => environmentsAdmin },
    },
    (v, ctx) => {
      // A group is named by its DN, as the directory returns it for the user's groups.
      const subject = typeof v.subject === 'string' ? v.subject : '';
      if (v.subjectType === 'group' && !/^[^=,]+=[^,]+(,[^=,]+=[^,]+)*$/.test(subject.replace(/\\,/g, ''))) {
        ctx.addIssue({
          code: 'custom',
          path: ['subject'],
          message: 'Name a group by its DN, for example cn=dba-prod,ou=groups,dc=example,dc=com.',
        });
      }
      if (v.subjectType === 'user' && /[\s,=]/.test(subject)) {
        ctx.addIssue({
          code: 'custom',
          path: ['subject'],
          message: 'Name a user by the username they sign in with (no spaces, commas or =).',
        });
      }
    },
  ),
  uniqueErrors: { role_bindings_key: ['subject', 'This binding exists already.'] },
  // Where an approval policy holds, the bindings choose the approvers: an environment's own admin who
  // could bind a second account of theirs would approve their own plans. A global admin's alone there.
  afterSave: async (tx, _id, values, before, actor) => {
    const envs = [values.environmentId, before?.environmentId].filter((e): e is number => typeof e === 'number');
    if (!envs.length || can(actor.access, 'admin', null)) return;
    const r = await tx.execute<{ name: string }>(sql`
      SELECT DISTINCT e.name FROM approval_policies p JOIN environments e ON e.id = p.environment_id
      WHERE p.environment_id = ANY(${sql.param(envs)}::int[]) ORDER BY e.name`);
    if (r.rows.length)
      throw new AccessDenied(
        `Binding roles in ${r.rows.map((x) => x.name).join(', ')}, where an approval policy holds, needs the admin role globally (the bindings choose who may approve)`,
        { id: actor.id, username: actor.username, remoteAddr: actor.remoteAddr },
      );
  },
});
