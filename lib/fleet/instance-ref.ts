// Everything an action needs to know about one instance, read from the inventory in one query.
import { sqlFile } from '@/lib/adapters/sql/sql-file';
import { prepared, type Db } from '@/db/client';
import type { SshTarget } from '@/lib/adapters/ssh/ssh-client';

export interface InstanceRef {
  id: number;
  label: string;
  herdId: number;
  herd: string;
  environment: string;
  environmentId: number;
  serverId: number;
  /** The server's environment (one with the herd's, unless the inventory was edited behind pgherd's back). */
  serverEnvironmentId: number;
  /** Its name: the credentials pgherd connects to the address with are this environment's (PGHERD_PG_CONFIG). */
  serverEnvironment: string;
  /** 'pending' while the server, found by EC2 discovery, waits for an admin's approval (nothing runs on it). */
  serverApproval: string | null;
  /** The server's name (what a CNAME points at) and address (what an A record holds; may be empty). */
  hostname: string;
  address: string;
  site: string;
  /** Where pgherd connects: the address, else the host name. */
  host: string;
  port: number;
  dataDirectory: string;
  pgVersion: number;
  /** The build it runs from (its bin directory); '' when the environment's template for its major says. */
  binDir: string;
  /** server_version_num as it answered last (150018: 15.18); null: never observed. */
  serverVersionNum: number | null;
  controlDriver: string;
  role: 'primary' | 'replica' | 'unknown';
  /** What it said of itself last (observations only; an admin's edit of `role` leaves it); null: never observed. */
  observedRole: 'primary' | 'replica' | 'unknown' | null;
  state: string;
  /** Its server's EC2 identity, when it has one. */
  cloud: { region: string; instanceId: string } | null;
  /** The RDS DB instance it is (its herd's control driver is rds), when it is one: never reached over SSH. */
  rds: { region: string; identifier: string } | null;
  /** The member it streams from, per the inventory. */
  upstreamId: number | null;
  /** As last observed (the refresher): WAL position (replayed, for a replica) and bytes behind its upstream. */
  lsn: number | null;
  lagBytes: number | null;
  /** As last observed: the timeline it writes or follows. */
  timeline: number | null;
  /** The herd's system identifier, when the inventory knows it (every member must report it). */
  herdSystemIdentifier: string | null;
  /** The herd's automation switch: a rule leaves a herd in maintenance alone. */
  herdAutomation: string;
  /** Its Patroni's REST address, on a herd whose control driver is patroni ('' otherwise, or not known). */
  patroniUrl: string;
  /** Its herd's Patroni scope ('' when not set): what its Patroni must say it runs. */
  patroniScope: string;
  ssh: SshTarget;
}

/** One row a member (RefRow's columns): the worker's claim reads a target's herd with it too (lib/engine/lease.ts). */
export const REF_SELECT = sqlFile('lib/fleet/instance-ref.sql');

// Named statements: the engine loads a target's herd for every target it runs.
const BY_IDS = { name: 'pgherd_refs_by_ids', text: `${REF_SELECT} WHERE i.id = ANY($1::bigint[]) ORDER BY i.id` };
const BY_HERDS = { name: 'pgherd_refs_by_herds', text: `${REF_SELECT} WHERE i.herd_id = ANY($1::int[]) ORDER BY i.id` };
const HERDS_OF_IDS = {
  name: 'pgherd_refs_herds_of_ids',
  text: `${REF_SELECT} WHERE i.herd_id IN (SELECT herd_id FROM instances WHERE id = ANY($1::bigint[])) ORDER BY i.id`,
};
const HERD_OF = {
  name: 'pgherd_refs_herd_of',
  text: `${REF_SELECT} WHERE i.herd_id = (SELECT herd_id FROM instances WHERE id = $1) ORDER BY i.id`,
};

export interface RefRow {
  id: number;
  label: string;
  herd_id: number;
  herd: string;
  environment: string;
  environment_id: number;
  server_id: number;
  server_environment_id: number;
  server_environment: string;
  server_approval: string | null;
  hostname: string;
  address: string | null;
  site: string | null;
  port: number;
  data_directory: string;
  pg_version: number;
  bin_dir: string;
  server_version_num: number | null;
  control_driver: string;
  role: InstanceRef['role'];
  observed_role: InstanceRef['observedRole'];
  state: string;
  cloud_provider: string | null;
  cloud_region: string | null;
  cloud_instance_id: string | null;
  upstream_instance_id: number | null;
  lsn: string | null;
  lag_bytes: string | null;
  timeline: number | null;
  system_identifier: string | null;
  automation: string;
  patroni_url: string;
  patroni_scope: string;
  ssh_port: number;
  ssh_user: string;
  ssh_host_key_fingerprint: string | null;
}

