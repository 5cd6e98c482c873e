// EC2 discovery by tag, with a tag never trusted to say where an instance belongs: the instances a tag
// filter matches become servers with their cloud identity, created when new (in the environment
// PGHERD_AWS_ENVIRONMENTS gives their VPC or account: a tag anyone with ec2:CreateTags writes is
// reported, not obeyed) and updated when known (found by instance id, else by private address in the
// server's environment). Which Postgres runs there still comes from the agents. An instance EC2 lists
// as terminated, or no longer lists, is marked, never deleted: its server may still hold history an
// operator needs.
import { addressTakenElsewhere } from '@/lib/fleet/host-binding';
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Db } from '@/db/client';
import { environments, servers } from '@/db/schema';
import { writeAudit } from '@/lib/engine/write-audit';
import { describeInstances, tagFilters, type CloudInstance } from '@/lib/adapters/aws/ec2';
import { awsEnvironments, environmentOfInstance, placeOf, type AwsEnvironments } from '@/lib/adapters/aws/environments';
import type { DiscoveryConfig } from '@/lib/settings/aws-discovery-schema';
import type { RdsDiscoverySummary } from './rds-discovery';
import { setting } from '@/lib/settings/settings';

export type { DiscoveryConfig } from '@/lib/settings/aws-discovery-schema';

/** PGHERD_AWS_DISCOVERY, or null when discovery is not configured; a bad value throws, saying what is wrong. */
export function discoveryConfig(env: Record<string, string | undefined> = process.env): DiscoveryConfig | null {
  return setting('PGHERD_AWS_DISCOVERY', env);
}

export interface DiscoverySummary {
  found: number;
  created: string[];
  updated: number;
  /** Servers whose instance EC2 lists as terminated or no longer lists, marked this pass. */
  gone: string[];
  /** Instances discovery could not make a server of, with the reason. */
  skipped: { instanceId: string; reason: string }[];
  /** What discovery saw and did not obey: a tag that names another environment than the configuration's. */
  problems?: { instanceId: string; problem: string }[];
  /** RDS's DB instances, when discovery reads them too (PGHERD_AWS_DISCOVERY's `rds`). */
  rds?: RdsDiscoverySummary;
}

const SYSTEM = { id: null, username: 'pgherd (EC2 discovery)' };

/**
 * One pass over the configured regions. `clientFor(region)` gives the EC2 client (lib/adapters/aws's, or the
 * lab's). Reads all of a region before writing anything of it: a describe that fails changes nothing.
 * An instance's environment is PGHERD_AWS_ENVIRONMENTS's (`map`), never its tag's; a server is found
 * by instance id, or by private address among its own environment's servers, never by name.
 */
