// Rebuild on a herd Patroni runs: Patroni's POST /reinitialize, which removes the member's data
// directory and clones it again from the leader. Done when Patroni lists it running with no lag and
// Postgres answers as a replica with a new postmaster, never on the HTTP answer alone.
import type { ActionPlan } from '@/lib/engine/define-action';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe } from '@/lib/fleet/observe';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { refreshStep } from '@/lib/actions/steps/control-steps';
import { reinitialize } from '@/lib/adapters/patroni/client';
import { patroniCallStep, patroniPreflightStep, sleepUnlessStopped } from './steps';
import { patroniNow } from '@/lib/fleet/patroni-view';

const REINIT_WAIT_MS = 10 * 60_000;

/** Patroni's view of `t` now: its member, or why there is none. */
async function memberOf(t: InstanceRef, members: InstanceRef[]) {
  const now = await patroniNow(members);
  if (!now.askedOf) throw new Error(`no member's Patroni answered: ${now.problems.join('; ')}`);
  const m = now.members.find((x) => x.instanceId === t.id);
  if (!m) throw new Error(`Patroni (asked of ${now.askedOf}) does not list ${t.label}`);
  return m;
}

export function planReinitialize<S>(t: InstanceRef, members: InstanceRef[]): ActionPlan<S & { startedBefore?: Date }> | Refusal {
  if (t.role === 'primary') return refuse('not-applicable', 'it is the herd\u2019s primary: Patroni reinitializes replicas only');
  type St = S & { startedBefore?: Date };
  return {
    steps: [
      patroniPreflightStep<St>(t),
      {
        name: 'check that Patroni lists it as a replica',
        does: { kind: 'patroni.check-not-leader', instance: t.id },
        says: `check that Patroni lists ${t.label} and that it is not the leader`,
        timeoutMs: 20_000,
        run: async (x) => {
          const m = await memberOf(t, members);
          if (m.role === 'leader' || m.role === 'standby_leader')
            throw refuse('not-applicable', `Patroni says ${m.name} is the leader: it is not reinitialized; nothing was changed`);
          const o = await observe(t);
          if (o.reachable && o.startTime) x.state.startedBefore = o.startTime;
          x.note({ stdout: `${m.name}: ${m.role}, ${m.state}${o.startTime ? `; postmaster started ${o.startTime.toISOString()}` : ''}` });
        },
      },
      patroniCallStep<St>(
        t,
        'reinitialize',
        { call: 'POST /reinitialize' },
        'ask Patroni to reinitialize it (POST /reinitialize): its data directory is removed and cloned again from the leader',
        (url, access) => reinitialize(url, access),
      ),
      {
        name: 'wait until it streams again',
        does: { kind: 'patroni.wait-replica', instance: t.id, newPostmaster: true },
        says: 'wait until Patroni lists it running with no lag and Postgres answers as a replica (a new postmaster)',
        timeoutMs: REINIT_WAIT_MS + 30_000,
        run: async (x) => {
          const deadline = Date.now() + REINIT_WAIT_MS;
          let last = '';
          for (;;) {
            try {
              const m = await memberOf(t, members);
              const o = await observe(t);
              const before = x.state.startedBefore;
              const fresh = !before || (!!o.startTime && o.startTime > before);
              last = `${m.name}: ${m.state}, lag ${String(m.lag)}; Postgres ${o.reachable ? (o.inRecovery ? 'a replica' : 'a primary') : 'not answering'}`;
              if (['running', 'streaming'].includes(m.state) && m.lag === 0 && o.reachable && o.inRecovery === true && fresh) {
                x.note({ stdout: last });
                return;
              }
            } catch (err) {
              last = (err as Error).message;
            }
            if (Date.now() > deadline) throw new Error(`not streaming again after ${String(REINIT_WAIT_MS / 60_000)} min: ${last}`);
            await sleepUnlessStopped(1000, x.signal);
          }
        },
      },
      refreshStep<St>(t),
    ],
    warnings: [
      'its data directory is removed and copied again from the leader: everything on it that the leader does not have is discarded',
    ],
  };
}
