// Everything a herd action needs to know about a herd: its members and its DNS records.
import { prepared, type Db } from '@/db/client';
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';

export interface DnsRecordRef {
  id: number;
  name: string;
  type: 'CNAME' | 'A';
  zone: string;
  provider: string;
  ttl: number;
  match: 'role' | 'instance';
  matchRole: 'primary' | 'replica' | 'unknown' | null;
  matchInstanceId: number | null;
}

/** A PgBouncer in front of the herd: its admin console, and its configuration file over SSH. */
export interface PoolerRef {
  id: number;
  herdId: number;
  /** server:port */
  label: string;
  host: string;
  port: number;
  adminUser: string;
  configFile: string;
  /** The [databases] entries that point at the primary. */
  databases: string[];
  ssh: SshTarget;
  serverEnvironmentId: number;
  /** Its name: the pooler's admin console is reached with this environment's settings (PGHERD_PG_CONFIG). */
  serverEnvironment: string;
}

export interface HerdRef {
  id: number;
  /** environment/herd */
  label: string;
  name: string;
  environment: string;
  environmentId: number;
  /** pg_control_system() of its members, when the inventory knows it. */
  systemIdentifier: string | null;
  /** The automation switch: a rule leaves a herd in maintenance alone. */
  automation: string;
  members: InstanceRef[];
  dns: DnsRecordRef[];
  poolers: PoolerRef[];
}

const HERDS = {
  name: 'pgherd_herd_refs',
  text: sqlFile('lib/fleet/herd-refs.sql'),
};

export async function loadHerdRefs(db: Db, herdIds: number[]): Promise<HerdRef[]> {
  if (!herdIds.length) return [];
  const rows = await prepared<{
    id: number;
    name: string;
    system_identifier: string | null;
    automation: string;
    environment: string;
    environment_id: number;
    dns: DnsRecordRef[];
    poolers: PoolerRef[];
  }>(db, HERDS.name, HERDS.text, [herdIds]);
  const members = await loadInstanceRefs(db, [], { herdIds });
  return rows.map((r) => ({
    id: r.id,
    label: `${r.environment}/${r.name}`,
    name: r.name,
    environment: r.environment,
    environmentId: r.environment_id,
    systemIdentifier: r.system_identifier,
    automation: r.automation,
    members: members.filter((m) => m.herdId === r.id),
    dns: r.dns,
    poolers: r.poolers,
  }));
}
