// Reboot an RDS DB instance through the RDS API (RebootDBInstance), with failover for a Multi-AZ one (its
// standby in another zone takes over; RDS refuses it for a Single-AZ instance, and so does the plan).
// RDS's status is waited on until it says available again, then Postgres must answer at the endpoint (a
// replica: stream again). RDS's Restart: it gives no shell for pg_ctl.
import { rdsClient } from '@/lib/adapters/aws/config';
import { rdsWaitBounds, rebootRds } from '@/lib/adapters/aws/rds';
import { waitRdsNoted } from './steps';
import { commonWarnings, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { waitObserved } from '@/lib/fleet/observe';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { rdsDetails, recheckRdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import type { RdsTarget } from './resize';
import { eq } from 'drizzle-orm';
import { servers } from '@/db/schema';

/** How long Postgres may take to answer (a replica: to stream) once RDS says available. */
const UP_TIMEOUT_MS = 120_000;

export function planRdsReboot<S>(t: InstanceRef, rds: Map<number, RdsTarget>, failover: boolean): ActionPlan<S> | Refusal {
  if (!t.rds) return refuse('not-applicable', `${t.label} is not an RDS DB instance: RDS cannot reboot it`);
  const c = rds.get(t.serverId);
  if (!c) return refuse('cloud', `${t.hostname} has no RDS identity: run discovery`);
  if (!c.live) return refuse('cloud', `RDS does not know ${c.identifier} in ${c.region} (deleted, or another account)`);
  if (c.identity) return refuse('cloud', c.identity);
  if (c.live.status !== 'available')
    return refuse('not-applicable', `RDS says ${c.identifier} is ${c.live.status}: a reboot starts from an available instance`);
  if (failover && !c.live.multiAz)
    return refuse(
      'not-applicable',
      `${c.identifier} is Single-AZ: RDS reboots with failover only a Multi-AZ instance (it has no standby to fail over to)`,
    );
  const bounds = rdsWaitBounds();
  const replica = t.role === 'replica';
  const steps: ActionStep<S>[] = [
    {
      name: failover ? 'RDS: reboot with failover' : 'RDS: reboot',
      does: { kind: 'rds.reboot', identifier: c.identifier, region: c.region, failover },
      says: `ask RDS to reboot ${c.identifier}${failover ? ' with failover (its standby takes over)' : ''} and wait until it says available again (at most ${bounds.maxWaitSeconds} s)`,
      timeoutMs: (bounds.maxWaitSeconds + 30) * 1000,
      run: async (x) => {
        const notOurs = await recheckRdsIdentity(x.deps.db, t.serverId, c.region, c.identifier);
        if (notOurs) throw refuse('cloud', `${notOurs}; nothing was asked of RDS`);
        const client = rdsClient(c.region);
        await rebootRds(client, c.identifier, failover, x.signal);
        // RDS says rebooting from its answer to the call: available after that is the reboot done.
        const now = await waitRdsNoted(
          x,
          c.region,
          c.identifier,
          'available again',
          (i, seen) => i.status === 'available' && seen.some((st) => st !== 'available'),
          bounds,
        );
        await x.deps.db
          .update(servers)
          .set({
            cloudState: now.status,
            cloudAvailabilityZone: now.availabilityZone,
            cloudDetails: rdsDetails(now),
            cloudSeenAt: new Date(),
          })
          .where(eq(servers.id, t.serverId));
      },
    },
    {
      name: replica ? 'streaming' : 'Postgres up',
      does: { kind: replica ? 'pg.wait-streaming' : 'pg.wait-up', instance: memberArg(t) },
      says: replica ? 'wait until it streams from its source again' : 'wait until Postgres answers at its endpoint',
      timeoutMs: UP_TIMEOUT_MS + 10_000,
      run: async (x) => {
        const o = await waitObserved(
          t,
          replica ? 'streaming' : 'answering',
          (v) => v.reachable && (!replica || v.walReceiver?.status === 'streaming'),
          { timeoutMs: UP_TIMEOUT_MS, signal: x.signal },
        );
        x.note({
          stdout: replica ? `streaming from ${o.walReceiver?.senderHost ?? '?'}` : `answers as a ${o.inRecovery ? 'replica' : 'primary'}`,
        });
      },
    },
    refreshStep(t),
  ];
  return {
    steps,
    warnings: [...commonWarnings(t), `clients of ${t.label} lose their connections while RDS restarts it; its DNS names stay on it`],
    facts: [
      {
        label: 'RDS instance',
        value: `${c.identifier} (${c.live.instanceClass}) in ${c.live.availabilityZone}${c.live.multiAz ? ', Multi-AZ' : ''}`,
      },
    ],
  };
}
