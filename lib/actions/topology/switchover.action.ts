// Switchover: a planned change of primary with no committed transaction lost, asked of the herd's
// driver (pg_ctl's: the old primary stopped cleanly once its poolers hold new queries, the candidate
// promoted once it replayed the shutdown checkpoint; Patroni's: POST /switchover). Refused while the
// herd is under a major upgrade.
import { asks, planSwitchoverOf } from '@/lib/actions/drivers';
import { newSwitchoverState, switchoverParams } from '@/lib/actions/drivers/switchover';
import { defineHerdAction } from '@/lib/engine/define-action';
import { herdsUnderUpgrade } from '@/lib/actions/steps/open-upgrades';
import { DEFAULT_PAUSE_BUDGET_S, PAUSE_BUDGET_LIMITS_S } from '@/lib/actions/steps/pooler-resume';
import { refuse } from '@/lib/fleet/refusal';

export const switchoverAction = defineHerdAction({
  name: 'switchover',
  control: asks('switchover'),
  label: 'Switchover',
  permission: 'admin',
  dangerous: true,
  params: {
    schema: switchoverParams,
    fields: [
      {
        name: 'candidateInstanceId',
        label: 'New primary',
        kind: 'herd-member',
        emptyLabel: 'the most up-to-date replica',
        help: 'A running replica of the herd.',
      },
      {
        name: 'pauseBudgetSeconds',
        label: 'PgBouncer pause at most (s)',
        kind: 'text',
        emptyLabel: String(DEFAULT_PAUSE_BUDGET_S),
        help: `However the switchover goes (pgherd's worker killed, its database away), each PgBouncer of the herd is resumed by its own host after this many seconds (${PAUSE_BUDGET_LIMITS_S.min} to ${PAUSE_BUDGET_LIMITS_S.max}).`,
      },
      {
        name: 'scheduledAt',
        label: 'At (Patroni herds)',
        kind: 'text',
        emptyLabel: 'now',
        help: 'A herd Patroni runs only: Patroni switches over at this time (ISO 8601 with its offset, 2026-11-25T02:00:00Z; 30 seconds to 7 days ahead), and the DNS names follow when it does.',
      },
    ],
  },
  state: newSwitchoverState,
  // From the old primary the user confirmed, to the candidate they confirmed: a second switchover submitted
  // beside a first finds another primary when it starts, and is refused instead of switching again.
  runsAsConfirmed: true,
  prepare: async (herds, _p, db) => ({
    held: await herdsUnderUpgrade(
      db,
      herds.map((h) => h.id),
    ),
  }),
  plan: (h, { params: p, prepared }) => {
    const held = (prepared as { held?: Map<number, string> } | undefined)?.held?.get(h.id);
    if (held) return refuse('not-applicable', held);
    return planSwitchoverOf(h, p);
  },
});
