// Hand-made inventory for the unit tests of actions and plans: members and herds as the inventory
// would give them, with no database and no lab.
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';

/** Member `id` of the production herd "orders": db-<id>.example.com:5432, site dc-west for 3, else dc-east. */
export function member(id: number, role: InstanceRef['role'], over: Partial<InstanceRef> = {}): InstanceRef {
  const hostname = `db-${id}.example.com`;
  return {
    id,
    label: `${hostname}:5432`,
    herdId: 1,
    herd: 'orders',
    environment: 'production',
    environmentId: 1,
    serverId: id,
    serverEnvironmentId: 1,
    serverEnvironment: 'production',
    serverApproval: null,
    hostname,
    address: `10.0.0.${id}`,
    site: id === 3 ? 'dc-west' : 'dc-east',
    host: `10.0.0.${id}`,
    port: 5432,
    dataDirectory: '/var/lib/postgresql/15/main',
    pgVersion: 15,
    binDir: '',
    serverVersionNum: 150018,
    controlDriver: 'pg_ctl',
    role,
    observedRole: role,
    state: 'running',
    cloud: null,
    rds: null,
    upstreamId: role === 'replica' ? 1 : null,
    lsn: 1000,
    lagBytes: 0,
    timeline: 1,
    herdSystemIdentifier: '7300000000000000001',
    herdAutomation: 'enabled',
    patroniUrl: '',
    patroniScope: '',
    ssh: { host: `10.0.0.${id}`, port: 22, username: 'postgres', hostKeyFingerprint: `SHA256:key${id}` },
    ...over,
  };
}

/** The herd "orders" with these members and a CNAME that follows its primary; no PgBouncer unless given. */
export function herd(members: InstanceRef[], over: Partial<HerdRef> = {}): HerdRef {
  return {
    id: 1,
    label: 'production/orders',
    name: 'orders',
    environment: 'production',
    environmentId: 1,
    systemIdentifier: '7300000000000000001',
    automation: 'enabled',
    members,
    dns: [
      {
        id: 1,
        name: 'orders.db.example.com',
        type: 'CNAME',
        zone: 'db.example.com',
        provider: 'rfc2136',
        ttl: 30,
        match: 'role',
        matchRole: 'primary',
        matchInstanceId: null,
      },
    ],
    poolers: [],
    ...over,
  };
}
