import { patroniCallStep, patroniPreflightStep } from '@/lib/actions/patroni/steps';
import { reload as patroniReload } from '@/lib/adapters/patroni/client';
import { defineAction } from '@/lib/engine/define-action';
import { observe, waitObserved, type Observed } from '@/lib/fleet/observe';
import { refreshStep, sshControlStep } from '@/lib/actions/steps/control-steps';

interface ReloadState {
  before?: Date;
  after?: Observed;
}

export const reloadAction = defineAction({
  name: 'reload',
  label: 'Reload configuration',
  permission: 'operator',
  dangerous: false,
  // On a Patroni herd: Patroni's POST /reload (it reloads its configuration and Postgres's).
  onPatroniHerds: true,
  state: (): ReloadState => ({}),
  plan: (t) => ({
    steps: [
      ...(t.controlDriver === 'patroni' ? [patroniPreflightStep<ReloadState>(t)] : []),
      {
        name: 'read the configuration load time',
        does: { kind: 'pg.read-conf-load-time', instance: t.id },
        says: 'read pg_conf_load_time() (it must be running)',
        timeoutMs: 10_000,
        run: async (x) => {
          const o = await observe(t);
          if (!o.reachable) throw new Error(`${t.label} is not running (${o.error ?? 'no reason given'})`);
          if (!o.confLoadTime) throw new Error(`${t.label} did not say when it last loaded its configuration`);
          x.state.before = o.confLoadTime;
        },
      },
      t.controlDriver === 'patroni'
        ? patroniCallStep<ReloadState>(t, 'reload', { call: 'POST /reload' }, 'ask Patroni to reload (POST /reload)', (url, access) =>
            patroniReload(url, access),
          )
        : sshControlStep(t, 'reload', 'reload'),
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
            (o) => o.reachable && !!o.confLoadTime && o.confLoadTime > before,
            { signal: x.signal, timeoutMs: 30_000 },
          );
        },
      },
      refreshStep(t, (s) => s.after),
    ],
    warnings: [],
  }),
});
