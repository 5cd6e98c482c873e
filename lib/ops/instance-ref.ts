// Everything an action needs to know about one instance, read from the inventory in one query.
import { eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { environments, herds, instances, servers } from '@/db/schema';
import type { SshTarget } from '@/lib/ssh/ssh-client';

export interface InstanceRef {
  id: number;
  label: string;
  herdId: number;
  herd: string;
  environment: string;
  environmentId: number;
  serverId: number;
  host: string;
  port: number;
  dataDirectory: string;
  pgVersion: number;
  controlDriver: string;
  role: 'primary' | 'replica' | 'unknown';
  state: string;
  ssh: SshTarget;
}

export async function loadInstanceRefs(db: Db, ids: number[], opts: { herdIds?: number[] } = {}): Promise<InstanceRef[]> {
  if (!ids.length && !opts.herdIds?.length) return [];
  const rows = await db.select({
    id: instances.id,
    label: sql<string>`${servers.hostname} || ':' || ${instances.port}`,
    herdId: herds.id,
    herd: herds.name,
    environment: environments.name,
    environmentId: environments.id,
    serverId: servers.id,
    hostname: servers.hostname,
    address: servers.address,
    port: instances.port,
    dataDirectory: instances.dataDirectory,
    defaultDataDirectory: herds.defaultDataDirectory,
    pgVersion: instances.pgVersion,
    controlDriver: herds.controlDriver,
    role: instances.role,
    state: instances.state,
    sshPort: servers.sshPort,
    sshUser: servers.sshUser,
    fingerprint: servers.sshHostKeyFingerprint,
  }).from(instances)
    .innerJoin(herds, eq(instances.herdId, herds.id))
    .innerJoin(environments, eq(herds.environmentId, environments.id))
    .innerJoin(servers, eq(instances.serverId, servers.id))
    .where(opts.herdIds ? inArray(instances.herdId, opts.herdIds) : inArray(instances.id, ids))
    .orderBy(instances.id);
  return rows.map((r) => {
    const host = r.address || r.hostname;
    return {
      id: r.id,
      label: r.label,
      herdId: r.herdId,
      herd: r.herd,
      environment: r.environment,
      environmentId: r.environmentId,
      serverId: r.serverId,
      host,
      port: r.port,
      dataDirectory: r.dataDirectory || r.defaultDataDirectory,
      pgVersion: r.pgVersion,
      controlDriver: r.controlDriver,
      role: r.role,
      state: r.state,
      ssh: { host, port: r.sshPort, username: r.sshUser, hostKeyFingerprint: r.fingerprint },
    };
  });
}

/** Every member of the herds of these targets, by herd id. */
export async function loadHerdMembers(db: Db, targets: InstanceRef[]): Promise<Map<number, InstanceRef[]>> {
  const herdIds = [...new Set(targets.map((t) => t.herdId))];
  const all = herdIds.length ? await loadInstanceRefs(db, [], { herdIds }) : [];
  const out = new Map<number, InstanceRef[]>(herdIds.map((h) => [h, []]));
  for (const r of all) out.get(r.herdId)!.push(r);
  return out;
}
