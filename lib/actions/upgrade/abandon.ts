// Abandoning a major upgrade that was never cut over (or was rolled back): green goes, blue serves on its
// own. It needs nothing of green but its inventory rows, if any are left: green may have been deleted
// from the inventory, be unreachable, or be recorded as stopped while it still answers. What is on blue
// (subscriptions, publications, slots, the marker, the upgrade's role) is taken away from blue alone,
// blue is made writable, and the upgrade is closed, so that nothing about it holds blue any more.
//
// A cut-over upgrade whose green is lost (no member answers as a primary, or its herd was deleted) is
// abandoned the same way, and blue's write names and PgBouncer, which the cut-over pointed at green, are
// pointed back at blue: blue takes the writes from what its subscription to green had applied. A green
// that answers as a primary again when it runs is not abandoned: Roll back keeps its writes.
import { eq, inArray } from 'drizzle-orm';
import { dnsRecords, herds, instances, majorUpgrades, poolers } from '@/db/schema';
import type { ActionPlan, ActionStep } from '@/lib/engine/define-action';
import { productionWarning } from '@/lib/engine/define-action';
import { memberArg } from '@/lib/engine/plan-identity';
import { writeAudit } from '@/lib/engine/write-audit';
import type { DnsRecordRef, HerdRef, PoolerRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { stopSide } from './stop-side';
import { onDb, setReadOnly } from '@/lib/actions/steps/endpoint-db';
import { openDoor } from '@/lib/actions/steps/door';
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
import { observe, shown } from '@/lib/fleet/observe';
import { refuse } from '@/lib/fleet/refusal';
import { errorText } from '@/lib/engine/errors';
import { dnsSteps } from '@/lib/actions/steps/dns-steps';
import { poolerArg, repointPooler } from '@/lib/actions/steps/pooler-steps';

export interface AbandonState {
  done: boolean;
}

/** What the steps of abandoning an upgrade share: the upgrade, blue (its herd, primary, endpoint), what is left of green, the clients to move back. */
interface Abandon {
  u: { id: number; databases: string[]; status: string };
  blue: HerdRef;
  blueP: InstanceRef;
  blueEnd: { host: string; port: number; serverEnvironment: string | null; label: string };
  green: HerdRef | null;
  greenMembers: InstanceRef[];
  /** Set for a cut-over upgrade: why green is taken for lost (its clients are moved back to blue). */
  greenLost: string | null;
  /** Blue's write names the cut-over moved to green (none unless green is lost). */
  writeNames: DnsRecordRef[];
  /** Blue's PgBouncers the cut-over moved to green (none unless green is lost). */
  movedPoolers: PoolerRef[];
}

/**
 * The upgrade abandoned from blue alone: a lost green asked again, green stopped, the upgrade's replication
 * taken off blue and blue writable, the clients a cut-over moved pointed back at blue, the upgrade closed.
 */
export function abandonPlan(
  h: HerdRef,
  u: { id: number; databases: string[]; status: string },
  blue: HerdRef,
  blueP: InstanceRef,
  green: HerdRef | null,
  /** Set for a cut-over upgrade: why green is taken for lost (its clients are moved back to blue). */
  greenLost: string | null = null,
): ActionPlan<AbandonState> {
  const blueEnd = { host: blueP.host, port: blueP.port, serverEnvironment: blueP.serverEnvironment, label: blueP.label };
  const greenMembers = green?.members ?? [];
  // The cut-over made blue's write names and PgBouncers green's (their rows moved with the writes).
  const writeNames = greenLost === null ? [] : (green?.dns ?? []).filter((r) => r.match === 'role');
  const movedPoolers = greenLost === null ? [] : (green?.poolers ?? []);
  const z: Abandon = { u, blue, blueP, blueEnd, green, greenMembers, greenLost, writeNames, movedPoolers };
  return {
    steps: [
      ...(greenLost === null ? [] : [greenLostStep(z, greenLost)]),
      stopGreenStep(z),
      blueAloneStep(z),
      ...(greenLost === null ? [] : clientsBackSteps(z)),
      closeUpgradeStep(z),
    ],
    warnings: [
      ...productionWarning(h),
      'green is stopped and out of the inventory: the upgrade would start again from the beginning',
      ...(greenLost === null
        ? []
        : [
            `the upgrade was cut over and green is lost (${greenLost}): blue takes the writes again from what its subscription to green had applied; writes green took after that stay on green's disk, not on blue`,
          ]),
    ],
    facts: abandonFacts(z),
    state: () => ({ done: false }),
  };
}

/** What the plan says of abandoning: where the clients go (green lost), what is kept, what is taken away, the upgrade. */
function abandonFacts({ u, blue, blueP, green, greenLost, writeNames, movedPoolers }: Abandon) {
  const clients = [...writeNames.map((r) => r.name), ...movedPoolers.map((p) => `PgBouncer ${p.label}`)];
  return [
    ...(greenLost === null
      ? []
      : [
          {
            label: 'Clients',
            value: clients.length
              ? `${clients.join(', ')} back to ${blueP.label}`
              : `none known (green's herd was deleted with them): point the clients at ${blueP.label} by hand`,
          },
        ]),
    { label: 'Kept', value: `${blue.label} (${blueP.label})` },
    {
      label: 'Taken away',
      value: green ? `${green.label} (${green.members.map((m) => m.label).join(', ') || 'no members'})` : 'green (already deleted)',
    },
    { label: 'Upgrade', value: `#${String(u.id)}, ${u.status}` },
  ];
}

/** Each member of a lost green asked again: refused, nothing changed, when one answers as a primary (Roll back keeps its writes). */
function greenLostStep({ u, greenMembers }: Abandon, greenLost: string): ActionStep<AbandonState> {
  return {
    name: 'green is lost',
    does: { kind: 'upgrade.green-lost', upgrade: u.id, members: greenMembers.map(memberArg) },
    says: `ask each member of green again: refused if one answers as a primary (Roll back keeps its writes); ${greenLost}`,
    timeoutMs: 30_000,
    run: async (x) => {
      for (const m of greenMembers) {
        const o = await observe(m, 3000);
        if (o.reachable && o.inRecovery === false)
          throw refuse(
            'not-applicable',
            `${m.label} answers as a primary again: roll back (upgrade-rollback) instead, which keeps the writes green took; nothing was changed`,
          );
        x.note({ stdout: `${m.label}: ${o.reachable ? 'answers as a replica' : `does not answer (${shown(o.error)})`}` });
      }
    },
  };
}

/** Every member of green stopped, whatever the inventory says of it (a lost green's unreachable hosts left as they are). */
function stopGreenStep({ green, greenMembers, greenLost }: Abandon): ActionStep<AbandonState> {
  return {
    name: green ? `stop ${green.label}` : 'green is gone from the inventory',
    does: { kind: 'upgrade.retire', herd: green?.id ?? null, members: greenMembers.map(memberArg) },
    says: green
      ? `stop every member of ${green.label} (pg_ctl stop -m fast), whatever the inventory says of it${greenLost === null ? '' : ' (one whose host does not answer is left as it is)'}; their data directories stay on disk`
      : 'nothing to stop: green was deleted from the inventory (its slots on blue are dropped once nothing uses them)',
    timeoutMs: 300_000,
    run: async (x) => {
      if (greenLost === null) return stopSide(x.deps, x, greenMembers);
      for (const m of greenMembers)
        await stopSide(x.deps, x, [m]).catch((err: unknown) => x.note({ stderr: `${m.label}: left as it is (${errorText(err)})` }));
    },
  };
}

/** On blue, without asking green: the upgrade's subscriptions, publications, marker, role and unused slots dropped; writable. */
function blueAloneStep({ u, blue, blueP, blueEnd }: Abandon): ActionStep<AbandonState> {
  return {
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
      await openDoor(x.deps.db, blueP.id, blueEnd);
      x.note({ stdout: `${blueP.label}: no replication of the upgrade left; writable` });
    },
  };
}