export async function discoverEc2(
  db: Db,
  cfg: DiscoveryConfig,
  clientFor: (region: string) => EC2Client,
  map: AwsEnvironments | null = awsEnvironments(),
): Promise<DiscoverySummary> {
  const summary: DiscoverySummary = { found: 0, created: [], updated: 0, gone: [], skipped: [], problems: [] };
  const problems = summary.problems ?? [];
  const envs = new Map((await db.select({ id: environments.id, name: environments.name }).from(environments)).map((e) => [e.name, e.id]));
  for (const region of cfg.regions) {
    const seen = await describeInstances(clientFor(region), region, tagFilters(cfg.tags));
    summary.found += seen.length;
    await db.transaction(async (tx) => {
      const names = seen.map((i) => i.tags[cfg.map.hostname]).filter((n): n is string => !!n);
      const ids = seen.map((i) => i.instanceId);
      const addresses = seen.map((i) => i.privateAddress).filter((a): a is string => !!a);
      const known = await tx
        .select()
        .from(servers)
        .where(
          or(
            and(eq(servers.cloudProvider, 'aws'), eq(servers.cloudRegion, region)),
            ids.length ? and(eq(servers.cloudProvider, 'aws'), inArray(servers.cloudInstanceId, ids)) : sql`false`,
            addresses.length ? inArray(servers.address, addresses) : sql`false`,
          ),
        )
        .for('update');
      // Names only to say why a new instance cannot have one (host names are unique): never to match.
      const taken = new Set(
        names.length
          ? (await tx.select({ hostname: servers.hostname }).from(servers).where(inArray(servers.hostname, names))).map((r) => r.hostname)
          : [],
      );
      const byInstance = new Map(known.flatMap((s) => (s.cloudInstanceId ? [[s.cloudInstanceId, s] as const] : [])));
      // Whose each server is as the pass goes, and whether that instance still lives.
      const holder = new Map(known.map((s) => [s.id, { instanceId: s.cloudInstanceId, live: !ended(s.cloudState) }]));
      const now = new Date();
      // Ended instances first: a live one at the same address then takes their server over (a host replaced).
      for (const i of [...seen].sort((a, b) => Number(!ended(a.state)) - Number(!ended(b.state)))) {
        const owner = environmentOfInstance(map, i);
        const environmentId = owner ? envs.get(owner.environment) : undefined;
        const tagged = i.tags[cfg.map.environment];
        if (owner && tagged && tagged !== owner.environment)
          problems.push({
            instanceId: i.instanceId,
            problem: `its ${cfg.map.environment} tag says ${tagged}, and PGHERD_AWS_ENVIRONMENTS puts ${placeOf(i)} in ${owner.environment}: the tag is not obeyed`,
          });
        const byAddress = known.find((s) => {
          if (environmentId === undefined || !i.privateAddress || s.address !== i.privateAddress || s.environmentId !== environmentId)
            return false;
          const h = holder.get(s.id);
          return !h?.instanceId || h.instanceId === i.instanceId || !h.live;
        });
        const server = byInstance.get(i.instanceId) ?? (!ended(i.state) ? byAddress : undefined);
        if (server && server.environmentId !== environmentId) {
          // Bound by id to a server of another environment (a row written before ids were confirmed).
          problems.push({
            instanceId: i.instanceId,
            problem: `server ${server.hostname} names it, and it is ${owner ? `${owner.environment}'s` : "no environment's"} (${placeOf(i)}): its identity is not updated`,
          });
          continue;
        }
        if (server) {
          holder.set(server.id, { instanceId: i.instanceId, live: !ended(i.state) });
          await tx
            .update(servers)
            .set(identityOf(i, cfg, now))
            .where(eq(servers.id, server.id));
          summary.updated++;
          continue;
        }
        if (ended(i.state)) continue; // nothing to make a server of
        const name = i.tags[cfg.map.hostname];
        const skip = (reason: string) => summary.skipped.push({ instanceId: i.instanceId, reason });
        if (!owner) {
          skip(`${placeOf(i)} is in no environment PGHERD_AWS_ENVIRONMENTS names`);
          continue;
        }
        if (environmentId === undefined) {
          skip(`PGHERD_AWS_ENVIRONMENTS puts it in ${owner.environment}, which pgherd has no environment of`);
          continue;
        }
        if (!name) {
          skip(`no ${cfg.map.hostname} tag to name its server`);
          continue;
        }
        if (taken.has(name)) {
          skip(`server ${name} exists and is not this instance's (not its instance id, nor its address in ${owner.environment})`);
          continue;
        }
        // One host, one environment: an address another environment's server has is not made a server here.
        const elsewhere = i.privateAddress ? await addressTakenElsewhere(tx, environmentId, [i.privateAddress]) : null;
        if (elsewhere) {
          skip(elsewhere);
          continue;
        }
        const [created] = await tx
          .insert(servers)
          .values({
            hostname: name,
            environmentId,
            address: i.privateAddress ?? '',
            site: i.tags[cfg.map.site] ?? '',
            // Its environment asks an admin to approve what discovery brings in before pgherd acts on it.
            approval: owner.approve ? 'pending' : null,
            ...identityOf(i, cfg, now),
          })
          .returning({ id: servers.id, hostname: servers.hostname });
        if (!created) throw new Error(`server ${name} was not created`);
        taken.add(name);
        holder.set(created.id, { instanceId: i.instanceId, live: true });
        summary.created.push(name);
        await writeAudit(tx, {
          user: SYSTEM,
          action: 'server.discovered',
          objectType: 'servers',
          objectId: String(created.id),
          objectLabel: name,
          environmentId,
          changes: {
            instanceId: [null, i.instanceId],
            instanceType: [null, i.instanceType],
            availabilityZone: [null, i.availabilityZone],
            ...(owner.approve ? { approval: [null, 'pending'] } : {}),
          },
        });
      }
      const listed = new Set(seen.map((i) => i.instanceId));
      for (const s of known) {
        const h = holder.get(s.id);
        if (!h || s.cloudProvider !== 'aws' || s.cloudRegion !== region) continue;
        // Known in this region and not listed now: gone from EC2 (marked once, kept).
        const vanished = !!h.instanceId && !listed.has(h.instanceId);
        if (vanished && s.cloudState !== 'gone') {
          await tx
            .update(servers)
            .set({ cloudState: 'gone', cloudGoneAt: s.cloudGoneAt ?? now })
            .where(eq(servers.id, s.id));
        }
        // Reported on the pass that finds it ended, not on every pass after.
        if ((vanished || !h.live) && !s.cloudGoneAt) summary.gone.push(s.hostname);
      }
    });
  }
  return summary;
}

const ended = (state: string | null) => state === 'terminated' || state === 'shutting-down' || state === 'gone';

function identityOf(i: CloudInstance, cfg: DiscoveryConfig, now: Date) {
  const gone = i.state === 'terminated';
  return {
    cloudProvider: 'aws',
    cloudRegion: i.region,
    cloudInstanceId: i.instanceId,
    cloudInstanceType: i.instanceType,
    cloudAvailabilityZone: i.availabilityZone,
    cloudArchitecture: i.architecture,
    cloudState: i.state,
    cloudPrivateAddress: i.privateAddress,
    cloudTags: i.tags,
    cloudHerdTag: i.tags[cfg.map.herd] ?? null,
    cloudSeenAt: now,
    // Terminated: when first seen so (kept); otherwise not gone.
    cloudGoneAt: gone ? sql`coalesce(${servers.cloudGoneAt}, ${now.toISOString()}::timestamptz)` : null,
  };
}
