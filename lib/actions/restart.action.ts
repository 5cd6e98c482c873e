import { z } from 'zod';
import { PatroniError, restart as patroniRestart } from '@/lib/adapters/patroni/client';
import { patroniCallStep, patroniPreflightStep } from '@/lib/actions/patroni/steps';
import { commonWarnings, defineAction, flagParam } from '@/lib/engine/define-action';
import { observe, waitObserved, type Observed } from '@/lib/fleet/observe';
import { refuse } from '@/lib/fleet/refusal';
import { refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';

interface RestartState {
  before?: Date;
  after?: Observed;
  /** Why it was left alone (only a pending restart was asked for, and none is). */
  leftAlone?: string;
}

export const restartAction = defineAction({
  name: 'restart',
  label: 'Restart',
  permission: 'operator',
  dangerous: true,
  // On a Patroni herd: Patroni's POST /restart (the postmaster start time is still what tells it happened).
  onPatroniHerds: true,
  params: {
    schema: z.object({ pendingOnly: flagParam() }).strict(),
    fields: [
      {
        name: 'pendingOnly',
        label: 'Only if a restart is pending',
        kind: 'flag',
        emptyLabel: 'restart every ticked instance',
        help: 'Restart only the instances whose settings wait for a restart (pending_restart; on a Patroni herd, the members Patroni marks so); the others are left alone, and say so.',
      },
    ],
  },
  state: (): RestartState => ({}),
  plan: (t, { params }) => {
    if (t.state === 'fenced') return refuse('not-applicable', 'fenced after a failover: rebuild it before starting it again');
    const pendingOnly = params.pendingOnly === true;
    const patroni = t.controlDriver === 'patroni';
    return {
      steps: [
        ...(patroni ? [patroniPreflightStep<RestartState>(t)] : []),
        {
          name: 'read the postmaster start time',
          does: { kind: 'pg.read-start-time', instance: t.id, pendingOnly },
          says: 'read the postmaster start time (it must be running: use start otherwise)',
          timeoutMs: 10_000,
          run: async (x) => {
            const o = await observe(t);
            if (!o.reachable) throw new Error(`${t.label} is not running (${o.error ?? 'no reason given'}); use start`);
            if (!o.startTime) throw new Error(`${t.label} did not say when its postmaster started`);
            x.state.before = o.startTime;
            x.note({ stdout: `started at ${o.startTime.toISOString()}` });
            // Patroni decides what is pending on its herds (below); elsewhere, Postgres says.
            if (pendingOnly && !patroni && !o.pendingRestart) x.state.leftAlone = 'no setting waits for a restart: left alone';
          },
        },
        patroni
          ? patroniCallStep<RestartState>(
              t,
              'restart',
              { call: 'POST /restart', pendingOnly },
              `ask Patroni to restart it (POST /restart${pendingOnly ? ', only if Patroni marks a restart pending' : ''})`,
              async (url, access, state) => {
                try {
                  return await patroniRestart(url, access, { pendingOnly });
                } catch (err) {
                  // What Patroni answers when nothing is pending: the member is left alone, as asked.
                  if (pendingOnly && err instanceof PatroniError && err.code === 'NOT_PENDING') {
                    state.leftAlone = 'Patroni marks no restart pending: left alone';
                    return state.leftAlone;
                  }
                  throw err;
                }
              },
            )
          : sshControlStep<RestartState>(t, 'restart', 'restart', (state) => state.leftAlone ?? false),
        {
          name: 'wait until restarted',
          does: { kind: 'pg.wait-restarted', instance: t.id },
          says: 'wait until the postmaster start time has moved',
          timeoutMs: 90_000,
          run: async (x) => {
            const { before } = x.state;
            if (!before) throw new Error('the start time before the restart was not read');
            if (x.state.leftAlone) {
              x.note({ stdout: x.state.leftAlone });
              return;
            }
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
