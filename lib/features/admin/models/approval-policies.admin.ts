// Approval policies (docs/approvals.md): in an environment, which actions wait for another person's
// approval, how many, from whom, for how long. Global admins alone add, change and delete them (an
// environment's own admin could otherwise lift the rule that binds them); whoever has a role in the
// environment reads them.
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { approvalPolicies, environments } from '@/db/schema';
import { actions as allActions } from '@/lib/actions/registry';
import { defineAdmin } from '../define-admin';
import { f, tableForm } from '../form-fields';
import { environmentsAdmin } from './environments.admin';
import { yesNo } from './backup-policies.admin';

/** Action names, typed as a list ("restart, switchover"): each one pgherd knows, each once. */
const actionList = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? [
          ...new Set(
            v
              .split(/[\s,]+/)
              .map((x) => x.trim())
              .filter(Boolean),
          ),
        ]
      : v,
  z
    .array(z.string().max(60))
    .max(100, 'At most 100 actions.')
    .superRefine((names, ctx) => {
      const known = new Set(allActions.map((a) => a.name));
      const unknown = names.filter((n) => !known.has(n));
      if (unknown.length)
        ctx.addIssue({
          code: 'custom',
          message: `Not an action: ${unknown.slice(0, 5).join(', ')}. Actions are named as the API names them (restart, switchover, dr-failover…).`,
        });
    }),
);

const group = z.preprocess(
  (v) => (v === '' || v === undefined ? null : v),
  z
    .string()
    .trim()
    .max(500, 'At most 500 characters.')
    .regex(/^[^\u0000-\u001f\u007f]+$/, 'A directory group: its name or DN, as it comes back at sign-in.')
    .nullable(),
);

export const approvalPoliciesAdmin = defineAdmin({
  name: 'approval-policies',
  label: 'approval policy',
  labelPlural: 'approval policies',
  table: approvalPolicies,
  id: approvalPolicies.id,
  joins: [{ table: environments, on: eq(approvalPolicies.environmentId, environments.id) }],
  labelSql: sql`${environments.name} || ' #' || ${approvalPolicies.id}`,
  environmentSql: approvalPolicies.environmentId,
  permissions: { add: 'admin', change: 'admin', delete: 'admin' },
  globalWrites: true,
  fields: {
    environment: { label: 'Environment', sql: environments.name, link: 'self' },
    covers: {
      label: 'Actions',
      sql: sql<string>`concat_ws(', ', CASE WHEN ${approvalPolicies.typedConfirmation} THEN 'every action with a typed confirmation' END,
        nullif(array_to_string(${approvalPolicies.actions}, ', '), ''))`,
      sortable: false,
    },
    approvalsRequired: { label: 'Approvals', sql: approvalPolicies.approvalsRequired, format: 'number' },
    approvers: {
      label: 'Approvers',
      sql: sql<string>`coalesce('members of ' || ${approvalPolicies.approverGroup}, ${approvalPolicies.approverRole}::text || ' or higher')`,
      sortable: false,
    },
    ttl: { label: 'Lasts (s)', sql: approvalPolicies.ttlSeconds, format: 'number' },
    requesterMayApprove: {
      label: 'Requester may approve',
      sql: sql<string>`CASE WHEN ${approvalPolicies.requesterMayApprove} THEN 'yes' ELSE 'no' END`,
      format: 'badge',
    },
    breakGlassForbidden: {
      label: 'No break glass for',
      sql: sql<string>`array_to_string(${approvalPolicies.breakGlassForbidden}, ', ')`,
      sortable: false,
    },
  },
  listDisplay: ['environment', 'covers', 'approvalsRequired', 'approvers', 'ttl', 'requesterMayApprove', 'breakGlassForbidden'],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: approvalPolicies.environmentId, labelSql: environments.name },
  ],
  searchFields: ['environment'],
  ordering: ['environment'],
  form: tableForm(approvalPolicies, {
    environmentId: { label: 'Environment', references: () => environmentsAdmin },
    actions: {
      label: 'Actions',
      help: 'The actions that wait for approval here, by name, separated by commas (restart, switchover, dr-failover).',
      schema: actionList,
      input: { type: 'text', placeholder: 'restart, switchover' },
    },
    typedConfirmation: {
      label: 'Every action with a typed confirmation',
      help: 'Also every action whose confirmation page asks for something typed (the environment’s name, the number of targets).',
      ...yesNo,
    },
    approvalsRequired: { label: 'Approvals', help: 'How many people other than the requester must approve.', schema: f.int(1, 5) },
    approverRole: {
      label: 'Approvers’ role',
      help: 'An approver holds at least this role in every environment of the plan’s targets.',
      schema: z.enum(['operator', 'admin'], { message: 'Choose operator or admin.' }),
      input: { type: 'select', choices: ['operator', 'admin'] },
    },
    approverGroup: {
      label: 'Approvers’ group',
      help: 'Instead of the role: members of this directory group (its DN as sign-in reads it), who can see every environment of the plan.',
      schema: group,
    },
    ttlSeconds: {
      label: 'Lasts (seconds)',
      help: 'Not approved within this time, the request expires. 3600: one hour.',
      schema: f.int(60, 604800),
    },
    requesterMayApprove: {
      label: 'Requester may approve',
      help: 'Never by default: a person’s second token or second session is the same person.',
      ...yesNo,
    },
    breakGlassForbidden: {
      label: 'No break glass for',
      help: 'Actions an admin may not run here without approval even on the worst day, by name (dr-failover).',
      schema: actionList,
      input: { type: 'text', placeholder: 'dr-failover' },
    },
  }),
  validate: async (tx, id): Promise<Record<string, string> | null> => {
    const r = await tx.execute<{ empty: boolean }>(
      sql`SELECT cardinality(actions) = 0 AND NOT typed_confirmation AS empty FROM approval_policies WHERE id = ${id}`,
    );
    return r.rows[0]?.empty ? { actions: 'Name the actions it covers, or cover every action with a typed confirmation.' } : null;
  },
});
