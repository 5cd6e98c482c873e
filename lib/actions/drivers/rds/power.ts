// Power off and on an RDS DB instance: StopDBInstance and StartDBInstance, each followed by RDS's own status
// until it says stopped or available (bounded), the inventory told what RDS says. RDS stops neither a
// read replica nor a source that has read replicas: those are refused with RDS's reason, before RDS is
// asked. What the power actions' rules and reverse do with EC2 hosts (a dev herd parked at night) they do
// with a lone RDS instance.
import { waitRdsNoted } from './steps';
import { eq } from 'drizzle-orm';
import type { Db } from '@/db/client';
import { instances, servers } from '@/db/schema';
import { rdsClient } from '@/lib/adapters/aws/config';
import { describeRds, rdsWaitBounds, startRds, stopRds } from '@/lib/adapters/aws/rds';
import { commonWarnings, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import { namesBack } from '@/lib/actions/steps/drain-steps';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { waitObserved } from '@/lib/fleet/observe';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { rdsDetails, recheckRdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import type { RdsTarget } from './resize';

/** How long Postgres may take to answer once RDS says available. */
const UP_TIMEOUT_MS = 120_000;

/** The target's DB instance, or why it cannot be powered off or on (RDS's own rules). */
function rdsOf(t: InstanceRef, rds: Map<number, RdsTarget>, wanted: 'available' | 'stopped'): RdsTarget | Refusal {
  const c = rds.get(t.serverId);
  if (!c) return refuse('cloud', `${t.hostname} has no RDS identity: run discovery`);
  if (!c.live) return refuse('cloud', `RDS does not know ${c.identifier} in ${c.region} (deleted, or another account)`);
  if (c.identity) return refuse('cloud', c.identity);
  if (wanted === 'available') {
    if (c.live.sourceIdentifier)
      return refuse('not-applicable', `${c.identifier} is a read replica of ${c.live.sourceIdentifier}: RDS does not stop a read replica`);
    if (c.live.replicaIdentifiers.length)
      return refuse(
        'not-applicable',
        `${c.identifier} has read replicas (${c.live.replicaIdentifiers.join(', ')}): RDS does not stop a DB instance that has read replicas`,
      );
  }
  if (c.live.status !== wanted)
    return refuse(
      'not-applicable',
      `RDS says ${c.identifier} is ${c.live.status}: power ${wanted === 'available' ? 'off' : 'on'} needs it ${wanted}`,
    );
  return c;
}

const fact = (c: RdsTarget) => ({
  label: 'RDS instance',
  value: `${c.identifier} (${c.live?.instanceClass ?? '?'}) in ${c.live?.availabilityZone ?? '?'}`,
});

async function recordRds(db: Db, t: InstanceRef, c: RdsTarget) {
  const now = await describeRds(rdsClient(c.region), c.region, c.identifier);
  if (now)
    await db
      .update(servers)
      .set({ cloudState: now.status, cloudDetails: rdsDetails(now), cloudSeenAt: new Date() })
      .where(eq(servers.id, t.serverId));
  return now;
}

/** Power off: RDS stops the DB instance; the inventory says stopped. */
export function planRdsPowerOff<S>(t: InstanceRef, rds: Map<number, RdsTarget>): ActionPlan<S> | Refusal {
  const c = rdsOf(t, rds, 'available');
  if (c instanceof Refusal) return c;
  const bounds = rdsWaitBounds();
  const steps: ActionStep<S>[] = [
    {
      name: 'RDS: stop',
      does: { kind: 'rds.stop', identifier: c.identifier, region: c.region },
      says: `ask RDS to stop ${c.identifier} and wait until it says stopped (at most ${bounds.maxWaitSeconds} s)`,
      timeoutMs: (bounds.maxWaitSeconds + 30) * 1000,
      run: async (x) => {
        const notOurs = await recheckRdsIdentity(x.deps.db, t.serverId, c.region, c.identifier);
        if (notOurs) throw refuse('cloud', `${notOurs}; nothing was asked of RDS`);
        await stopRds(rdsClient(c.region), c.identifier, x.signal);
        await waitRdsNoted(x, c.region, c.identifier, 'stopped', (i) => i.status === 'stopped', bounds);
        await recordRds(x.deps.db, t, c);
        await x.deps.db.update(instances).set({ state: 'stopped' }).where(eq(instances.id, t.id));
        x.deps.outcome?.(`${c.identifier} stopped`);
      },
    },
  ];
  return {
    steps,
    before: { state: 'running' },
    warnings: [
      ...commonWarnings(t),
      'RDS starts a stopped DB instance again by itself after seven days (its own rule): a rule that parks it must start it within them',
    ],
    facts: [fact(c)],
  };
}

/** Power on: RDS starts the DB instance; Postgres answers; its names point at it again. */
export function planRdsPowerOn<S>(
  t: InstanceRef,
  members: InstanceRef[],
  herd: HerdRef | undefined,
  rds: Map<number, RdsTarget>,
): ActionPlan<S> | Refusal {
  const c = rdsOf(t, rds, 'stopped');
  if (c instanceof Refusal) return c;
  const bounds = rdsWaitBounds();
  const back = namesBack<S>(herd, members, t, (rec) => `point ${rec.name} at it again`);
  const { names } = back;
  const steps: ActionStep<S>[] = [
    {
      name: 'RDS: start',
      does: { kind: 'rds.start', identifier: c.identifier, region: c.region },
      says: `ask RDS to start ${c.identifier} and wait until it says available (at most ${bounds.maxWaitSeconds} s)`,
      timeoutMs: (bounds.maxWaitSeconds + 30) * 1000,
      run: async (x) => {
        const notOurs = await recheckRdsIdentity(x.deps.db, t.serverId, c.region, c.identifier);
        if (notOurs) throw refuse('cloud', `${notOurs}; nothing was asked of RDS`);
        await startRds(rdsClient(c.region), c.identifier, x.signal);
        await waitRdsNoted(x, c.region, c.identifier, 'available', (i) => i.status === 'available', bounds);
        await recordRds(x.deps.db, t, c);
      },
    },
    {
      name: 'Postgres up',
      does: { kind: 'pg.wait-up', instance: memberArg(t) },
      says: 'wait until Postgres answers at its endpoint',
      timeoutMs: UP_TIMEOUT_MS + 10_000,
      run: async (x) => {
        const o = await waitObserved(t, 'answering', (v) => v.reachable, { timeoutMs: UP_TIMEOUT_MS, signal: x.signal });
        x.note({ stdout: `answers as a ${o.inRecovery ? 'replica' : 'primary'}` });
      },
    },
    ...back.steps,
    refreshStep(t),
  ];
  return {
    steps,
    before: { state: 'stopped' },
    warnings: commonWarnings(t),
    facts: [fact(c), { label: 'DNS names', value: names.length ? names.map((n) => n.name).join(', ') : 'none point at it' }],
  };
}
