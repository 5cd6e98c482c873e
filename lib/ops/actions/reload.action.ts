import { defineAction } from '../define-action';
import { observe, waitObserved, type Observed } from '../observe';
import { step } from '../pipeline';
import { refreshStep, sshControlStep } from './control-steps';

export const reloadAction = defineAction({
  name: 'reload',
  label: 'Reload configuration',
  permission: 'operator',
  dangerous: false,
  plan: (t) => ({
    steps: [`${t.controlDriver} reload on ${t.ssh.host}`, 'wait until pg_conf_load_time() has moved'],
    warnings: [],
  }),
  steps: (t, deps) => {
    let before: Date | undefined;
    let after: Observed | undefined;
    return [
      step('read the configuration load time', async () => {
        const o = await observe(t);
        if (!o.reachable) throw new Error(`${t.label} is not running (${o.error})`);
        before = o.confLoadTime;
      }, { timeoutMs: 10_000 }),
      sshControlStep(t, deps, 'reload', 'reload'),
      step('wait until the configuration is reloaded', async (ctx) => {
        after = await waitObserved(t, 'configuration reloaded', (x) => x.reachable && !!x.confLoadTime && x.confLoadTime > before!, { signal: ctx.signal, timeoutMs: 30_000 });
      }, { timeoutMs: 40_000 }),
      refreshStep(t, deps, () => after),
    ];
  },
});
