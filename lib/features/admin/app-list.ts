// The console's pages in groups, as Django's admin index groups its models by app: one declaration that
// the top bar (a menu a group) and the dashboard's index (every group with its links) both draw, each
// link shown only to those who may follow it.
import { can, canSomewhere, type Access } from '@/lib/engine/access';
import { changelistBase } from './changelist-view';
import { isEditable, permissionFor, type Model } from './define-admin';
import { capitalize } from './text';
import { auditAdmin } from './models/audit.admin';
import { dnsRecordsAdmin } from './models/dns-records.admin';
import { drAdmin } from './models/dr.admin';
import { environmentsAdmin } from './models/environments.admin';
import { herdsAdmin } from './models/herds.admin';
import { instancesAdmin } from './models/instances.admin';
import { operationsAdmin } from './models/operations.admin';
import { poolersAdmin } from './models/poolers.admin';
import { autoReplacePoliciesAdmin } from './models/auto-replace-policies.admin';
import { backupPoliciesAdmin } from './models/backup-policies.admin';
import { parameterGroupsAdmin } from './models/parameter-groups.admin';
import { objectSetsAdmin } from './models/object-sets.admin';
import { approvalPoliciesAdmin } from './models/approval-policies.admin';
import { roleBindingsAdmin } from './models/role-bindings.admin';
import { serversAdmin } from './models/servers.admin';
import { sitesAdmin } from './models/sites.admin';

/** A model's changelist, or a page of its own (every user who signs in may open these). */
type Entry = Model | { label: string; href: string };

export interface AppGroupDef {
  name: string;
  label: string;
  entries: Entry[];
}

export const appGroups: readonly AppGroupDef[] = [
  { name: 'fleet', label: 'Fleet', entries: [herdsAdmin, instancesAdmin, serversAdmin, sitesAdmin, environmentsAdmin, drAdmin] },
  {
    name: 'operations',
    label: 'Operations and rules',
    entries: [
      operationsAdmin,
      { label: 'Approvals', href: '/approvals' },
      { label: 'Rules', href: '/rules' },
      { label: 'Risks', href: '/risks' },
      { label: 'DR scorecard', href: '/dr' },
      { label: 'Pending maintenance', href: '/upgrades' },
    ],
  },
  { name: 'dns', label: 'DNS and poolers', entries: [dnsRecordsAdmin, poolersAdmin] },
  { name: 'backups', label: 'Backups', entries: [backupPoliciesAdmin, { label: 'Recoverability', href: '/backups' }] },
  {
    name: 'settings',
    label: 'Settings',
    entries: [parameterGroupsAdmin, objectSetsAdmin, approvalPoliciesAdmin, autoReplacePoliciesAdmin],
  },
  {
    name: 'access',
    label: 'People and access',
    entries: [roleBindingsAdmin, { label: 'API tokens', href: '/account/tokens' }, auditAdmin],
  },
  { name: 'api', label: 'API', entries: [{ label: 'API reference', href: '/api-docs' }] },
];

export interface AppLink {
  label: string;
  href: string;
  /** Where to add one (a model whose objects the user may add somewhere), else null, and what that link says. */
  addHref: string | null;
  addLabel: string;
}

export interface AppGroup {
  name: string;
  label: string;
  links: AppLink[];
}

const isModel = (e: Entry): e is Model => 'table' in e;

/** The groups with the links `access` may follow: a model needs its view role somewhere; a group left empty is left out. */
export function appList(access: Access): AppGroup[] {
  return appGroups
    .map((g) => ({
      name: g.name,
      label: g.label,
      links: g.entries.flatMap((e): AppLink[] => {
        if (!isModel(e)) return [{ label: e.label, href: e.href, addHref: null, addLabel: '' }];
        if (!canSomewhere(access, permissionFor(e, 'view'))) return [];
        const mayAdd =
          isEditable(e) &&
          !e.readOnlyAdd &&
          (e.globalWrites ? can(access, permissionFor(e, 'add'), null) : canSomewhere(access, permissionFor(e, 'add')));
        return [
          {
            label: capitalize(e.labelPlural),
            href: changelistBase(e),
            addHref: mayAdd ? `${changelistBase(e)}/add` : null,
            addLabel: mayAdd ? `Add ${e.label}` : '',
          },
        ];
      }),
    }))
    .filter((g) => g.links.length > 0);
}
