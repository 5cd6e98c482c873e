import { eq, sql } from 'drizzle-orm';
import { qualified } from '@/lib/admin/qualified';
import { environments, servers } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { serverDependents } from '../environment-rules';
import { serverForm } from './servers.form';

export const serversAdmin = defineAdmin({
  name: 'servers',
  label: 'server',
  labelPlural: 'servers',
  table: servers,
  id: servers.id,
  joins: [{ table: environments, on: eq(servers.environmentId, environments.id) }],
  labelSql: servers.hostname,
  environmentSql: servers.environmentId,
  validate: (tx, id) => serverDependents(tx, id),
  // Where pgherd connects to, and as whom: moving it elsewhere is an admin's act (the host name is
  // where it connects when the address is empty).
  adminFields: ['hostname', 'address', 'sshPort', 'sshUser'],
  fields: {
    hostname: { label: 'Host name', sql: servers.hostname, link: 'self' },
    environmentId: { label: 'Environment id', sql: servers.environmentId, sortable: false },
    environment: { label: 'Environment', sql: environments.name, link: { model: 'environments', idField: 'environmentId' } },
    address: { label: 'Address', sql: servers.address },
    site: { label: 'Site', sql: servers.site },
    instances: { label: 'Instances', sql: sql<number>`(SELECT count(*) FROM instances i WHERE i.server_id = ${qualified(servers.id)})::int`, format: 'number', sortable: false },
    ssh: { label: 'SSH', sql: sql<string>`${servers.sshUser} || '@:' || ${servers.sshPort}`, sortable: false },
    cloudInstanceType: { label: 'Instance type', sql: servers.cloudInstanceType },
    lastSeenAt: { label: 'Agent last seen', sql: servers.lastSeenAt, format: 'datetime' },
  },
  listDisplay: ['hostname', 'environment', 'address', 'site', 'instances', 'ssh', 'cloudInstanceType', 'lastSeenAt'],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: servers.environmentId, labelSql: environments.name },
    { key: 'site', label: 'Site', kind: 'values', sql: servers.site },
    { key: 'cloud', label: 'Cloud provider', kind: 'values', sql: sql`coalesce(${servers.cloudProvider}, ${sql.raw("'none'")})` },
  ],
  searchFields: ['hostname', 'address', 'site'],
  ordering: ['hostname'],
  form: serverForm,
  uniqueErrors: { servers_hostname_key: ['hostname', 'A server with this host name already exists.'] },
});