export function toRef(r: RefRow): InstanceRef {
  const host = r.address || r.hostname;
  return {
    id: r.id,
    label: r.label,
    herdId: r.herd_id,
    herd: r.herd,
    environment: r.environment,
    environmentId: r.environment_id,
    serverId: r.server_id,
    serverEnvironmentId: r.server_environment_id,
    serverEnvironment: r.server_environment,
    serverApproval: r.server_approval,
    hostname: r.hostname,
    address: r.address ?? '',
    site: r.site ?? '',
    host,
    port: r.port,
    dataDirectory: r.data_directory,
    pgVersion: r.pg_version,
    binDir: r.bin_dir,
    serverVersionNum: r.server_version_num,
    controlDriver: r.control_driver,
    role: r.role,
    observedRole: r.observed_role,
    state: r.state,
    cloud:
      r.cloud_provider === 'aws' && r.cloud_region && r.cloud_instance_id
        ? { region: r.cloud_region, instanceId: r.cloud_instance_id }
        : null,
    rds:
      r.cloud_provider === 'rds' && r.cloud_region && r.cloud_instance_id
        ? { region: r.cloud_region, identifier: r.cloud_instance_id }
        : null,
    upstreamId: r.upstream_instance_id,
    lsn: r.lsn === null ? null : Number(r.lsn),
    lagBytes: r.lag_bytes === null ? null : Number(r.lag_bytes),
    timeline: r.timeline,
    herdSystemIdentifier: r.system_identifier,
    herdAutomation: r.automation,
    patroniUrl: r.patroni_url,
    patroniScope: r.patroni_scope,
    ssh: {
      host,
      port: r.ssh_port,
      username: r.ssh_user,
      hostKeyFingerprint: r.ssh_host_key_fingerprint,
      serverId: r.server_id,
      environment: r.server_environment,
    },
  };
}

/** The instances with these ids (or every member of `herdIds`, or of the herd of `herdOfInstance`), by id. */
export async function loadInstanceRefs(
  db: Db,
  ids: number[],
  opts: { herdIds?: number[]; herdOfInstance?: number } = {},
): Promise<InstanceRef[]> {
  if (opts.herdOfInstance === undefined && !(opts.herdIds ?? ids).length) return [];
  const q =
    opts.herdOfInstance !== undefined
      ? { ...HERD_OF, values: [opts.herdOfInstance] as unknown[] }
      : opts.herdIds
        ? { ...BY_HERDS, values: [opts.herdIds] }
        : { ...BY_IDS, values: [ids] };
  return (await prepared<RefRow>(db, q.name, q.text, q.values)).map(toRef);
}

/**
 * The instances `ids` (those that exist, by id) and every member of their herds, by herd id, in one
 * query: what planning an instance action reads (one snapshot, and each row read once where two
 * queries read each target twice).
 */
export async function loadInstancesWithHerds(db: Db, ids: number[]): Promise<{ refs: InstanceRef[]; members: Map<number, InstanceRef[]> }> {
  if (!ids.length) return { refs: [], members: new Map() };
  const all = (await prepared<RefRow>(db, HERDS_OF_IDS.name, HERDS_OF_IDS.text, [ids])).map(toRef);
  const wanted = new Set(ids);
  const refs = all.filter((r) => wanted.has(r.id));
  const members = new Map<number, InstanceRef[]>(refs.map((r) => [r.herdId, []]));
  for (const r of all) members.get(r.herdId)?.push(r);
  return { refs, members };
}

/** One instance and every member of its herd (itself included), in one query; null if it is gone. */
export async function loadInstanceWithHerd(db: Db, id: number): Promise<{ ref: InstanceRef; members: InstanceRef[] } | null> {
  return instanceWithHerd(id, await prepared<RefRow>(db, HERD_OF.name, HERD_OF.text, [id]));
}

/** The same, from rows already read (REF_SELECT's, by id). */
export function instanceWithHerd(id: number, rows: RefRow[]): { ref: InstanceRef; members: InstanceRef[] } | null {
  const members = rows.map(toRef);
  const ref = members.find((m) => m.id === id);
  return ref ? { ref, members } : null;
}
