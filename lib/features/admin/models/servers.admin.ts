import { eq, sql } from 'drizzle-orm';
import { qualified } from '@/lib/fleet/qualified';
import { environments, servers } from '@/db/schema';
import { defineAdmin } from '../define-admin';
import { cloudIdentityRules, CLOUD_FIELDS } from '../cloud-identity-checks';
import { serverAddressRules, serverDependents } from '../environment-checks';
import { f, tableForm } from '../form-fields';
import { environmentsAdmin } from './environments.admin';

const APPROVAL = ['pending', 'approved'] as const;

export const serversAdmin = defineAdmin({
  name: 'servers',
  label: 'server',
  labelPlural: 'servers',
  table: servers,
  id: servers.id,
  joins: [{ table: environments, on: eq(servers.environmentId, environments.id) }],
  labelSql: servers.hostname,
  environmentSql: servers.environmentId,
  validate: async (tx, id, _values, before) =>
    (await serverDependents(tx, id)) ?? (await serverAddressRules(tx, id)) ?? (await cloudIdentityRules(tx, id, before)),
  // Where pgherd connects to, and as whom: moving it elsewhere is an admin's act (the host name is
  // where it connects when the address is empty). The cloud identity is what EC2 power and resize act on.
  adminFields: ['hostname', 'address', 'sshPort', 'sshUser', ...CLOUD_FIELDS, 'approval'],
  adminOnAdd: ['hostname', 'address', 'sshPort', 'sshUser', ...CLOUD_FIELDS, 'approval'],
  fields: {
    hostname: { label: 'Host name', sql: servers.hostname, link: 'self' },
    environmentId: { label: 'Environment id', sql: servers.environmentId, sortable: false },
    environment: { label: 'Environment', sql: environments.name, link: { model: 'environments', idField: 'environmentId' } },
    address: { label: 'Address', sql: servers.address },
    site: { label: 'Site', sql: servers.site },
    instances: {
      label: 'Instances',
      sql: sql<number>`(SELECT count(*) FROM instances i WHERE i.server_id = ${qualified(servers.id)})::int`,
      format: 'number',
      sortable: false,
    },
    ssh: { label: 'SSH', sql: sql<string>`${servers.sshUser} || '@:' || ${servers.sshPort}`, sortable: false },
    cloudInstanceType: { label: 'Instance type', sql: servers.cloudInstanceType },
    cloudAvailabilityZone: { label: 'Zone', sql: servers.cloudAvailabilityZone },
    cloudState: { label: 'EC2 state', sql: servers.cloudState, format: 'badge' },
    approval: { label: 'Approval', sql: servers.approval, format: 'badge' },
    lastSeenAt: { label: 'Agent last seen', sql: servers.lastSeenAt, format: 'datetime' },
  },
  listDisplay: [
    'hostname',
    'environment',
    'address',
    'site',
    'instances',
    'ssh',
    'cloudInstanceType',
    'cloudAvailabilityZone',
    'cloudState',
    'approval',
    'lastSeenAt',
  ],
  listFilter: [
    { key: 'environment', label: 'Environment', kind: 'relation', sql: servers.environmentId, labelSql: environments.name },
    { key: 'site', label: 'Site', kind: 'values', sql: servers.site },
    { key: 'cloud', label: 'Cloud provider', kind: 'values', sql: sql`coalesce(${servers.cloudProvider}, ${sql.raw("'none'")})` },
    { key: 'instanceType', label: 'Instance type', kind: 'values', sql: sql`coalesce(${servers.cloudInstanceType}, '')` },
    { key: 'zone', label: 'Availability zone', kind: 'values', sql: sql`coalesce(${servers.cloudAvailabilityZone}, '')` },
    { key: 'ec2State', label: 'EC2 state', kind: 'values', sql: sql`coalesce(${servers.cloudState}, '')` },
  ],
  searchFields: ['hostname', 'address', 'site'],
  ordering: ['hostname'],
  form: tableForm(servers, {
    hostname: { label: 'Host name', help: 'The server identity; unique across the fleet.', schema: f.hostname() },
    environmentId: { label: 'Environment', references: () => environmentsAdmin },
    address: { label: 'Address', help: 'Where pgherd connects (IP or name); empty means the host name.', schema: f.address() },
    site: { label: 'Site', help: 'Data center or availability zone.', schema: f.text(100) },
    sshPort: { label: 'SSH port', schema: f.int(1, 65535) },
    sshUser: { label: 'SSH user', help: 'The OS user that owns the Postgres data directories.', schema: f.osUser() },
    cloudProvider: { label: 'Cloud provider', help: 'aws, or empty for bare metal.', schema: f.optionalText(20) },
    cloudRegion: { label: 'Cloud region', schema: f.optionalText(40) },
    cloudInstanceId: {
      label: 'Cloud instance id',
      input: { type: 'text', placeholder: 'i-0123456789abcdef0' },
      schema: f.optionalText(40),
    },
    cloudInstanceType: { label: 'Cloud instance type', input: { type: 'text', placeholder: 'r6g.large' }, schema: f.optionalText(40) },
    approval: {
      label: 'Approval',
      help: 'pending: found by EC2 discovery where an approval is asked for; nothing runs on it until an admin sets approved.',
      input: { type: 'select', choices: APPROVAL, optional: true },
      schema: f.optionalChoice(APPROVAL),
    },
  }),
  listPanels: [{ kind: 'ec2-discovery' }],
  panels: [
    {
      kind: 'cloud-identity',
      load: async (db, id) => {
        const [s] = await db.select().from(servers).where(eq(servers.id, id));
        if (!s) return null;
        return {
          provider: s.cloudProvider,
          region: s.cloudRegion,
          availabilityZone: s.cloudAvailabilityZone,
          instanceId: s.cloudInstanceId,
          instanceType: s.cloudInstanceType,
          architecture: s.cloudArchitecture,
          state: s.cloudState,
          privateAddress: s.cloudPrivateAddress,
          tags: s.cloudTags,
          herdTag: s.cloudHerdTag,
          seenAt: s.cloudSeenAt,
          goneAt: s.cloudGoneAt,
        };
      },
    },
    { kind: 'ssh-public-key' },
    {
      kind: 'agent-token',
      role: 'admin',
      load: async (db, id) => {
        const [s] = await db.select({ hash: servers.agentTokenHash, lastSeen: servers.lastSeenAt }).from(servers).where(eq(servers.id, id));
        return { hasToken: !!s?.hash, lastSeen: s?.lastSeen ?? null };
      },
    },
  ],
  uniqueErrors: { servers_hostname_key: ['hostname', 'A server with this host name already exists.'] },
});
