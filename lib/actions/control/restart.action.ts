import { z } from 'zod';
import { asks, driverOf, lacking, prepareDrivers, preparedBy, type RestartState } from '@/lib/actions/drivers';
import { defineAction, flagParam } from '@/lib/engine/define-action';
import { Refusal, refuse } from '@/lib/fleet/refusal';

export const restartAction = defineAction({
  name: 'restart',
  control: asks('restart'),
  label: 'Restart',
  permission: 'operator',
  dangerous: true,
  params: {
    schema: z.object({ pendingOnly: flagParam(), failover: flagParam() }).strict(),
    fields: [
      {
        name: 'pendingOnly',
        label: 'Only if a restart is pending',
        kind: 'flag',
        emptyLabel: 'restart every ticked instance',
        help: 'Restart only the instances whose settings wait for a restart (pending_restart; on a Patroni herd, the members Patroni marks so); the others are left alone, and say so.',
      },
      {
        name: 'failover',
        label: 'With failover (RDS Multi-AZ)',
        kind: 'flag',
        emptyLabel: 'no: restarted where it is',
        help: 'An RDS Multi-AZ instance fails over to its standby in another zone; RDS refuses it for a Single-AZ instance. Elsewhere, use Switchover to move a primary.',
      },
    ],
  },
  prepare: (targets, _params, db) => prepareDrivers('restart', targets, db),
  state: (): RestartState => ({}),
  // The driver restarts it: pg_ctl over SSH, Patroni's POST /restart, RDS's RebootDBInstance.
  plan: (t, { members, params, prepared }) => {
    if (t.state === 'fenced') return refuse('not-applicable', 'fenced after a failover: rebuild it before starting it again');
    const d = driverOf(t);
    if (d instanceof Refusal) return d;
    if (!d.restart) return lacking(d, 'restart');
    return d.restart(t, {
      members,
      params: { pendingOnly: params.pendingOnly === true, failover: params.failover === true },
      prepared: preparedBy(prepared, d),
    });
  },
});
