// EC2 discovery (pygmy's tag discovery, done right): the instances a tag filter matches become
// servers with their cloud identity, created when new (in the environment their tag names) and
// updated when known (found by instance id, else by host name). Which Postgres runs there still
// comes from the agents. An instance EC2 lists as terminated, or no longer lists, is marked, never
// deleted: its server may still hold history an operator needs.
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Db } from '@/db/client';
import { environments, servers } from '@/db/schema';
import { writeAudit } from '@/lib/audit/write-audit';
import { describeInstances, tagFilters, type CloudInstance } from '@/lib/aws/ec2';

const tagKey = z.string().min(1).max(128);
export const discoveryConfigSchema = z
  .object({
    regions: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'a region such as eu-west-1')).min(1),
    /** Instances carrying all of these (`*`: the tag with any value). */
    tags: z.record(tagKey, z.string().max(256)).refine((t) => Object.keys(t).length > 0, 'at least one tag to filter on'),
    /** Which tags say the server's host name, environment and site. */
    map: z
      .object({
        hostname: tagKey.default('Name'),
        environment: tagKey.default('pgherd:environment'),
        herd: tagKey.default('pgherd:herd'),
        site: tagKey.default('pgherd:site'),
      })
      .strict()
      .default({ hostname: 'Name', environment: 'pgherd:environment', herd: 'pgherd:herd', site: 'pgherd:site' }),
  })
  .strict();
export type DiscoveryConfig = z.infer<typeof discoveryConfigSchema>;

/** PGHERD_AWS_DISCOVERY (JSON), or null when discovery is not configured; a bad value says what is wrong. */
export function discoveryConfig(env: Record<string, string | undefined> = process.env): DiscoveryConfig | null {
  const raw = env.PGHERD_AWS_DISCOVERY;
  if (!raw) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new Error(`PGHERD_AWS_DISCOVERY is not JSON: ${(err as Error).message}`);
  }
  const r = discoveryConfigSchema.safeParse(parsed);
  if (!r.success)
    throw new Error(`PGHERD_AWS_DISCOVERY: ${r.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export interface DiscoverySummary {
  found: number;
  created: string[];
  updated: number;
  /** Servers whose instance EC2 lists as terminated or no longer lists, marked this pass. */
  gone: string[];
  /** Instances discovery could not make a server of, with the reason. */
  skipped: { instanceId: string; reason: string }[];
}

const SYSTEM = { id: null, username: 'pgherd (EC2 discovery)' };

/**
 * One pass over the configured regions. `clientFor(region)` gives the EC2 client (lib/aws's, or the
 * lab's). Reads all of a region before writing anything of it: a describe that fails changes nothing.
 */
export async function discoverEc2(db: Db, cfg: DiscoveryConfig, clientFor: (region: string) => EC2Client): Promise<DiscoverySummary> {
  const summary: DiscoverySummary = { found: 0, created: [], updated: 0, gone: [], skipped: [] };
  const envs = new Map((await db.select({ id: environments.id, name: environments.name }).from(environments)).map((e) => [e.name, e.id]));
  for (const region of cfg.regions) {
    const seen = await describeInstances(clientFor(region), region, tagFilters(cfg.tags));
    summary.found += seen.length;
    await db.transaction(async (tx) => {
      const names = seen.map((i) => i.tags[cfg.map.hostname]).filter((n): n is string => !!n);
      const ids = seen.map((i) => i.instanceId);
      const known = await tx
        .select()
        .from(servers)
        .where(
          or(
            and(eq(servers.cloudProvider, 'aws'), eq(servers.cloudRegion, region)),
            ids.length ? and(eq(servers.cloudProvider, 'aws'), inArray(servers.cloudInstanceId, ids)) : sql`false`,
            names.length ? inArray(servers.hostname, names) : sql`false`,
          ),
        )
        .for('update');
      const byInstance = new Map(known.flatMap((s) => (s.cloudInstanceId ? [[s.cloudInstanceId, s] as const] : [])));
      const byName = new Map<string, { id: number; hostname: string }>(known.map((s) => [s.hostname, s]));
      // Whose each server is as the pass goes, and whether that instance still lives.
      const holder = new Map(known.map((s) => [s.id, { instanceId: s.cloudInstanceId, live: !ended(s.cloudState) }]));
      const now = new Date();
      // Ended instances first: a live one of the same name then takes their server over (a host replaced).
      for (const i of [...seen].sort((a, b) => Number(!ended(a.state)) - Number(!ended(b.state)))) {
        const name = i.tags[cfg.map.hostname];
        const byItsName = name ? byName.get(name) : undefined;
        const owner = byItsName ? holder.get(byItsName.id) : undefined;
        // By name: only a live instance, and only a server no other live instance holds.
        const server =
          byInstance.get(i.instanceId) ??
          (byItsName && !ended(i.state) && (!owner?.instanceId || owner.instanceId === i.instanceId || !owner.live)
            ? byItsName
            : undefined);
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
        if (!name) {
          summary.skipped.push({ instanceId: i.instanceId, reason: `no ${cfg.map.hostname} tag to name its server` });
          continue;
        }
        if (byItsName) {
          summary.skipped.push({ instanceId: i.instanceId, reason: `server ${name} is already ${owner?.instanceId ?? ''}'s` });
          continue;
        }
        const envName = i.tags[cfg.map.environment];
        const environmentId = envName ? envs.get(envName) : undefined;
        if (environmentId === undefined) {
          summary.skipped.push({
            instanceId: i.instanceId,
            reason: envName ? `its ${cfg.map.environment} tag names no environment (${envName})` : `no ${cfg.map.environment} tag`,
          });
          continue;
        }
        const [created] = await tx
          .insert(servers)
          .values({
            hostname: name,
            environmentId,
            address: i.privateAddress ?? '',
            site: i.tags[cfg.map.site] ?? '',
            ...identityOf(i, cfg, now),
          })
          .returning({ id: servers.id, hostname: servers.hostname });
        if (!created) throw new Error(`server ${name} was not created`);
        byName.set(name, created);
        holder.set(created.id, { instanceId: i.instanceId, live: true });
        summary.created.push(name);
        await writeAudit(tx, {
          user: SYSTEM,
          action: 'server.discovered',
          objectType: 'servers',
          objectId: String(created.id),
          objectLabel: name,
          environmentId,
          changes: { instanceId: [null, i.instanceId], instanceType: [null, i.instanceType], availabilityZone: [null, i.availabilityZone] },
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
