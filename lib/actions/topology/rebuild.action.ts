import { asks, driverOf, lacking, type RebuildState } from '@/lib/actions/drivers';
import { defineAction } from '@/lib/engine/define-action';
import { Refusal } from '@/lib/fleet/refusal';

export const rebuildAction = defineAction({
  name: 'rebuild',
  control: asks('rebuild'),
  label: 'Rebuild from the primary',
  permission: 'operator',
  dangerous: true,
  state: (): RebuildState => ({ rewound: false }),
  // The driver rebuilds it: pg_basebackup or pg_rewind from the primary, Patroni's POST /reinitialize.
  plan: (t, { members, params }) => {
    const d = driverOf(t);
    if (d instanceof Refusal) return d;
    return d.rebuild ? d.rebuild(t, { members, params, prepared: undefined }) : lacking(d, 'rebuild');
  },
});
