// Every model the console shows, in the order of the sidebar. Adding a model is one file in
// lib/features/admin/models (its list, filters, form and rules) and a line here.
import { isEditable, type EditableModel, type Model } from './define-admin';
import { environmentsAdmin } from './models/environments.admin';
import { herdsAdmin } from './models/herds.admin';
import { serversAdmin } from './models/servers.admin';
import { instancesAdmin } from './models/instances.admin';
import { dnsRecordsAdmin } from './models/dns-records.admin';
import { operationsAdmin } from './models/operations.admin';
import { drAdmin } from './models/dr.admin';
import { poolersAdmin } from './models/poolers.admin';
import { roleBindingsAdmin } from './models/role-bindings.admin';
import { auditAdmin } from './models/audit.admin';
import { sitesAdmin } from './models/sites.admin';
import { autoReplacePoliciesAdmin } from './models/auto-replace-policies.admin';
import { backupPoliciesAdmin } from './models/backup-policies.admin';
import { parameterGroupsAdmin } from './models/parameter-groups.admin';
import { objectSetsAdmin } from './models/object-sets.admin';
import { approvalPoliciesAdmin } from './models/approval-policies.admin';

export const adminModels: readonly Model[] = [
  environmentsAdmin,
  sitesAdmin,
  herdsAdmin,
  drAdmin,
  serversAdmin,
  instancesAdmin,
  dnsRecordsAdmin,
  poolersAdmin,
  backupPoliciesAdmin,
  autoReplacePoliciesAdmin,
  parameterGroupsAdmin,
  objectSetsAdmin,
  approvalPoliciesAdmin,
  operationsAdmin,
  roleBindingsAdmin,
  auditAdmin,
];

const byName = new Map(adminModels.map((m) => [m.name, m]));
if (byName.size !== adminModels.length) throw new Error('two models share a name');

export const getAdmin = (name: string): Model | undefined => byName.get(name);

/** The model whose rows are this table's (the first listed: the DR pairs list shows herds too). */
export const adminForTable = (table: unknown): Model | undefined => adminModels.find((m) => m.table === table);

/** A model whose objects the console adds, changes and deletes (it has a form). */
export function getEditable(name: string): EditableModel | undefined {
  const m = byName.get(name);
  return m && isEditable(m) ? m : undefined;
}
