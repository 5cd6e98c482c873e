// What a plan on cloud servers reads before it is made, once for all its targets: each server's EC2
// instance (or RDS DB instance) as the cloud has it now, its herd's hooks, and, when a type is wished
// for, the ranking of the types it can run. Resize, power off and on, and RDS's restart read it; and
// what EC2 says an instance is after they ran, recorded.
import { eq, inArray } from 'drizzle-orm';
import { herds, instances, servers } from '@/db/schema';
import type { Db } from '@/db/client';
import { awsSettings, awsUnavailable, AwsNotConfiguredError, ec2Client, type AwsSettings } from '@/lib/adapters/aws/config';
import { describeInstancesById, type CloudInstance } from '@/lib/adapters/aws/ec2';
import { awsEnvironments } from '@/lib/adapters/aws/environments';
import { catalogueFor } from '@/lib/fleet/cloud/catalogue';
import { identityProblem } from '@/lib/fleet/cloud/identity';
import { priceList, priceListFor, type PriceList } from '@/lib/fleet/cloud/prices';
import { rankTypes, type Ranking, type ResizeWish } from '@/lib/fleet/cloud/rank';
import { loadHerdRefs, type HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import type { ActionDeps } from '@/lib/engine/define-action';
import { writeAudit } from '@/lib/engine/write-audit';
import { prepareRds, type RdsTarget } from '@/lib/actions/drivers/rds/resize';

/** What the plan needs of one target besides the inventory: its server's EC2 instance now, and the ranking. */
export interface CloudTarget {
  region: string;
  instanceId: string;
  live: CloudInstance | null;
  ranking: Ranking | null;
  /** The type the inventory last recorded: the original one, when a resize was cut short after the type changed. */
  recordedType: string | null;
  /** Other instances on the same server: a resize stops the whole host. */
  neighbours: string[];
  /** Why EC2 does not confirm the instance as the server's (address, environment), or null when it does. */
  identity: string | null;
}

export interface ResizePrepared {
  byServer: Map<number, CloudTarget | null>;
  /** The targets that are RDS DB instances, by server (RDS's own answer and ranking). */
  rds: Map<number, RdsTarget>;
  herds: Map<number, HerdRef & { hooks: { pre: string; post: string; on: 'worker' | 'database'; timeoutSeconds: number } }>;
  prices: { source: string; date: string };
}

/** DescribeInstances takes at most 1000 ids a call: 200 a call, the calls at once (as a plan asks). */
export async function describeInChunks(client: ReturnType<typeof ec2Client>, region: string, ids: string[]): Promise<CloudInstance[]> {
  const chunks: string[][] = [];
  for (let k = 0; k < ids.length; k += 200) chunks.push(ids.slice(k, k + 200));
  return (await Promise.all(chunks.map((c) => describeInstancesById(client, region, c)))).flat();
}

/** A server row as the inventory has it. */
type ServerRow = typeof servers.$inferSelect;
/** An instance on one of the targets' servers (a server running more than one is stopped whole by a resize). */
type OnServer = { serverId: number; id: number; port: number };
/** A wish for a type: the same for all, or (`backTo`) each target's own type, the rest of the wish the same. */
type CloudWish = (ResizeWish & { backTo?: Record<string, string> }) | null;

/**
 * The targets' servers' EC2 instances as EC2 has them now, their herds (DNS names, hooks) and, when a
 * type is wished for, the ranking of the types each can run. Shared by resize and power off / on.
 */
export async function prepareCloud(targets: InstanceRef[], db: Db, wish: CloudWish): Promise<ResizePrepared> {
  const wishFor = wishPerServer(targets, wish);
  const envOf = new Map(targets.map((t) => [t.serverId, t.serverEnvironment]));
  const { rows, onServer } = await loadServers(db, [...new Set(targets.map((t) => t.serverId))]);
  const herdsWithHooks = await loadHerdsWithHooks(db, [...new Set(targets.map((t) => t.herdId))]);
  let prices = priceList();
  const prepared: ResizePrepared = {
    byServer: new Map(),
    rds: new Map(),
    herds: herdsWithHooks,
    prices: { source: prices.source, date: prices.date },
  };
  const cloud = rows.filter((s) => s.cloudProvider === 'aws' && s.cloudInstanceId && s.cloudRegion);
  const rds = rows.filter((s) => s.cloudProvider === 'rds' && s.cloudInstanceId && s.cloudRegion);
  for (const s of rows) if (!cloud.includes(s) && !rds.includes(s)) prepared.byServer.set(s.id, null);
  if (!cloud.length && !rds.length) return prepared;
  const unavailable = await awsUnavailable();
  if (unavailable) throw new AwsNotConfiguredError(unavailable.replace(/^AWS is not configured: /, ''));
  const settings = awsSettings();
  if (wish) {
    // Prices only for a ranking: the Price List API's when configured (read once a region, kept).
    prices = await priceListFor([...cloud, ...rds].map((s) => s.cloudRegion ?? ''));
    prepared.prices = { source: prices.source, date: prices.date };
  }
  if (rds.length)
    prepared.rds = await prepareRds(
      rds,
      (id) => envOf.get(id) ?? '',
      (id) => onServer.filter((x) => x.serverId === id).map((x) => x.port),
      wishFor,
      wish !== null,
      prices,
      settings.endpoint ?? '',
    );
  if (!cloud.length) return prepared;
  const byRegion = new Map<string, typeof cloud>();
  for (const s of cloud) byRegion.set(s.cloudRegion ?? '', [...(byRegion.get(s.cloudRegion ?? '') ?? []), s]);
  for (const [region, list] of byRegion)
    await prepareRegion(prepared.byServer, region, list, { wish, wishFor, settings, prices, onServer, envOf });
  return prepared;
}

/** Each server's wish: the one wish for all, or with `backTo` its target's own type (none when `backTo` names none). */
function wishPerServer(targets: InstanceRef[], wish: CloudWish): (serverId: number) => ResizeWish | null {
  // backTo: each server's own type (its target's), the rest of the wish (fallbacks, burstable) the same for all.
  const targetOn = new Map(targets.map((t) => [t.serverId, t.id]));
  return (serverId: number): ResizeWish | null => {
    if (!wish?.backTo) return wish;
    const to = wish.backTo[String(targetOn.get(serverId))];
    return to ? { ...wish, instanceType: to } : null;
  };
}

/** The servers' rows, and every instance on them (their ports). */
async function loadServers(db: Db, serverIds: number[]): Promise<{ rows: ServerRow[]; onServer: OnServer[] }> {
  const rows = serverIds.length ? await db.select().from(servers).where(inArray(servers.id, serverIds)) : [];
  const onServer = serverIds.length
    ? await db
        .select({ serverId: instances.serverId, id: instances.id, port: instances.port })
        .from(instances)
        .where(inArray(instances.serverId, serverIds))
    : [];
  return { rows, onServer };
}

/** The herds, each with its resize hooks (none, on the database's host, 300 s, when its row is gone). */
async function loadHerdsWithHooks(db: Db, herdIds: number[]): Promise<ResizePrepared['herds']> {
  const [herdRefs, hookRows] = await Promise.all([
    loadHerdRefs(db, herdIds),
    herdIds.length
      ? db
          .select({
            id: herds.id,
            pre: herds.resizePreHook,
            post: herds.resizePostHook,
            on: herds.hooksRunOn,
            timeoutSeconds: herds.hookTimeoutSeconds,
          })
          .from(herds)
          .where(inArray(herds.id, herdIds))
      : [],
  ]);
  const hooks = new Map(hookRows.map((h) => [h.id, h]));
  return new Map(
    herdRefs.map((h) => [h.id, { ...h, hooks: hooks.get(h.id) ?? { pre: '', post: '', on: 'database' as const, timeoutSeconds: 300 } }]),
  );
}

/** What ranking one region's EC2 instances reads, the same for every region. */
interface RegionReading {
  wish: CloudWish;
  wishFor: (serverId: number) => ResizeWish | null;
  settings: AwsSettings;
  prices: PriceList;
  onServer: OnServer[];
  envOf: Map<number, string>;
}

/** One region's servers: their EC2 instances described (in chunks, at once), each ranked when a type is wished for, its identity checked. */
async function prepareRegion(byServer: ResizePrepared['byServer'], region: string, list: ServerRow[], g: RegionReading): Promise<void> {
  const { wish, wishFor, settings, prices, onServer, envOf } = g;
  const client = ec2Client(region);
  const seen = await describeInChunks(
    client,
    region,
    list.map((s) => s.cloudInstanceId ?? ''),
  );
  const live = new Map(seen.map((i) => [i.instanceId, i]));
  const mapping = awsEnvironments();
  // Instances alike (zone, type, architecture, ENA, virtualization) rank alike: ranked once.
  const ranked = new Map<string, Ranking>();
  for (const s of list) {
    const i = live.get(s.cloudInstanceId ?? '') ?? null;
    let ranking: Ranking | null = null;
    const w = wishFor(s.id);
    if (i && wish && !w) ranking = { ok: false, reason: `backTo names no type for the instance on ${s.hostname}` };
    if (i && w) {
      const key = [i.availabilityZone, i.instanceType, i.architecture, i.enaSupport, i.virtualization, w.instanceType ?? ''].join(' ');
      // (A refusal names its instance: ranked again for each.)
      ranking = ranked.get(key) ?? null;
      if (!ranking) {
        const c = await catalogueFor(client, region, i.availabilityZone, { endpoint: settings.endpoint ?? '', prices });
        ranking = rankTypes(i, w, c);
        if (ranking.ok) ranked.set(key, ranking);
      }
    }
    const others = onServer.filter((x) => x.serverId === s.id);
    byServer.set(s.id, {
      region,
      instanceId: s.cloudInstanceId ?? '',
      live: i,
      ranking,
      recordedType: s.cloudInstanceType,
      neighbours: others.length > 1 ? others.map((x) => `${s.hostname}:${x.port}`) : [],
      identity: i
        ? await identityProblem({ hostname: s.hostname, address: s.address, environment: envOf.get(s.id) ?? '' }, i.instanceId, i, mapping)
        : null,
    });
  }
}

/**
 * What EC2 says the instance is now (type and state), into the inventory. A type other than the one the
 * inventory had is audited, once (the record step and the cleanup after it both write).
 */
export async function recordType(deps: ActionDeps, t: InstanceRef, now: CloudInstance) {
  const type = now.instanceType;
  const [before] = await deps.db.select({ type: servers.cloudInstanceType }).from(servers).where(eq(servers.id, t.serverId));
  const was = before?.type ?? null;
  await deps.db
    .update(servers)
    .set({ cloudInstanceType: type, cloudState: now.state, cloudSeenAt: new Date() })
    .where(eq(servers.id, t.serverId));
  if (was !== null && type !== was)
    await writeAudit(deps.db, {
      user: deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
      action: 'server.resized',
      objectType: 'servers',
      objectId: String(t.serverId),
      objectLabel: `${t.hostname}${deps.operation ? ` (operation #${deps.operation.id})` : ''}`,
      environmentId: t.serverEnvironmentId,
      changes: { instanceType: [was, type] },
    });
}
