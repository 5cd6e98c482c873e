// The driver of herds Patroni runs: pgherd asks Patroni's REST API (switchover, failover, restart,
// reload, reinitialize, its dynamic configuration) and never runs pg_ctl behind Patroni's back
// (Patroni would start again what pgherd stopped, demote what it promoted, and might fail over while
// pgherd moves DNS). Its hosts give a shell: pgBackRest, SSH checks and host keys work as on pg_ctl's.
import { patroniAccessRules } from './access-rules';
import { PatroniError, reload, restart } from '@/lib/adapters/patroni/client';
import { refuse } from '@/lib/fleet/refusal';
import { reloadFlow, restartFlow } from '@/lib/actions/drivers/verb-flows';
import { CAPABILITIES, type Capability, type HerdDriver, type RestartState } from '../driver';
import { planReinitialize } from './reinitialize';
import { planPatroniArchiving } from './archiving';
import { patroniParameters } from './parameters';
import { patroniCallStep, patroniPreflightStep } from './steps';
import { newPatroniSwitchState, planPatroniFailover, planPatroniSwitchover } from './switch';
import type { DrState, Params as FailoverParams } from '@/lib/actions/drivers/failover';
import { DEFAULT_MAX_LAG_BYTES, switchoverPair, type SwitchoverParams, type SwitchoverState } from '../switchover';
import type { ActionPlan } from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { Refusal } from '@/lib/fleet/refusal';

const CAN: Capability[] = [
  'restart',
  'reload',
  'rebuild',
  'switchover',
  'failover',
  'set-parameters',
  'access-rules',
  'backups',
  'pause',
  'shell',
];

/** How far ahead a Patroni switchover may be scheduled. */
const SCHEDULE_AHEAD_MS = { min: 30_000, max: 7 * 24 * 3_600_000 };

/** POST /switchover (at a time, when asked: Patroni's scheduled switchover). */
function planPatroniSwitchoverOf(h: HerdRef, p: SwitchoverParams): ActionPlan<SwitchoverState> | Refusal {
  const chosen = switchoverPair(h, p.candidateInstanceId);
  if (typeof chosen === 'string') return refuse('topology', chosen);
  if (p.scheduledAt) {
    const ahead = new Date(p.scheduledAt).getTime() - Date.now();
    if (ahead < SCHEDULE_AHEAD_MS.min || ahead > SCHEDULE_AHEAD_MS.max)
      return refuse('not-applicable', `scheduledAt must be between 30 seconds and 7 days from now (it is ${p.scheduledAt})`);
  }
  return planPatroniSwitchover(h, p, chosen, p.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES);
}

/** POST /failover: Patroni's leader key is the fence. */
function planPatroniDrFailover(h: HerdRef, p: FailoverParams): ActionPlan<DrState> | Refusal {
  return p.fencedByOperator
    ? refuse(
        'not-applicable',
        'on a herd Patroni runs, Patroni\u2019s leader key is the fence: leave "I have fenced the old primary myself" unticked',
      )
    : planPatroniFailover<DrState>(h, p, () => ({
        oldLastLsn: null,
        oldTimeline: null,
        lastSeenHow: '',
        leftBehind: [],
        ...newPatroniSwitchState(),
      }));
}

/** Why Patroni's herds are refused a capability: its members are Patroni's to start, stop and promote. */
const PATRONI_OWNS = (c: Capability) =>
  `pgherd does not run pg_ctl behind Patroni's back (Patroni would undo it); its members are started, stopped and promoted by Patroni, and pgherd cannot ${CAPABILITIES[c]} them through it yet`;
const PATRONI_LACKS: Partial<Record<Capability, string>> = {
  'add-replica': 'a member is added by starting a Patroni on its host, which pgherd does not do yet',
  replace: 'a member is replaced by starting a Patroni on a new host, which pgherd does not do yet',
  retire: 'a Patroni member leaves its herd through Patroni, which pgherd does not do yet',
  'upgrade-minor': 'pgherd does not restart its members on another build behind Patroni\u2019s back',
  'upgrade-major': 'its major upgrade is not pgherd\u2019s yet',
  'upgrade-in-place': 'pg_upgrade in place needs its members stopped, which Patroni would undo: its major upgrade is not pgherd\u2019s yet',
};

export const patroniDriver: HerdDriver = {
  name: 'Patroni',
  controls: ['patroni'],
  capabilities: new Set(CAN),
  lacks: (c) => `Patroni runs this herd: ${PATRONI_LACKS[c] ?? PATRONI_OWNS(c)}`,
  // POST /restart; Patroni says whether a restart is pending (the postmaster's start time still tells it happened).
  restart: (t, { params }) =>
    params.failover
      ? refuse('not-applicable', 'a restart with failover is what RDS Multi-AZ does: on a Patroni herd, use Switchover to move the leader')
      : restartFlow(t, {
          pendingOnly: params.pendingOnly,
          pendingSaidBy: 'driver',
          before: [patroniPreflightStep(t)],
          ask: patroniCallStep<RestartState>(
            t,
            'restart',
            { call: 'POST /restart', pendingOnly: params.pendingOnly },
            `ask Patroni to restart it (POST /restart${params.pendingOnly ? ', only if Patroni marks a restart pending' : ''})`,
            async (url, access, state) => {
              try {
                return await restart(url, access, { pendingOnly: params.pendingOnly });
              } catch (err) {
                // What Patroni answers when nothing is pending: the member is left alone, as asked.
                if (params.pendingOnly && err instanceof PatroniError && err.code === 'NOT_PENDING') {
                  state.leftAlone = 'Patroni marks no restart pending: left alone';
                  return state.leftAlone;
                }
                throw err;
              }
            },
          ),
        }),
  // POST /reload: Patroni reloads its configuration and Postgres's.
  reload: (t) =>
    reloadFlow(t, {
      before: [patroniPreflightStep(t)],
      ask: patroniCallStep(t, 'reload', { call: 'POST /reload' }, 'ask Patroni to reload (POST /reload)', (url, access) =>
        reload(url, access),
      ),
    }),
  // POST /reinitialize.
  rebuild: (t, { members }) => planReinitialize(t, members),
  switchover: planPatroniSwitchoverOf,
  failover: planPatroniDrFailover,
  // PATCH /config: the same command on every member, through Patroni's dynamic configuration.
  archiving: planPatroniArchiving,
  parameters: patroniParameters,
  accessRules: patroniAccessRules,
};
