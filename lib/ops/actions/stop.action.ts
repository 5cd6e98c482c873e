import { commonWarnings, defineAction } from '../define-action';
import { waitObserved, type Observed } from '../observe';
import { step } from '../pipeline';
import { refreshStep, sshControlStep } from './control-steps';

export const stopAction = defineAction({
  name: 'stop',
  label: 'Stop (fast)',
  permission: 'operator',
  dangerous: true,
  plan: (t) => ({
    steps: [`${t.controlDriver} stop -m fast on ${t.ssh.host} (${t.dataDirectory})`, `wait until ${t.host}:${t.port} refuses connections`],
    warnings: commonWarnings(t),
  }),
  steps: (t, deps) => {
    let after: Observed | undefined;
    return [
      sshControlStep(t, deps, 'stop', 'stop (fast)'),
      step('wait until the port refuses connections', async (ctx) => {
        after = await waitObserved(t, 'stopped', (o) => !o.reachable && !!o.refused, { signal: ctx.signal });
      }, { timeoutMs: 90_000 }),
      refreshStep(t, deps, () => after),
    ];
  },
});
