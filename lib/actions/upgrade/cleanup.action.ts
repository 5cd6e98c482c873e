// upgrade-cleanup: the side not serving is taken away (its subscriptions and publications dropped, its
// members stopped and removed from the inventory; their data directories are left on disk).
import { eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { herds, instances, majorUpgrades } from '@/db/schema';
import { defineHerdAction, productionWarning, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { writeAudit } from '@/lib/engine/write-audit';
import { type HerdRef } from '@/lib/fleet/herd-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { stopSide } from './stop-side';
import { onDb } from '@/lib/actions/steps/endpoint-db';
import { abandonPlan, type AbandonState } from './abandon';
import { BACK_PUBLICATION, backSubscription, dropRoleOn, dropSlots, MARKER, PUBLICATION, subscription } from './replication';
import { asks } from '@/lib/actions/drivers';
import { primaryOf, endpointOf, type Labelled, type OpenUpgrade } from './major-parts';
import { prepareSwitch } from './switch';

interface CleanState {
  done: boolean;
}

/** What the clean-up's steps share: the upgrade, the side kept and the side taken away, each primary as a client reaches it. */
interface Cleanup {
  u: OpenUpgrade;
  keep: HerdRef;
  drop: HerdRef;
  keepEnd: Labelled;
  dropEnd: Labelled;
}

export const upgradeCleanupAction = defineHerdAction({
  name: 'upgrade-cleanup',
  control: asks('upgrade-major'),
  label: 'Clean up a major upgrade',
  permission: 'admin',
  dangerous: true,
  // It drops the side not kept and with it the way back: a person's decision, never a schedule's.
  schedulable: false,
  runsAsConfirmed: true,
  params: { schema: z.object({}).strict(), fields: [] },
  prepare: (herdList, _p, db) => prepareSwitch(herdList, db),
  plan: (h, { prepared }): ActionPlan<CleanState> | ActionPlan<AbandonState> | Refusal => {
    const u = prepared.open.get(h.id);
    if (!u) return refuse('not-applicable', `${h.label} has no major upgrade under way`);
    if (u.status === 'building' && !prepared.buildEnded.get(h.id))
      return refuse('not-applicable', 'green is still being built: let upgrade-major finish (or fail) first');
    // Never cut over (or rolled back): blue serves, green goes, and nothing of green is needed for that
    // (it may be deleted, unreachable, or recorded as stopped while it answers).
    if (u.status !== 'cut-over') {
      const blue = prepared.blues.get(h.id);
      if (!blue) return refuse('gone', 'its blue herd was deleted from the inventory: nothing to keep');
      const blueP = primaryOf(blue);
      if (blueP instanceof Refusal) return blueP;
      return abandonPlan(h, u, blue, blueP, prepared.greens.get(h.id) ?? null);
    }
    // Cut over, and green lost: green goes and the clients go back to blue (Roll back would need green).
    const lost = prepared.greenLost.get(h.id);
    if (lost !== undefined) {
      const blue = prepared.blues.get(h.id);
      if (!blue) return refuse('gone', `green is lost (${lost}) and its blue herd was deleted from the inventory: nothing to keep`);
      const blueP = primaryOf(blue);
      if (blueP instanceof Refusal) return blueP;
      return abandonPlan(h, u, blue, blueP, prepared.greens.get(h.id) ?? null, lost);
    }
    const sides = prepared.sides.get(h.id);
    if (!sides || typeof sides === 'string') return refuse('gone', sides ?? 'not read');
    // Cut over: blue goes, green is kept (both sides are needed: green must serve).
    const [keep, drop] = [sides.green, sides.blue];
    const keepP = primaryOf(keep);
    if (keepP instanceof Refusal) return keepP;
    const dropP = primaryOf(drop);
    if (dropP instanceof Refusal) return dropP;
    const z: Cleanup = { u, keep, drop, keepEnd: endpointOf(keepP), dropEnd: endpointOf(dropP) };
    const steps: ActionStep<CleanState>[] = [dropReplicationStep(z), retireDroppedStep(z)];
    return {
      steps,
      warnings: [...productionWarning(h), `${drop.label} is stopped: after this, there is no way back to blue`],
      facts: [
        { label: 'Kept', value: `${keep.label} (${keepP.label})` },
        {
          label: 'Taken away',
          value: `${drop.label} (${drop.members.map((m) => m.label).join(', ')}): stopped, out of the inventory, data left on disk`,
        },
      ],
      state: () => ({ done: false }),
    };
  },
});

/** Every subscription and publication of the upgrade dropped on both sides, its slots and role too; the marker table on the side kept. */
function dropReplicationStep(z: Cleanup): ActionStep<CleanState> {
  const { u, keep, keepEnd, dropEnd } = z;
  return {
    name: 'drop the replication between them',
    does: { kind: 'upgrade.unsubscribe', upgrade: u.id, databases: u.databases },
    says: `every subscription and publication of the upgrade dropped, on both sides; ${MARKER} dropped on ${keep.label}`,
    timeoutMs: 300_000,
    run: async (x) => {
      for (const [k, d] of u.databases.entries()) {
        for (const [e, sub] of [
          [dropEnd, backSubscription(u.id)(k)],
          [dropEnd, subscription(u.id)(k)],
          [keepEnd, backSubscription(u.id)(k)],
          [keepEnd, subscription(u.id)(k)],
        ] as const)
          await onDb(e, d, async (c) => {
            if ((await c.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [sub])).rowCount)
              await c.query(`DROP SUBSCRIPTION ${sub}`);
          });
        await onDb(keepEnd, d, async (c) => {
          await c.query(`DROP PUBLICATION IF EXISTS ${PUBLICATION}`);
          await c.query(`DROP PUBLICATION IF EXISTS ${BACK_PUBLICATION}`);
          await c.query(`DROP TABLE IF EXISTS ${MARKER}`);
        });
      }
      // Slots a half-built green left on blue (its subscriptions never made, or gone with it).
      await dropSlots(keepEnd, u.id);
      for (const e of [dropEnd, keepEnd]) await dropRoleOn(e, u.databases, u.id);
      x.note({ stdout: `${u.databases.join(', ')}: no replication of the upgrade left` });
    },
  };
}

/** The side not kept stopped and taken out of the inventory (its data left on disk), the upgrade recorded as cleaned, and audited. */
function retireDroppedStep(z: Cleanup): ActionStep<CleanState> {
  const { u, keep, drop } = z;
  return {
    name: `stop ${drop.label}`,
    does: { kind: 'upgrade.retire', herd: drop.id, members: drop.members.map(memberArg) },
    says: `stop every member of ${drop.label} (pg_ctl stop -m fast) and take the herd out of the inventory; their data directories stay on disk`,
    timeoutMs: 300_000,
    run: async (x) => {
      await stopSide(x.deps, x, drop.members);
      await x.deps.db.transaction(async (tx) => {
        await tx.update(majorUpgrades).set({ status: 'cleaned', cleanedAt: new Date() }).where(eq(majorUpgrades.id, u.id));
        await tx.delete(instances).where(inArray(instances.herdId, [drop.id]));
        await tx.delete(herds).where(eq(herds.id, drop.id));
      });
      await writeAudit(x.deps.db, {
        user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
        action: 'upgrade.cleanup',
        objectType: 'herds',
        objectId: String(drop.id),
        objectLabel: drop.label,
        environmentId: drop.environmentId,
        changes: { kept: [null, keep.label] },
      });
      x.deps.outcome?.(`${keep.label} kept; ${drop.label} stopped and out of the inventory`);
    },
  };
}
