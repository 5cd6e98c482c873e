// Every model the console shows. Adding a model is one *.admin.ts declaration plus a line here.
import type { AdminDef } from './define-admin';
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

export const adminModels: AdminDef[] = [
  environmentsAdmin as unknown as AdminDef,
  herdsAdmin as unknown as AdminDef,
  drAdmin as unknown as AdminDef,
  serversAdmin as unknown as AdminDef,
  instancesAdmin as unknown as AdminDef,
  dnsRecordsAdmin as unknown as AdminDef,
  poolersAdmin as unknown as AdminDef,
  operationsAdmin as unknown as AdminDef,
  roleBindingsAdmin as unknown as AdminDef,
  auditAdmin as unknown as AdminDef,
];

export function getAdmin(name: string): AdminDef | undefined {
  return adminModels.find((m) => m.name === name);
}

export function adminForTable(table: unknown): AdminDef | undefined {
  return adminModels.find((m) => m.table === table);
}
