// Resize an RDS read replica: the same action, parameters, ranking, cost preview, DNS drain and rules as
// an EC2 replica's (Resize's EC2 plan, planEc2Resize), through the RDS API only. Its names are drained and their TTL
// waited out; RDS is asked for the new class, applied now (the fallback classes in order when RDS has no
// capacity for one); RDS's own status is waited on until it says available with the new class; the
// replica must stream again with lag under the bound before its names come back. Nothing runs on the
// host: RDS gives none.
import { eq } from 'drizzle-orm';
import { servers } from '@/db/schema';
import { awsErrorText } from '@/lib/adapters/aws/errors';
import { ec2Client, rdsClient } from '@/lib/adapters/aws/config';
import { describeRds, isRdsCapacityOrClassRefusal, modifyClass, rdsWaitBounds, type RdsInstance } from '@/lib/adapters/aws/rds';
import { waitRdsNoted } from './steps';
import { awsEnvironments } from '@/lib/adapters/aws/environments';
import { writeAudit } from '@/lib/engine/write-audit';
import { commonWarnings, type ActionDeps, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import type { DnsRecordRef, HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, type Observed } from '@/lib/fleet/observe';
import { errorText } from '@/lib/engine/errors';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { rdsCatalogueFor, RDS_ARCHITECTURE } from '@/lib/fleet/cloud/catalogue';
import { HOURS_PER_MONTH, priceLine, signedDollars, type PriceList } from '@/lib/fleet/cloud/prices';
import { rankTypes, type Ranking, type ResizeWish, type TypeChoice } from '@/lib/fleet/cloud/rank';
import { rdsDetails, rdsIdentityProblem, recheckRdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import { DEFAULT_MAX_LAG_SECONDS, namesBack, replicaDrain, streamingStep } from '@/lib/actions/steps/drain-steps';

/** What the plan needs of one RDS target: the DB instance as RDS has it now, and the ranking of its classes. */
export interface RdsTarget {
  region: string;
  identifier: string;
  live: RdsInstance | null;
  ranking: Ranking | null;
  /** Why RDS does not confirm the DB instance as the server's (environment, endpoint), or null when it does. */
  identity: string | null;
}

/** What the steps share (a resize's state has it all). */
export interface RdsResizeState {
  attempts: { type: string; error: string }[];
  landed: string | null;
}

/** What planning an RDS resize reads: the resize's parameters and what its prepare read. */
export interface RdsResizeContext {
  members: InstanceRef[];
  params: { maxLagSeconds?: number };
  prepared: { rds: Map<number, RdsTarget>; herds: Map<number, HerdRef>; prices: { source: string; date: string } };
}

/** The servers' RDS DB instances as RDS has them now and, when a class is wished for, the ranking of each one's classes. */
export async function prepareRds(
  rows: { id: number; hostname: string; address: string; cloudRegion: string | null; cloudInstanceId: string | null }[],
  environmentOf: (serverId: number) => string,
  portsOf: (serverId: number) => number[],
  wishFor: (serverId: number) => ResizeWish | null,
  wished: boolean,
  prices: PriceList,
  endpoint: string,
): Promise<Map<number, RdsTarget>> {
  const out = new Map<number, RdsTarget>();
  const mapping = awsEnvironments();
  for (const s of rows) {
    const region = s.cloudRegion ?? '';
    const identifier = s.cloudInstanceId ?? '';
    const live = await describeRds(rdsClient(region), region, identifier);
    let ranking: Ranking | null = null;
    const w = wishFor(s.id);
    if (live && wished && !w) ranking = { ok: false, reason: `backTo names no class for the DB instance ${identifier}` };
    if (live && w) {
      const c = await rdsCatalogueFor(ec2Client(region), rdsClient(region), region, live.availabilityZone, live.engineVersion, {
        endpoint,
        prices,
        multiAz: live.multiAz,
      });
      ranking = rankTypes(
        {
          instanceId: identifier,
          region,
          availabilityZone: live.availabilityZone,
          instanceType: live.instanceClass,
          architecture: RDS_ARCHITECTURE,
          enaSupport: true,
          virtualization: 'hvm',
        },
        w,
        c,
      );
    }
    out.set(s.id, {
      region,
      identifier,
      live,
      ranking,
      identity: live
        ? rdsIdentityProblem(
            { hostname: s.hostname, address: s.address, environment: environmentOf(s.id), ports: portsOf(s.id) },
            identifier,
            live,
            mapping,
          )
        : null,
    });
  }
  return out;
}

const classLine = (c: TypeChoice) => `${c.name}: ${c.vcpus} vCPU, ${c.memoryGiB} GiB, ${priceLine(c.perHour)}`;

/** What the steps of one RDS replica's resize share: the replica, its DB instance as RDS and the ranking have it, the bounds. */
interface RdsResize {
  t: InstanceRef;
  c: RdsTarget;
  live: RdsInstance;
  r: Extract<Ranking, { ok: true }>;
  bounds: ReturnType<typeof rdsWaitBounds>;
  /** The target class, then the fallbacks in order. */
  classes: string[];
  rds: () => ReturnType<typeof rdsClient>;
  arg: { identifier: string; region: string };
}

/** One RDS replica's resize, or why it is refused. */
export function planRdsResize<S extends RdsResizeState>(
  t: InstanceRef,
  { members, params, prepared: p }: RdsResizeContext,
): ActionPlan<S> | Refusal {
  const c = p.rds.get(t.serverId);
  if (!c) return refuse('cloud', `${t.hostname} has no RDS identity: run discovery`);
  if (t.role === 'primary' || t.observedRole === 'primary')
    return refuse(
      'not-applicable',
      `${t.label} is its herd's source (it takes the writes): RDS restarts an instance to change its class, so Resize takes read replicas only, drained first`,
    );
  if (!c.live) return refuse('cloud', `RDS does not know ${c.identifier} in ${c.region} (deleted, or another account)`);
  if (c.identity) return refuse('cloud', c.identity);
  if (c.live.status !== 'available')
    return refuse('cloud', `RDS says ${c.identifier} is ${c.live.status}: a resize starts from an available instance`);
  if (t.state !== 'running') return refuse('not-applicable', `${t.label} is ${t.state}: a resize drains and restarts a running replica`);
  if (!c.ranking) return refuse('cloud', `no class catalogue for ${c.region}`);
  if (!c.ranking.ok) return refuse('cloud', c.ranking.reason);
  const r = c.ranking;
  const herd = p.herds.get(t.herdId);
  if (!herd) return refuse('gone', 'its herd was deleted from the inventory');
  const maxLag = params.maxLagSeconds ?? DEFAULT_MAX_LAG_SECONDS;
  if (r.target.name === r.current.name) return finishRds<S>(t, members, herd, c, r.current, maxLag);
  const drain = replicaDrain<S>(herd, members, t, maxLag);
  if (drain instanceof Refusal) return drain;
  const z: RdsResize = {
    t,
    c,
    live: c.live,
    r,
    bounds: rdsWaitBounds(),
    classes: [r.target.name, ...r.fallbacks.map((f) => f.name)],
    rds: () => rdsClient(c.region),
    arg: { identifier: c.identifier, region: c.region },
  };
  return {
    steps: [
      checkRdsStep<S>(z),
      ...drain.steps,
      newClassStep<S>(z),
      availableAgainStep<S>(z),
      streamingStep<S>(t, maxLag),
      recordClassStep<S>(z),
      refreshStep(t),
    ],
    warnings: commonWarnings(t),
    before: { instanceType: r.current.name },
    cost: { nowPerHour: r.current.perHour, afterPerHour: r.target.perHour },
    facts: rdsResizeFacts(z, p.prices, drain.drained),
  };
}

/** Still available as planned, and still the server's: else nothing is changed. */
function checkRdsStep<S extends RdsResizeState>({ t, c, r, rds, arg }: RdsResize): ActionStep<S> {
  return {
    name: 'check the RDS instance',
    does: { kind: 'rds.check-available', ...arg, instanceClass: r.current.name },
    says: `check that RDS says ${c.identifier} is available as ${r.current.name}`,
    timeoutMs: 60_000,
    run: async (x) => {
      const now = await describeRds(rds(), c.region, c.identifier, x.signal);
      if (!now) throw refuse('cloud', `RDS no longer knows ${c.identifier}; nothing was changed`);
      const notOurs = await recheckRdsIdentity(x.deps.db, t.serverId, c.region, c.identifier);
      if (notOurs) throw refuse('cloud', `${notOurs}; nothing was changed`);
      if (now.status !== 'available' || now.instanceClass !== r.current.name)
        throw refuse(
          'cloud',
          `${c.identifier} is now ${now.status}, ${now.instanceClass} (planned: available, ${r.current.name}); nothing was changed`,
        );
      x.note({ stdout: `${c.identifier}: available, ${now.instanceClass}${now.multiAz ? ', Multi-AZ' : ''}` });
    },
  };
}

/** Unless it answers as a primary (or RDS says it is no read replica now): the new class asked of RDS, else each fallback in turn. */
function newClassStep<S extends RdsResizeState>({ t, c, r, classes, rds, arg }: RdsResize): ActionStep<S> {
  return {
    name: 'RDS: new class',
    does: { kind: 'rds.modify-class', ...arg, classes, applyImmediately: true },
    says: `unless it answers as a primary: ask RDS for ${classes.join(', else ')}, applied now (RDS restarts it)`,
    timeoutMs: 120_000,
    run: async (x) => {
      // Asked now, not at the first step: a replica promoted during the drain's wait is a primary now.
      const o = await observe(t).catch((err: unknown): Observed => ({ reachable: false, error: errorText(err) }));
      if (o.reachable && o.inRecovery === false)
        throw refuse('topology', `${t.label} answers as a primary: Resize takes read replicas only; nothing was asked of RDS`);
      const notOurs = await recheckRdsIdentity(x.deps.db, t.serverId, c.region, c.identifier);
      if (notOurs) throw refuse('cloud', `${notOurs}; nothing was asked of RDS`);
      // Asked again at the last moment: a change made meanwhile (the drain's wait) is not overwritten.
      const now = await describeRds(rds(), c.region, c.identifier, x.signal);
      if (now && !now.sourceIdentifier)
        throw refuse(
          'topology',
          `RDS says ${c.identifier} is no read replica now (promoted?): Resize takes read replicas only; nothing was asked of RDS`,
        );
      if (now?.status !== 'available' || now.instanceClass !== r.current.name || now.pendingClass)
        throw refuse(
          'cloud',
          `${c.identifier} is now ${now?.status ?? 'unknown to RDS'}, ${now?.instanceClass ?? '?'}${now?.pendingClass ? ` (${now.pendingClass} pending)` : ''} (planned: available, ${r.current.name}); nothing was asked of RDS`,
        );
      const lines: string[] = [];
      for (const cls of classes) {
        try {
          await modifyClass(rds(), c.identifier, cls, x.signal);
          x.state.landed = cls;
          lines.push(`${cls}: accepted`);
          break;
        } catch (err) {
          if (!isRdsCapacityOrClassRefusal(err)) throw err;
          x.state.attempts.push({ type: cls, error: awsErrorText(err) });
          lines.push(`${cls}: ${awsErrorText(err)}`);
        }
      }
      x.note({ stdout: lines.join('\n') });
      if (!x.state.landed) {
        x.deps.outcome?.(`still ${r.current.name}`);
        throw new Error(
          `RDS had no class to give: ${x.state.attempts.map((a) => `${a.type}: ${a.error}`).join('; ')}; ${c.identifier} was not changed and still runs ${r.current.name}`,
        );
      }
    },
  };
}

/** RDS's status waited on until it says available with the class it took; what it says recorded. */
function availableAgainStep<S extends RdsResizeState>({ t, c, r, bounds, arg }: RdsResize): ActionStep<S> {
  return {
    name: 'RDS: available again',
    does: { kind: 'rds.wait-available', ...arg, maxWaitSeconds: bounds.maxWaitSeconds },
    says: `wait until RDS says ${c.identifier} is available with its new class (at most ${bounds.maxWaitSeconds} s)`,
    timeoutMs: (bounds.maxWaitSeconds + 30) * 1000,
    run: async (x) => {
      const landed = x.state.landed ?? r.target.name;
      const now = await waitRdsNoted(
        x,
        c.region,
        c.identifier,
        `available as ${landed}`,
        (i) => i.status === 'available' && i.instanceClass === landed && !i.pendingClass,
        bounds,
      );
      await recordClass(x.deps, t, now);
    },
  };
}

/** The class RDS says it runs as, into the inventory. */
function recordClassStep<S extends RdsResizeState>({ t, c, rds, arg }: RdsResize): ActionStep<S> {
  return {
    name: 'record the new class',
    does: { kind: 'inventory.record-type', ...arg, server: t.serverId },
    says: 'record the class RDS says it runs as in the inventory',
    timeoutMs: 30_000,
    run: async (x) => {
      const now = await describeRds(rds(), c.region, c.identifier, x.signal);
      if (!now) throw new Error(`RDS no longer knows ${c.identifier}`);
      await recordClass(x.deps, t, now);
      x.deps.outcome?.(`now ${now.instanceClass}`);
    },
  };
}

/** The confirmation page's facts of an RDS resize: the DB instance, the classes, the cost change, the names drained. */
function rdsResizeFacts({ c, live, r }: RdsResize, prices: { source: string; date: string }, drained: DnsRecordRef[]) {
  const change = r.target.perHour !== null && r.current.perHour !== null ? r.target.perHour - r.current.perHour : null;
  return [
    {
      label: 'RDS instance',
      value: `${c.identifier} in ${live.availabilityZone} (PostgreSQL ${live.engineVersion}${live.multiAz ? ', Multi-AZ: priced twice' : ''})`,
    },
    { label: 'Class now', value: classLine(r.current) },
    { label: 'Target class', value: classLine(r.target) },
    { label: 'Fallbacks, in order', value: r.fallbacks.length ? r.fallbacks.map(classLine).join('; ') : 'none' },
    {
      label: 'Cost change',
      value:
        change === null
          ? 'unknown (no price for one of the classes)'
          : `${signedDollars(change * HOURS_PER_MONTH)}/month (${signedDollars(change)}/h), with the target class`,
    },
    { label: 'Prices', value: `${prices.source} (RDS classes: PostgreSQL, Single-AZ), as of ${prices.date}` },
    {
      label: 'DNS drained',
      value: drained.length ? drained.map((d) => `${d.name} (TTL ${d.ttl} s)`).join(', ') : 'no DNS name points at it',
    },
  ];
}

/** The replica runs the class asked for already: only made sure of (streaming, its names on it). */
function finishRds<S>(t: InstanceRef, members: InstanceRef[], herd: HerdRef, c: RdsTarget, now: TypeChoice, maxLag: number): ActionPlan<S> {
  const back = namesBack<S>(herd, members, t, (rec) => `${rec.name} pointed at ${t.hostname} again (where a drain may have left it)`).steps;
  return {
    steps: [streamingStep<S>(t, maxLag), ...back, refreshStep(t)],
    warnings: [],
    facts: [
      {
        label: 'Class now',
        value: `${classLine(now)}: already the class asked for. Nothing is asked of RDS (${c.identifier}); its DNS names are pointed at it again once it streams`,
      },
    ],
    cost: { nowPerHour: now.perHour, afterPerHour: now.perHour },
  };
}

/** What RDS says the DB instance is now (class, status, details), into the inventory; a class change audited once. */
export async function recordClass(deps: ActionDeps, t: InstanceRef, now: RdsInstance) {
  const [before] = await deps.db.select({ type: servers.cloudInstanceType }).from(servers).where(eq(servers.id, t.serverId));
  const was = before?.type ?? null;
  await deps.db
    .update(servers)
    .set({ cloudInstanceType: now.instanceClass, cloudState: now.status, cloudDetails: rdsDetails(now), cloudSeenAt: new Date() })
    .where(eq(servers.id, t.serverId));
  if (was !== null && now.instanceClass !== was)
    await writeAudit(deps.db, {
      user: deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
      action: 'server.resized',
      objectType: 'servers',
      objectId: String(t.serverId),
      objectLabel: `${t.hostname}${deps.operation ? ` (operation #${deps.operation.id})` : ''}`,
      environmentId: t.serverEnvironmentId,
      changes: { instanceType: [was, now.instanceClass] },
    });
}
