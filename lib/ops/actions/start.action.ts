import { defineAction } from '../define-action';
import { observe, waitObserved, type Observed } from '../observe';
import { answeringAsPrimary, observeOthers } from '../herd-primary';
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
  steps: (t, deps, { members }) => {
    let running = false;
    let after: Observed | undefined;
    return [
      step('check whether it already runs, and that it would not be a second primary', async (ctx) => {
        running = (await observe(t)).reachable;
        if (running) return void ctx.note({ stdout: 'already accepting connections: nothing to start' });
        // Started without a standby.signal (recovery.conf before 12) it comes up as a primary: only
        // when no other member of its herd answers as one (an old primary the inventory no longer calls fenced).
        const r = await deps.ssh.exec(t.ssh, ['sh', '-c', 'test -e "$1/standby.signal" || test -e "$1/recovery.signal" || test -e "$1/recovery.conf"', 'sh', t.dataDirectory], { timeoutMs: 15_000, readOnly: true });
        const standby = r.code === 0;
        const writable = standby ? [] : answeringAsPrimary(await observeOthers(t, members));
        ctx.note({ stdout: `not accepting connections; ${standby ? 'configured as a standby' : 'no standby.signal: it would start as a primary'}` });
        if (writable.length) {
          throw new Error(`refused: ${writable.map(({ m, o }) => `${m.label} answers as the herd's primary (timeline ${o.timeline})`).join(', ')}; `
            + `${t.label} has no standby.signal and would start as a second primary. Rebuild it as a replica instead. Nothing was started`);
        }
      }, { timeoutMs: 20_000 }),
      sshControlStep(t, deps, 'start', 'start', () => running && 'it already accepts connections'),
      step('wait until it accepts connections', async (ctx) => { after = await waitObserved(t, 'accepting connections', (o) => o.reachable, { signal: ctx.signal }); }, { timeoutMs: 90_000 }),
      refreshStep(t, deps, () => after),
    ];
  },
});
