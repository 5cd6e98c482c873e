// Everything a herd action needs to know about a herd: its members and its DNS records.
import { prepared, type Db } from '@/db/client';
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
  text: `SELECT h.id, h.name, h.system_identifier, h.automation, e.name AS environment, e.id AS environment_id,
                coalesce((SELECT json_agg(json_build_object('id', d.id, 'name', d.name, 'type', d.type, 'zone', d.zone, 'provider', d.provider,
                    'ttl', d.ttl, 'match', d.match, 'matchRole', d.match_role, 'matchInstanceId', d.match_instance_id) ORDER BY d.id)
                  FROM dns_records d WHERE d.herd_id = h.id), '[]') AS dns,
                coalesce((SELECT json_agg(json_build_object('id', p.id, 'herdId', p.herd_id, 'label', s.hostname || ':' || p.port,
                    'host', coalesce(nullif(s.address, ''), s.hostname), 'port', p.port, 'adminUser', p.admin_user,
                    'configFile', p.config_file, 'databases', p.databases, 'serverEnvironmentId', s.environment_id, 'serverEnvironment', (SELECT name FROM environments WHERE id = s.environment_id),
                    'ssh', json_build_object('host', coalesce(nullif(s.address, ''), s.hostname), 'port', s.ssh_port,
                                             'username', s.ssh_user, 'hostKeyFingerprint', s.ssh_host_key_fingerprint, 'serverId', s.id,
                                             'environment', (SELECT name FROM environments WHERE id = s.environment_id))) ORDER BY p.id)
                  FROM poolers p JOIN servers s ON s.id = p.server_id WHERE p.herd_id = h.id), '[]') AS poolers
         FROM herds h JOIN environments e ON e.id = h.environment_id
         WHERE h.id = ANY($1::int[]) ORDER BY h.id`,
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
