import { defineAction } from '../define-action';
import { observe, waitObserved, type Observed } from '../observe';
import { step } from '../pipeline';
import { refreshStep, sshControlStep } from './control-steps';

export const startAction = defineAction({
  name: 'start',
  label: 'Start',
  permission: 'operator',
  dangerous: false,
  plan: (t) => ({
    steps: [`${t.controlDriver} start on ${t.ssh.host} (${t.dataDirectory})`, `wait until ${t.host}:${t.port} accepts connections`],
    refused: t.state === 'fenced' ? 'fenced after a failover: rebuild it before starting it again' : undefined,
    warnings: t.state === 'running' ? ['the inventory says it is running already; start will only confirm that'] : [],
  }),
  steps: (t, deps) => {
    let running = false;
    let after: Observed | undefined;
    return [
      step('check whether it already runs', async (ctx) => {
        running = (await observe(t)).reachable;
        ctx.note({ stdout: running ? 'already accepting connections: nothing to start' : 'not accepting connections' });
      }, { timeoutMs: 10_000 }),
      sshControlStep(t, deps, 'start', 'start', () => running && 'it already accepts connections'),
      step('wait until it accepts connections', async (ctx) => { after = await waitObserved(t, 'accepting connections', (o) => o.reachable, { signal: ctx.signal }); }, { timeoutMs: 90_000 }),
      refreshStep(t, deps, () => after),
    ];
  },
});
