// Abandoning a major upgrade that was never cut over (or was rolled back): green goes, blue serves on its
// own. It needs nothing of green but its inventory rows, if any are left: green may have been deleted
// from the inventory, be unreachable, or be recorded as stopped while it still answers. What is on blue
// (subscriptions, publications, slots, the marker, the upgrade's role) is taken away from blue alone,
// blue is made writable, and the upgrade is closed, so that nothing about it holds blue any more.
import { eq, inArray } from 'drizzle-orm';
import { herds, instances, majorUpgrades } from '@/db/schema';
import type { ActionPlan, ActionStep } from '@/lib/engine/define-action';
import { productionWarning } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { writeAudit } from '@/lib/engine/write-audit';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { stopSide } from './stop-side';
import { onDb, setReadOnly } from './blue-facts';
import {
  BACK_PUBLICATION,
  backSubscription,
  dropRoleOn,
  dropSlotsForce,
  dropSubscriptionAlone,
  MARKER,
  MARKER_TABLE,
  PUBLICATION,
  subscription,
} from './replication';
import { provenOwnTable, useOwnSchema } from '@/lib/fleet/own-schema';

export interface AbandonState {
  done: boolean;
}

export function abandonPlan(
  h: HerdRef,
  u: { id: number; databases: string[]; status: string },
  blue: HerdRef,
  blueP: InstanceRef,
  green: HerdRef | null,
): ActionPlan<AbandonState> {
  const blueEnd = { host: blueP.host, port: blueP.port, serverEnvironment: blueP.serverEnvironment, label: blueP.label };
  const greenMembers = green?.members ?? [];
  const steps: ActionStep<AbandonState>[] = [
    {
      name: green ? `stop ${green.label}` : 'green is gone from the inventory',
      does: { kind: 'upgrade.retire', herd: green?.id ?? null, members: greenMembers.map(memberArg) },
      says: green
        ? `stop every member of ${green.label} (pg_ctl stop -m fast), whatever the inventory says of it; their data directories stay on disk`
        : 'nothing to stop: green was deleted from the inventory (its slots on blue are dropped once nothing uses them)',
      timeoutMs: 300_000,
      run: async (x) => {
        await stopSide(x.deps, x, greenMembers);
      },
    },
    {
      name: `${blue.label} on its own again`,
      does: { kind: 'upgrade.abandon-blue', upgrade: u.id, instance: memberArg(blueP), databases: u.databases },
      says: `on ${blueP.label}: the upgrade's subscriptions (without asking green), publications, ${MARKER}, unused slots and its role dropped; writable`,
      timeoutMs: 300_000,
      run: async (x) => {
        for (const [k, d] of u.databases.entries()) {
          for (const sub of [backSubscription(u.id)(k), subscription(u.id)(k)]) await dropSubscriptionAlone(blueEnd, d, sub);
          await onDb(blueEnd, d, async (c) => {
            await c.query(`DROP PUBLICATION IF EXISTS ${PUBLICATION}`);
            await c.query(`DROP PUBLICATION IF EXISTS ${BACK_PUBLICATION}`);
            // Only pgherd's own table is dropped: another role's is left for a person to look at.
            await useOwnSchema(c, false).then(
              async () => {
                if (await provenOwnTable(c, MARKER_TABLE)) await c.query(`DROP TABLE ${MARKER}`);
              },
              () => undefined,
            );
          });
        }
        // The role first: a green pgherd no longer knows (deleted from the inventory, so not stopped above)
        // cannot log in again once its sessions holding the slots are ended.
        await dropRoleOn(blueEnd, u.databases, u.id);
        await dropSlotsForce(blueEnd, u.id);
        await setReadOnly(blueEnd, false);
        x.note({ stdout: `${blueP.label}: no replication of the upgrade left; writable` });
      },
    },
    {
      name: 'close the upgrade',
      does: { kind: 'upgrade.abandon', upgrade: u.id, green: green?.id ?? null },
      says: `the upgrade is closed (cleaned)${green ? `; ${green.label} out of the inventory` : ''}: nothing about it holds ${blue.label} any more`,
      timeoutMs: 30_000,
      settles: true,
      run: async (x) => {
        await x.deps.db.transaction(async (tx) => {
          await tx.update(majorUpgrades).set({ status: 'cleaned', cleanedAt: new Date() }).where(eq(majorUpgrades.id, u.id));
          if (green) {
            await tx.delete(instances).where(inArray(instances.herdId, [green.id]));
            await tx.delete(herds).where(eq(herds.id, green.id));
          }
        });
        await writeAudit(x.deps.db, {
          user: x.deps.operation?.requestedBy ?? { id: null, username: 'pgherd' },
          action: 'upgrade.cleanup',
          objectType: 'herds',
          objectId: String(blue.id),
          objectLabel: blue.label,
          environmentId: blue.environmentId,
          changes: { kept: [null, blue.label], green: [green?.label ?? '(deleted)', null] },
        });
        x.deps.outcome?.(`${blue.label} kept and writable; the upgrade is closed${green ? ` and ${green.label} stopped` : ''}`);
      },
    },
  ];
  return {
    steps,
    warnings: [...productionWarning(h), 'green is stopped and out of the inventory: the upgrade would start again from the beginning'],
    facts: [
      { label: 'Kept', value: `${blue.label} (${blueP.label})` },
      {
        label: 'Taken away',
        value: green ? `${green.label} (${green.members.map((m) => m.label).join(', ') || 'no members'})` : 'green (already deleted)',
      },
      { label: 'Upgrade', value: `#${String(u.id)}, ${u.status}` },
    ],
    state: () => ({ done: false }),
  };
}