/** The write names and PgBouncers the cut-over pointed at green, pointed back at blue (PgBouncers resumed). */
function clientsBackSteps({ blue, blueP, writeNames, movedPoolers }: Abandon): ActionStep<AbandonState>[] {
  return [
    ...dnsSteps<AbandonState>(
      { ...blue, dns: writeNames },
      () => [{ ...blueP, role: 'primary' as const }],
      () => [blueP],
      (rec) => `point ${rec.name} back at ${blueP.hostname} (the cut-over pointed it at green)`,
      undefined,
      { targetsOf: () => [blueP], name: (rec) => `DNS: ${rec.name} back to ${blueP.hostname}` },
    ),
    ...movedPoolers.map((p): ActionStep<AbandonState> => ({
      name: `PgBouncer ${p.label}: back to ${blueP.label}`,
      does: { kind: 'pgbouncer.point-and-resume', pooler: poolerArg(p), to: memberArg(blueP) },
      says: `point PgBouncer ${p.label} back at ${blueP.label} (${p.configFile}, RELOAD), RESUME what is paused`,
      timeoutMs: 30_000,
      run: async (x) => {
        x.note({ stdout: await repointPooler(p, blueP, x.deps, x, { resume: true }) });
      },
    })),
  ];
}

/** The upgrade closed (cleaned), the moved names and PgBouncers blue's again, green out of the inventory; audited. */
function closeUpgradeStep({ u, blue, green, writeNames, movedPoolers }: Abandon): ActionStep<AbandonState> {
  return {
    name: 'close the upgrade',
    does: { kind: 'upgrade.abandon', upgrade: u.id, green: green?.id ?? null },
    says: `the upgrade is closed (cleaned)${green ? `; ${green.label} out of the inventory` : ''}: nothing about it holds ${blue.label} any more`,
    timeoutMs: 30_000,
    settles: true,
    run: async (x) => {
      await x.deps.db.transaction(async (tx) => {
        await tx.update(majorUpgrades).set({ status: 'cleaned', cleanedAt: new Date() }).where(eq(majorUpgrades.id, u.id));
        // Back where they were before the cut-over: blue's.
        if (writeNames.length)
          await tx
            .update(dnsRecords)
            .set({ herdId: blue.id })
            .where(
              inArray(
                dnsRecords.id,
                writeNames.map((r) => r.id),
              ),
            );
        if (movedPoolers.length)
          await tx
            .update(poolers)
            .set({ herdId: blue.id })
            .where(
              inArray(
                poolers.id,
                movedPoolers.map((p) => p.id),
              ),
            );
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
  };
}
