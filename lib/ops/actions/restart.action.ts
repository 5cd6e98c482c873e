import { commonWarnings, defineAction } from '../define-action';
import { observe, waitObserved, type Observed } from '../observe';
import { step } from '../pipeline';
import { refreshStep, sshControlStep } from './control-steps';

export const restartAction = defineAction({
  name: 'restart',
  label: 'Restart',
  permission: 'operator',
  dangerous: true,
  plan: (t) => ({
    steps: [`${t.controlDriver} restart -m fast on ${t.ssh.host} (${t.dataDirectory})`, 'wait until the postmaster start time has moved'],
    refused: t.state === 'fenced' ? 'fenced after a failover: rebuild it before starting it again' : undefined,
    warnings: commonWarnings(t),
  }),
  steps: (t, deps) => {
    let before: Date | undefined;
    let after: Observed | undefined;
    return [
      step('read the postmaster start time', async (ctx) => {
        const o = await observe(t);
        if (!o.reachable) throw new Error(`${t.label} is not running (${o.error}); use start`);
        before = o.startTime;
        ctx.note({ stdout: `started at ${before?.toISOString()}` });
      }, { timeoutMs: 10_000 }),
      sshControlStep(t, deps, 'restart', 'restart'),
      step('wait until restarted', async (ctx) => {
        after = await waitObserved(t, 'restarted', (x) => x.reachable && !!x.startTime && x.startTime > before!, { signal: ctx.signal });
        ctx.note({ stdout: `started at ${after.startTime?.toISOString()}` });
      }, { timeoutMs: 90_000 }),
      refreshStep(t, deps, () => after),
    ];
  },
});
