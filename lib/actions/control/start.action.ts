import { defineAction } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { answeringAsPrimary, observeOthers } from '@/lib/fleet/herd-primary';
import { observe, waitObserved, type Observed } from '@/lib/fleet/observe';
import { refuse } from '@/lib/fleet/refusal';
import { refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';
import { asks } from '@/lib/actions/drivers';

interface StartState {
  running: boolean;
  after?: Observed;
}

export const startAction = defineAction({
  name: 'start',
  control: asks('start'),
  label: 'Start',
  permission: 'operator',
  dangerous: false,
  state: (): StartState => ({ running: false }),
  plan: (t, { members }) => {
    if (t.state === 'fenced') return refuse('not-applicable', 'fenced after a failover: rebuild it before starting it again');
    return {
      steps: [
        {
          name: 'check whether it already runs, and that it would not be a second primary',
          does: { kind: 'pg.check-no-second-primary', instance: memberArg(t), dataDirectory: t.dataDirectory },
          says: 'check whether it already runs; without a standby.signal it would start as a primary, so then no other member of the herd may answer as one',
          timeoutMs: 20_000,
          run: async (x) => {
            x.state.running = (await observe(t)).reachable;
            if (x.state.running) return void x.note({ stdout: 'already accepting connections: nothing to start' });
            // Started without a standby.signal (recovery.conf before 12) it comes up as a primary: only
            // when no other member of its herd answers as one (an old primary the inventory no longer calls fenced).
            const r = await x.deps.ssh.exec(
              t.ssh,
              [
                'sh',
                '-c',
                'test -e "$1/standby.signal" || test -e "$1/recovery.signal" || test -e "$1/recovery.conf"',
                'sh',
                t.dataDirectory,
              ],
              { timeoutMs: 15_000, readOnly: true },
            );
            const standby = r.code === 0;
            const writable = standby ? [] : answeringAsPrimary(await observeOthers(t, members));
            x.note({
              stdout: `not accepting connections; ${standby ? 'configured as a standby' : 'no standby.signal: it would start as a primary'}`,
            });
            if (writable.length) {
              throw refuse(
                'split-brain',
                `${writable.map(({ m, o }) => `${m.label} answers as the herd's primary (timeline ${o.timeline ?? 'unknown'})`).join(', ')}; ` +
                  `${t.label} has no standby.signal and would start as a second primary. Rebuild it as a replica instead. Nothing was started`,
              );
            }
          },
        },
        sshControlStep(t, 'start', 'start', (s) => s.running && 'it already accepts connections'),
        {
          name: 'wait until it accepts connections',
          does: { kind: 'pg.wait-accepting', instance: memberArg(t) },
          says: `wait until ${t.host}:${t.port} accepts connections`,
          timeoutMs: 90_000,
          run: async (x) => {
            x.state.after = await waitObserved(t, 'accepting connections', (o) => o.reachable, { signal: x.signal });
          },
        },
        refreshStep(t, (s) => s.after),
      ],
      warnings: t.state === 'running' ? ['the inventory says it is running already; start will only confirm that'] : [],
    };
  },
});
