import { asks, driverOf, lacking, type ReloadState } from '@/lib/actions/drivers';
import { defineAction } from '@/lib/engine/define-action';
import { Refusal } from '@/lib/fleet/refusal';

export const reloadAction = defineAction({
  name: 'reload',
  control: asks('reload'),
  label: 'Reload configuration',
  permission: 'operator',
  dangerous: false,
  state: (): ReloadState => ({}),
  // The driver reloads it: pg_ctl reload over SSH, Patroni's POST /reload.
  plan: (t, { members, params }) => {
    const d = driverOf(t);
    if (d instanceof Refusal) return d;
    return d.reload ? d.reload(t, { members, params, prepared: undefined }) : lacking(d, 'reload');
  },
});
