// The flows a restart and a reload follow whatever control plane is asked to do them: read what must
// move (the postmaster's start time, the configuration's load time), ask the driver's step, wait until
// it moved, record what is there now. Each driver gives only the step that asks (pg_ctl over SSH,
// Patroni's REST API) and what it checks before.
import { commonWarnings, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved } from '@/lib/fleet/observe';
import type { ReloadState, RestartState } from './driver';
import { refreshStep } from '@/lib/actions/steps/control-steps';

/**
 * A restart: `ask` asks the control plane, after `before` (its pre-flight). With `pendingOnly`, who
 * decides what is pending: Postgres (`pending_restart`, read with the start time) or the control plane
 * (its `ask` step sets `leftAlone`).
 */
export function restartFlow<S extends RestartState>(
  t: InstanceRef,
  o: { pendingOnly: boolean; pendingSaidBy: 'postgres' | 'driver'; before?: ActionStep<S>[]; ask: ActionStep<S> },
): ActionPlan<S> {
  const { pendingOnly } = o;
  return {
    steps: [
      ...(o.before ?? []),
      {
        name: 'read the postmaster start time',
        does: { kind: 'pg.read-start-time', instance: t.id, pendingOnly },
        says: 'read the postmaster start time (it must be running: use start otherwise)',
        timeoutMs: 10_000,
        run: async (x) => {
          const seen = await observe(t);
          if (!seen.reachable) throw new Error(`${t.label} is not running (${seen.error ?? 'no reason given'}); use start`);
          if (!seen.startTime) throw new Error(`${t.label} did not say when its postmaster started`);
          x.state.before = seen.startTime;
          x.state.seen = seen;
          x.note({ stdout: `started at ${seen.startTime.toISOString()}` });
          if (pendingOnly && o.pendingSaidBy === 'postgres' && !seen.pendingRestart)
            x.state.leftAlone = 'no setting waits for a restart: left alone';
        },
      },
      o.ask,
      {
        name: 'wait until restarted',
        does: { kind: 'pg.wait-restarted', instance: t.id },
        says: 'wait until the postmaster start time has moved',
        timeoutMs: 90_000,
        run: async (x) => {
          const { before } = x.state;
          if (!before) throw new Error('the start time before the restart was not read');
          if (x.state.leftAlone) return void x.note({ stdout: x.state.leftAlone });
          const after = await waitObserved(t, 'restarted', (v) => v.reachable && !!v.startTime && v.startTime > before, {
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
}

/** A reload: `ask` asks the control plane, after `before` (its pre-flight). */
export function reloadFlow<S extends ReloadState>(t: InstanceRef, o: { before?: ActionStep<S>[]; ask: ActionStep<S> }): ActionPlan<S> {
  return {
    steps: [
      ...(o.before ?? []),
      {
        name: 'read the configuration load time',
        does: { kind: 'pg.read-conf-load-time', instance: t.id },
        says: 'read pg_conf_load_time() (it must be running)',
        timeoutMs: 10_000,
        run: async (x) => {
          const seen = await observe(t);
          if (!seen.reachable) throw new Error(`${t.label} is not running (${seen.error ?? 'no reason given'})`);
          if (!seen.confLoadTime) throw new Error(`${t.label} did not say when it last loaded its configuration`);
          x.state.before = seen.confLoadTime;
        },
      },
      o.ask,
      {
        name: 'wait until the configuration is reloaded',
        does: { kind: 'pg.wait-conf-reloaded', instance: t.id },
        says: 'wait until pg_conf_load_time() has moved',
        timeoutMs: 40_000,
        run: async (x) => {
          const { before } = x.state;
          if (!before) throw new Error('the load time before the reload was not read');
          x.state.after = await waitObserved(
            t,
            'configuration reloaded',
            (v) => v.reachable && !!v.confLoadTime && v.confLoadTime > before,
            {
              signal: x.signal,
              timeoutMs: 30_000,
            },
          );
        },
      },
      refreshStep(t, (s) => s.after),
    ],
    warnings: [],
  };
}
