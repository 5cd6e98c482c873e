import type { Observed } from '@/lib/fleet/observe';
import { commonWarnings, defineAction } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { waitObserved } from '@/lib/fleet/observe';
import { refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';
import { asks } from '@/lib/actions/drivers';

interface StopState {
  after?: Observed;
}

export const stopAction = defineAction({
  name: 'stop',
  control: asks('stop'),
  label: 'Stop (fast)',
  permission: 'operator',
  dangerous: true,
  state: (): StopState => ({}),
  plan: (t) => ({
    steps: [
      sshControlStep(t, 'stop', 'stop (fast)'),
      {
        name: 'wait until the port refuses connections',
        does: { kind: 'pg.wait-refusing', instance: memberArg(t) },
        says: `wait until ${t.host}:${t.port} refuses connections`,
        timeoutMs: 90_000,
        run: async (x) => {
          x.state.after = await waitObserved(t, 'stopped', (o) => !o.reachable && o.refused === true, { signal: x.signal });
        },
      },
      refreshStep(t, (s) => s.after),
    ],
    warnings: commonWarnings(t),
  }),
});
