// RDS discovery: every Postgres DB instance of the configured regions becomes a server (cloud provider
// `rds`: the server is the DB instance, its instance id the identifier, its type the class) with one
// instance at its endpoint; a source and its read replicas become a herd run by RDS (control driver
// `rds`). The environment is PGHERD_AWS_ENVIRONMENTS's for the instance's VPC (its subnet group's) or
// account, never a tag's (a tag that disagrees is reported). Known DB instances are updated, found by
// identifier; a member stays in its herd whatever RDS says later (a replica pgherd promoted is still its
// herd's new primary), and what RDS's grouping says otherwise is reported. A DB instance RDS no longer
// lists is marked gone, never deleted.
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import type { RDSClient } from '@aws-sdk/client-rds';
import type { Db, Queries } from '@/db/client';
import { discoveryRuns, environments, herds, instances, servers } from '@/db/schema';
import { rdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import { writeAudit } from '@/lib/engine/write-audit';
import { addressTakenElsewhere } from '@/lib/fleet/host-binding';
import { describeRdsPostgres, type RdsInstance } from '@/lib/adapters/aws/rds';
import { awsEnvironments, environmentOfInstance, placeOf, type AwsEnvironments } from '@/lib/adapters/aws/environments';
import type { DiscoveryConfig } from '@/lib/settings/aws-discovery-schema';

/** What a pass did with RDS's DB instances: the `rds` part of a discovery pass's summary (discovery_runs). */
export type RdsDiscoverySummary = NonNullable<NonNullable<(typeof discoveryRuns.$inferSelect)['summary']>['rds']>;

const SYSTEM = { id: null, username: 'pgherd (RDS discovery)' };

/** The major of an RDS engine version (15.8: 15; 9.6.24: 9). */
export const majorOf = (engineVersion: string) => Number(/^(\d+)/.exec(engineVersion)?.[1] ?? 0) || 15;

/**
 * One pass over the configured regions: each region read whole before anything of it is written (a
 * describe that fails changes nothing). `clientFor(region)` gives the RDS client.
 */
export async function discoverRds(
  db: Db,
  cfg: DiscoveryConfig,
  clientFor: (region: string) => RDSClient,
  map: AwsEnvironments | null = awsEnvironments(),
): Promise<RdsDiscoverySummary> {
  const summary: RdsDiscoverySummary = { found: 0, herds: [], created: [], updated: 0, gone: [], skipped: [], problems: [] };
  const envs = new Map((await db.select({ id: environments.id, name: environments.name }).from(environments)).map((e) => [e.name, e.id]));
  for (const region of cfg.regions) {
    const seen = await describeRdsPostgres(clientFor(region), region);
    summary.found += seen.length;
    await db.transaction((tx) => discoverRegion(tx, cfg, region, seen, envs, map, summary));
  }
  return summary;
}

async function discoverRegion(
  tx: Queries,
  cfg: DiscoveryConfig,
  region: string,
  seen: RdsInstance[],
  envs: Map<string, number>,
  map: AwsEnvironments | null,
  summary: RdsDiscoverySummary,
) {
  const ids = seen.map((i) => i.identifier);
  const known = await tx
    .select()
    .from(servers)
    .where(
      and(
        eq(servers.cloudProvider, 'rds'),
        or(eq(servers.cloudRegion, region), ids.length ? inArray(servers.cloudInstanceId, ids) : sql`false`),
      ),
    )
    .for('update');
  const byId = new Map(known.map((s) => [s.cloudInstanceId ?? '', s]));
  const now = new Date();
  // The instance each known server carries (one: an RDS server is one DB instance).
  const onServer = new Map(
    known.length
      ? (
          await tx
            .select({ id: instances.id, serverId: instances.serverId, herdId: instances.herdId })
            .from(instances)
            .where(
              inArray(
                instances.serverId,
                known.map((s) => s.id),
              ),
            )
        ).map((r) => [r.serverId, r])
      : [],
  );
  // Sources first, then each replica after the instance it replicates from: a replica's herd is its source's.
  const bySource = new Map(seen.map((i) => [i.identifier, i]));
  const depth = (i: RdsInstance, n = 0): number => {
    const up = i.sourceIdentifier ? bySource.get(i.sourceIdentifier) : undefined;
    return up && n < 16 ? depth(up, n + 1) : n;
  };
  const ordered = [...seen].sort((a, b) => depth(a) - depth(b));
  const herdOf = new Map<string, { herdId: number; instanceId: number | null; environmentId: number }>();
  const skip = (instanceId: string, reason: string) => summary.skipped.push({ instanceId, reason });
  for (const i of ordered) {
    const owner = environmentOfInstance(map, i);
    const environmentId = owner ? envs.get(owner.environment) : undefined;
    const tagged = i.tags[cfg.map.environment];
    if (owner && tagged && tagged !== owner.environment)
      summary.problems.push({
        instanceId: i.identifier,
        problem: `its ${cfg.map.environment} tag says ${tagged}, and PGHERD_AWS_ENVIRONMENTS puts ${placeOf(i)} in ${owner.environment}: the tag is not obeyed`,
      });
    const server = byId.get(i.identifier);
    if (server) {
      if (server.environmentId !== environmentId) {
        summary.problems.push({
          instanceId: i.identifier,
          problem: `server ${server.hostname} names it, and it is ${owner ? `${owner.environment}'s` : "no environment's"} (${placeOf(i)}): its identity is not updated`,
        });
        continue;
      }
      await tx
        .update(servers)
        .set({ ...rdsIdentity(i, now), ...(i.endpoint ? { address: i.endpoint.address } : {}) })
        .where(eq(servers.id, server.id));
      summary.updated++;
      // A class that changed without pgherd recording it (outside pgherd, or a resize whose worker died
      // before its record step): audited as found, once.
      if (server.cloudInstanceType && server.cloudInstanceType !== i.instanceClass)
        await writeAudit(tx, {
          user: SYSTEM,
          action: 'server.resized',
          objectType: 'servers',
          objectId: String(server.id),
          objectLabel: `${server.hostname} (found by RDS discovery)`,
          environmentId: server.environmentId,
          changes: { instanceType: [server.cloudInstanceType, i.instanceClass] },
        });
      const inst = onServer.get(server.id);
      if (inst) {
        herdOf.set(i.identifier, { herdId: inst.herdId, instanceId: inst.id, environmentId: server.environmentId });
        const source = i.sourceIdentifier ? herdOf.get(i.sourceIdentifier) : undefined;
        if (source && source.herdId !== inst.herdId)
          summary.problems.push({
            instanceId: i.identifier,
            problem: `RDS says it replicates from ${i.sourceIdentifier ?? ''}, which is in another herd: it stays in its own (an admin moves it)`,
          });
      }
      continue;
    }
    if (i.status === 'deleting') continue;
    if (!owner) {
      skip(i.identifier, `${placeOf(i)} is in no environment PGHERD_AWS_ENVIRONMENTS names`);
      continue;
    }
    if (environmentId === undefined) {
      skip(i.identifier, `PGHERD_AWS_ENVIRONMENTS puts it in ${owner.environment}, which pgherd has no environment of`);
      continue;
    }
    if (!i.endpoint) {
      skip(i.identifier, `RDS gives it no endpoint yet (it is ${i.status}): the next pass takes it`);
      continue;
    }
    const [taken] = await tx.select({ id: servers.id }).from(servers).where(eq(servers.hostname, i.identifier));
    if (taken) {
      skip(i.identifier, `server ${i.identifier} exists and is not this DB instance's`);
      continue;
    }
    const elsewhere = await addressTakenElsewhere(tx, environmentId, [i.endpoint.address.toLowerCase()]);
    if (elsewhere) {
      skip(i.identifier, elsewhere);
      continue;
    }
    // Its herd: its source's, or a new one named after it (or its herd tag) in its environment.
    let herd = i.sourceIdentifier ? herdOf.get(i.sourceIdentifier) : undefined;
    if (i.sourceIdentifier && !herd) {
      skip(
        i.identifier,
        `its source ${i.sourceIdentifier} is not in pgherd's inventory (another region, or skipped): it joins its herd once its source does`,
      );
      continue;
    }
    if (herd && herd.environmentId !== environmentId) {
      skip(i.identifier, `its source ${i.sourceIdentifier ?? ''} is in another environment`);
      continue;
    }
    if (!herd) {
      const name = i.tags[cfg.map.herd] || i.identifier;
      const [existing] = await tx
        .select({ id: herds.id, driver: herds.controlDriver })
        .from(herds)
        .where(and(eq(herds.environmentId, environmentId), eq(herds.name, name)));
      if (existing && existing.driver !== 'rds') {
        skip(i.identifier, `herd ${owner.environment}/${name} exists and is not run by RDS`);
        continue;
      }
      let herdId = existing?.id;
      if (!herdId) {
        const [made] = await tx
          .insert(herds)
          .values({
            environmentId,
            name,
            description: `RDS ${i.identifier} and its read replicas`,
            defaultPort: i.endpoint.port,
            defaultDataDirectory: '',
            pgVersion: majorOf(i.engineVersion),
            controlDriver: 'rds',
          })
          .returning({ id: herds.id });
        if (!made) throw new Error(`herd ${name} was not created`);
        herdId = made.id;
        summary.herds.push(`${owner.environment}/${name}`);
        await writeAudit(tx, {
          user: SYSTEM,
          action: 'herd.discovered',
          objectType: 'herds',
          objectId: String(herdId),
          objectLabel: `${owner.environment}/${name}`,
          environmentId,
          changes: { controlDriver: [null, 'rds'], source: [null, i.identifier] },
        });
      }
      herd = { herdId, instanceId: null, environmentId };
    }
    const [created] = await tx
      .insert(servers)
      .values({
        hostname: i.identifier,
        environmentId,
        address: i.endpoint.address,
        site: i.tags[cfg.map.site] || i.availabilityZone,
        approval: owner.approve ? 'pending' : null,
        ...rdsIdentity(i, now),
      })
      .returning({ id: servers.id });
    if (!created) throw new Error(`server ${i.identifier} was not created`);
    const [inst] = await tx
      .insert(instances)
      .values({
        herdId: herd.herdId,
        serverId: created.id,
        port: i.endpoint.port,
        pgVersion: majorOf(i.engineVersion),
        role: i.sourceIdentifier ? 'replica' : 'primary',
        state: i.status === 'stopped' ? 'stopped' : 'running',
        upstreamInstanceId: i.sourceIdentifier ? (herd.instanceId ?? null) : null,
      })
      .returning({ id: instances.id });
    if (!inst) throw new Error(`the instance of ${i.identifier} was not created`);
    herdOf.set(i.identifier, { herdId: herd.herdId, instanceId: inst.id, environmentId });
    summary.created.push(i.identifier);
    await writeAudit(tx, {
      user: SYSTEM,
      action: 'server.discovered',
      objectType: 'servers',
      objectId: String(created.id),
      objectLabel: i.identifier,
      environmentId,
      changes: {
        rds: [null, i.identifier],
        instanceClass: [null, i.instanceClass],
        availabilityZone: [null, i.availabilityZone],
        ...(owner.approve ? { approval: [null, 'pending'] } : {}),
      },
    });
  }
  const listed = new Set(ids);
  for (const s of known) {
    if (s.cloudRegion !== region || listed.has(s.cloudInstanceId ?? '')) continue;
    if (s.cloudState !== 'gone')
      await tx
        .update(servers)
        .set({ cloudState: 'gone', cloudGoneAt: s.cloudGoneAt ?? now })
        .where(eq(servers.id, s.id));
    if (!s.cloudGoneAt) summary.gone.push(s.hostname);
  }
}
