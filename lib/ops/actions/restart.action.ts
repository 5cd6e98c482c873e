import { commonWarnings, defineAction } from '../define-action';
import { observe, waitObserved, type Observed } from '../observe';
import { refuse } from '../refusal';
import { refreshStep, sshControlStep } from './control-steps';

interface RestartState {
  before?: Date;
  after?: Observed;
}

export const restartAction = defineAction({
  name: 'restart',
  label: 'Restart',
  permission: 'operator',
  dangerous: true,
  state: (): RestartState => ({}),
  plan: (t) => {
    if (t.state === 'fenced') return refuse('not-applicable', 'fenced after a failover: rebuild it before starting it again');
    return {
      steps: [
        {
          name: 'read the postmaster start time',
          says: 'read the postmaster start time (it must be running: use start otherwise)',
          timeoutMs: 10_000,
          run: async (x) => {
            const o = await observe(t);
            if (!o.reachable) throw new Error(`${t.label} is not running (${o.error ?? 'no reason given'}); use start`);
            if (!o.startTime) throw new Error(`${t.label} did not say when its postmaster started`);
            x.state.before = o.startTime;
            x.note({ stdout: `started at ${o.startTime.toISOString()}` });
          },
        },
        sshControlStep(t, 'restart', 'restart'),
        {
          name: 'wait until restarted',
          says: 'wait until the postmaster start time has moved',
          timeoutMs: 90_000,
          run: async (x) => {
            const { before } = x.state;
            if (!before) throw new Error('the start time before the restart was not read');
            const after = await waitObserved(t, 'restarted', (o) => o.reachable && !!o.startTime && o.startTime > before, {
              signal: x.signal,
            });
            x.state.after = after;
            x.note({ stdout: `started at ${after.startTime?.toISOString() ?? 'unknown'}` });
          },
        },
        refreshStep(t, (s) => s.after),
      ],
      warnings: commonWarnings(t),
    };
  },
});
