// Add a read replica to a herd RDS runs: RDS creates it (CreateDBInstanceReadReplica) from the herd's
// source, of a class and in a zone; RDS's status is waited on until it is available with an endpoint; the
// new DB instance is entered in the herd (a server and its instance, as discovery would enter it), and must
// stream from the source. The RDS counterpart of Add replica (RDS gives no host to lay a replica out on).
import { waitRdsNoted } from './steps';
import { eq } from 'drizzle-orm';
import { instances, servers } from '@/db/schema';
import { rdsClient } from '@/lib/adapters/aws/config';
import { createReadReplica, orderableClasses, rdsWaitBounds, type RdsInstance } from '@/lib/adapters/aws/rds';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import type { Db } from '@/db/client';
import { productionWarning, type ActionPlan, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { writeAudit } from '@/lib/engine/write-audit';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { waitObserved } from '@/lib/fleet/observe';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { HOURS_PER_MONTH, priceList, type PriceList } from '@/lib/fleet/cloud/prices';
import { rdsIdentity, recheckRdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import type { AddReplicaAsk, ReplicaMaker } from '../add-replica';

/** How long the new replica may take to stream once RDS says it is available. */
const STREAMING_MS = 120_000;

/** The new DB instance's identifier: the source's, then -r and the first number no member has. */
export function newReplicaIdentifier(source: string, taken: string[]): string {
  for (let k = 1; ; k++) {
    const id = `${source}-r${String(k)}`.slice(0, 63);
    if (!taken.includes(id)) return id;
  }
}

/** What RDS offers for each herd's source: the classes for its PostgreSQL version, by zone of its region. */
export type RdsOffers = Map<number, { engineVersion: string; zones: Map<string, Set<string>> } | Refusal>;

/** The classes RDS offers for each RDS herd's source, in the zone asked for (else the source's), read from RDS. */
export async function prepareRdsOffers(herds: HerdRef[], p: AddReplicaAsk, db: Db): Promise<RdsOffers> {
  const out: RdsOffers = new Map();
  for (const h of herds) {
    const source = h.members.find((m) => m.role === 'primary' && m.state === 'running' && m.rds);
    if (!source?.rds) continue;
    const [row] = await db
      .select({ details: servers.cloudDetails, zone: servers.cloudAvailabilityZone })
      .from(servers)
      .where(eq(servers.id, source.serverId));
    const engineVersion = row?.details?.engineVersion ?? '';
    const zone = p.availabilityZone ?? row?.zone ?? '';
    try {
      out.set(h.id, { engineVersion, zones: new Map([[zone, await orderableClasses(rdsClient(source.rds.region), engineVersion, zone)]]) });
    } catch (err) {
      out.set(h.id, refuse('cloud', `RDS cannot say which classes it offers in ${zone}: ${awsErrorText(err)}`));
    }
  }
  return out;
}

/** What Add replica takes only where pgherd lays the replica out itself, and RDS does not. */
const NOT_FOR_RDS = ['serverId', 'instanceType', 'like', 'port', 'dataDirectory', 'sslCertFile', 'sslKeyFile'] as const;

/** What the steps of a new RDS read replica share: the herd, its source and RDS's names for it and the new one, the class and zone. */
interface RdsNewReplica {
  h: HerdRef;
  source: InstanceRef;
  region: string;
  sourceId: string;
  /** The new DB instance's identifier. */
  identifier: string;
  p: { instanceClass: string; availabilityZone: string | undefined };
  bounds: ReturnType<typeof rdsWaitBounds>;
}

/**
 * A read replica of `h`'s source, made by RDS of the class (and in the zone) asked for, entered in the
 * herd, then streaming; or why not (what only a herd pgherd lays replicas out on takes, a class RDS
 * does not offer there, a zone of another region).
 */
export function planRdsAddReplica<S>(h: HerdRef, ask: AddReplicaAsk, offers?: RdsOffers): ActionPlan<S> | Refusal {
  const given = NOT_FOR_RDS.filter((k) => ask[k] !== undefined);
  if (given.length || ask.market !== 'on-demand' || ask.seed !== 'auto')
    return refuse(
      'params',
      `RDS makes ${h.label}'s read replica itself: give instanceClass (and availabilityZone), not ${[...given, ...(ask.market !== 'on-demand' ? ['market'] : []), ...(ask.seed !== 'auto' ? ['seed'] : [])].join(', ')} (for a herd pgherd lays replicas out on)`,
    );
  if (!ask.instanceClass)
    return refuse('params', `RDS makes ${h.label}'s read replica: give instanceClass, an RDS class such as db.m6i.large`);
  const p = { instanceClass: ask.instanceClass, availabilityZone: ask.availabilityZone };
  const source = h.members.find((m) => m.role === 'primary' && m.state === 'running');
  if (!h.members.some((m) => m.rds)) return refuse('not-applicable', `${h.label} is not run by RDS: use Add replica`);
  if (!source?.rds) return refuse('topology', `${h.label} has no running source RDS DB instance for a read replica to be made from`);
  const { region, identifier: sourceId } = source.rds;
  const identifier = newReplicaIdentifier(
    sourceId,
    h.members.map((m) => m.hostname),
  );
  // A zone of the region: the region and a letter, or a Local Zone's name under it.
  if (p.availabilityZone && !new RegExp(`^${region}([a-z]|-[a-z]+-\\d+[a-z])$`).test(p.availabilityZone))
    return refuse('cloud', `${p.availabilityZone} is not a zone of ${region}, the source's region`);
  const offered = offers?.get(h.id);
  if (offered instanceof Refusal) return offered;
  if (offered) {
    const [zone, classes] = [...offered.zones][0] ?? ['', new Set<string>()];
    if (!classes.size)
      return refuse('cloud', `RDS offers no class for PostgreSQL ${offered.engineVersion} in ${zone || 'the source\u2019s zone'}`);
    if (!classes.has(p.instanceClass))
      return refuse('cloud', `${p.instanceClass} is not an RDS class for PostgreSQL ${offered.engineVersion} in ${zone}`);
  }
  const z: RdsNewReplica = { h, source, region, sourceId, identifier, p, bounds: rdsWaitBounds() };
  const prices = priceList();
  const perHour = prices.perHour(region, p.instanceClass);
  return {
    steps: [createReplicaStep<S>(z), newReplicaStreamingStep<S>(z)],
    warnings: productionWarning(h),
    cost: { nowPerHour: 0, afterPerHour: perHour },
    facts: newReplicaFacts(z, prices, perHour),
  };
}

/** RDS asked for the read replica (CreateDBInstanceReadReplica), waited on until available with an endpoint, then entered in the herd. */
function createReplicaStep<S>(z: RdsNewReplica): ActionStep<S> {
  const { h, source, region, sourceId, identifier, p, bounds } = z;
  return {
    name: 'RDS: create the read replica',
    does: {
      kind: 'rds.create-read-replica',
      source: sourceId,
      identifier,
      instanceClass: p.instanceClass,
      zone: p.availabilityZone ?? null,
    },
    says: `ask RDS for ${identifier}, a read replica of ${sourceId}, ${p.instanceClass}${p.availabilityZone ? ` in ${p.availabilityZone}` : ''}, and wait until RDS says it is available (at most ${bounds.maxWaitSeconds} s)`,
    timeoutMs: (bounds.maxWaitSeconds + 60) * 1000,
    run: async (x) => {
      const notOurs = await recheckRdsIdentity(x.deps.db, source.serverId, region, sourceId);
      if (notOurs) throw refuse('cloud', `${notOurs}; nothing was asked of RDS`);
      const client = rdsClient(region);
      await createReadReplica(
        client,
        {
          identifier,
          source: sourceId,
          instanceClass: p.instanceClass,
          ...(p.availabilityZone ? { availabilityZone: p.availabilityZone } : {}),
          tags: { 'pgherd:environment': h.environment, 'pgherd:herd': h.name, 'pgherd:operation': String(x.deps.operation?.id ?? '') },
        },
        x.signal,
      );
      const now = await waitRdsNoted(
        x,
        region,
        identifier,
        'available with an endpoint',
        (i) => i.status === 'available' && i.endpoint !== null,
        bounds,
      );
      await enterInHerd(x, z, now);
      x.deps.outcome?.(`${identifier} created (${now.instanceClass} in ${now.availabilityZone})`);
    },
  };
}

/** The new DB instance entered in the herd as discovery would enter it: its server (the DB instance), its instance at the endpoint; audited. */
async function enterInHerd<S>(x: RunContext<S>, { h, source, sourceId, identifier }: RdsNewReplica, now: RdsInstance): Promise<void> {
  const [srv] = await x.deps.db
    .select({ environmentId: servers.environmentId, site: servers.site })
    .from(servers)
    .where(eq(servers.id, source.serverId));
  const endpoint = now.endpoint;
  if (!srv || !endpoint) throw new Error(`the source's server is gone from the inventory; ${identifier} runs in RDS`);
  const at = new Date();
  await x.deps.db.transaction(async (tx) => {
    const [made] = await tx
      .insert(servers)
      .values({
        hostname: identifier,
        environmentId: srv.environmentId,
        address: endpoint.address,
        site: now.availabilityZone || srv.site,
        ...rdsIdentity(now, at),
      })
      .returning({ id: servers.id });
    if (!made) throw new Error(`server ${identifier} was not entered`);
    await tx.insert(instances).values({
      herdId: h.id,
      serverId: made.id,
      port: endpoint.port,
      pgVersion: source.pgVersion,
      role: 'replica',
      state: 'running',
      upstreamInstanceId: source.id,
    });
    await writeAudit(tx, {
      user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
      action: 'server.created',
      objectType: 'servers',
      objectId: String(made.id),
      objectLabel: `${identifier}${x.deps.operation ? ` (operation #${String(x.deps.operation.id)})` : ''}`,
      environmentId: srv.environmentId,
      changes: { rds: [null, identifier], instanceClass: [null, now.instanceClass], source: [null, sourceId] },
    });
  });
}

/** The new replica, as the inventory now has it, streaming from the source; then its row refreshed. */
function newReplicaStreamingStep<S>({ h, sourceId, identifier }: RdsNewReplica): ActionStep<S> {
  return {
    name: 'streaming',
    does: { kind: 'pg.wait-streaming', identifier },
    says: `wait until ${identifier} streams from ${sourceId}`,
    timeoutMs: STREAMING_MS + 10_000,
    run: async (x) => {
      const [m] = (await loadInstanceRefs(x.deps.db, [], { herdIds: [h.id] })).filter((r) => r.hostname === identifier);
      if (!m) throw new Error(`${identifier} is not in the herd`);
      const o = await waitObserved(m, 'streaming', (v) => v.reachable && v.walReceiver?.status === 'streaming', {
        timeoutMs: STREAMING_MS,
        signal: x.signal,
      });
      x.note({ stdout: `streaming from ${o.walReceiver?.senderHost ?? '?'}` });
      await refreshStep(m).run(x);
    },
  };
}

/** The confirmation page's facts of a new RDS read replica: its name, class and zone, its source, its cost. */
function newReplicaFacts({ source, region, sourceId, identifier, p }: RdsNewReplica, prices: PriceList, perHour: number | null) {
  return [
    {
      label: 'New read replica',
      value: `${identifier}, ${p.instanceClass}${p.availabilityZone ? ` in ${p.availabilityZone}` : ' (RDS picks the zone)'}`,
    },
    { label: 'Source', value: `${source.label} (RDS ${sourceId})` },
    {
      label: 'Cost',
      value:
        perHour === null
          ? `unknown (no price for ${p.instanceClass} in ${region})`
          : `+$${(perHour * HOURS_PER_MONTH).toFixed(2)}/month (+$${perHour.toFixed(4)}/h); ${prices.source}, as of ${prices.date}`,
    },
  ];
}

/** Add replica on a herd RDS runs: CreateDBInstanceReadReplica of the class and zone asked for. */
export const rdsReplicaMaker: ReplicaMaker<AddReplicaAsk> = {
  prepare: prepareRdsOffers,
  plan: (h, ask, prepared) => planRdsAddReplica(h, ask, prepared as RdsOffers),
};
