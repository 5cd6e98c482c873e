// DR failover: the primary is lost (or must be given up), asked of the herd's driver: pg_ctl's fences
// the old primary over SSH and promotes the replica with the most WAL when it runs; Patroni's asks
// POST /failover (its leader key is the fence); RDS's promotes a read replica. What the old primary may
// have committed that no replica received is reported.
import { asks, planFailoverOf } from '@/lib/actions/drivers';
import { defineHerdAction } from '@/lib/engine/define-action';
import { drFailoverParams } from '@/lib/actions/drivers/failover';

export const drFailoverAction = defineHerdAction({
  name: 'dr-failover',
  control: asks('failover'),
  label: 'DR failover',
  permission: 'admin',
  dangerous: true,
  // Whether the primary is lost is judged by a person at the moment, never by a clock.
  schedulable: false,
  // A lost primary cannot wait behind a seed or a resize: it preempts whatever holds the herd.
  urgent: true,
  params: {
    schema: drFailoverParams,
    attestations: ['fencedByOperator'],
    fields: [
      {
        name: 'candidateInstanceId',
        label: 'New primary',
        kind: 'herd-member',
        emptyLabel: 'the reachable replica with the most WAL, measured when it runs',
        help: 'Forcing a replica that has less WAL than another loses more.',
      },
      {
        name: 'fencedByOperator',
        label: 'I have fenced the old primary myself',
        kind: 'flag',
        emptyLabel: 'no: pgherd proves the old primary cannot accept writes before it promotes',
        help: 'Only when it is powered off or cut off from every client: pgherd then promotes without proving that it cannot accept writes.',
      },
    ],
  },
  plan: (h, { params: p }) => planFailoverOf(h, p),
});
