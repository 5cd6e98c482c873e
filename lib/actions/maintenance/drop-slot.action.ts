// Drop a replication slot (the fix of a `slot` risk: docs/risks.md): an admin's act, since a slot a
// consumer still needs cannot be made again where it was. Refused for a slot that is active, one a member
// of the herd names as its primary_slot_name, one a major upgrade of pgherd's uses, and while a member of
// the herd does not answer (it may stream from this slot when it comes back). The drop itself is made
// only of a slot still inactive: one that became active since the plan is left, and the step says so.
import { z } from 'zod';
import { defineAction } from '@/lib/engine/define-action';
import { refuse } from '@/lib/fleet/refusal';
import { loadInstanceRefs, type InstanceRef } from '@/lib/fleet/instance-ref';
import { withInstance } from '@/lib/fleet/pg-access';
import { asks } from '@/lib/actions/drivers';
import { failed, readEach, readingOf, readOn } from './read';

/** A slot's name as Postgres allows it: lower-case letters, digits and underscores, at most 63. */
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

export const dropSlotParams = z
  .object({
    slot: z.string().trim().regex(SLOT_NAME, 'a replication slot name: lower-case letters, digits and _ (at most 63)').optional(),
  })
  .strict();

interface SlotNow {
  name: string;
  type: string;
  active: boolean;
  activePid: number | null;
  database: string | null;
  /** Bytes of WAL it keeps (null: none reserved). */
  retained: number | null;
}

interface SlotReading {
  slot: SlotNow | null;
  /** The members of the herd that name it their primary_slot_name, and those that did not answer. */
  usedBy: string[];
  silent: string[];
}

const SLOT_SQL = `SELECT slot_name AS name, slot_type AS type, active, active_pid AS "activePid", database,
  ((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END) - restart_lsn)::float8 AS retained
  FROM pg_replication_slots WHERE slot_name = $1`;

const mib = (b: number | null) => (b === null ? 'no WAL' : `${(b / 1024 / 1024).toFixed(1)} MiB of WAL`);

async function readSlot(t: InstanceRef, members: InstanceRef[], slot: string): Promise<SlotReading | { error: string }> {
  const here = await readOn(t, async (c) => (await c.query<SlotNow>(SLOT_SQL, [slot])).rows[0] ?? null);
  if (failed(here)) return here;
  const usedBy: string[] = [];
  const silent: string[] = [];
  for (const m of members.filter((x) => x.id !== t.id)) {
    const name = await readOn(
      m,
      async (c) => (await c.query<{ s: string }>("SELECT current_setting('primary_slot_name') AS s")).rows[0]?.s ?? '',
    );
    if (failed(name)) silent.push(m.label);
    else if (name === slot) usedBy.push(m.label);
  }
  return { slot: here, usedBy, silent };
}

export const dropSlotAction = defineAction({
  name: 'drop-slot',
  control: asks(null),
  label: 'Drop replication slot',
  permission: 'admin',
  dangerous: true,
  params: {
    schema: dropSlotParams,
    fields: [
      {
        name: 'slot',
        label: 'Slot',
        kind: 'text',
        emptyLabel: 'forgotten_standby',
        help: 'The slot on this instance to drop (its name as pg_replication_slots shows it). The Risks page fills it in.',
      },
    ],
  },
  prepare: async (targets, params, db) => {
    if (!params.slot) return new Map<number, SlotReading | { error: string }>();
    const all = await loadInstanceRefs(db, [], { herdIds: [...new Set(targets.map((t) => t.herdId))] });
    const slot = params.slot;
    return readEach(targets, (t) =>
      readSlot(
        t,
        all.filter((m) => m.herdId === t.herdId),
        slot,
      ),
    );
  },
  plan: (t, { params, prepared }) => {
    const slot = params.slot;
    if (!slot) return refuse('params', 'name the slot to drop above, then update the plan');
    const r = readingOf(prepared, t.id);
    if (!r) return refuse('unreachable', `${t.label} was not read`);
    if (failed(r)) return refuse('unreachable', `${t.label} does not answer (${r.error}): nothing can be dropped there now`);
    if (!r.slot) return refuse('gone', `there is no slot ${slot} on ${t.label} (dropped already?)`);
    if (/^pgherd_(upgrade|back)_\d+_/.test(slot))
      return refuse('in-use', `${slot} is a major upgrade's slot: the upgrade's cleanup drops it (Upgrades, or abandon the upgrade)`);
    if (r.slot.active)
      return refuse('in-use', `${slot} is active: process ${String(r.slot.activePid ?? '?')} streams from it; stop its consumer first`);
    if (r.usedBy.length)
      return refuse(
        'in-use',
        `${r.usedBy.join(' and ')} of this herd name${r.usedBy.length === 1 ? 's' : ''} ${slot} as primary_slot_name: dropping it would cut ${r.usedBy.length === 1 ? 'that replica' : 'those replicas'} off when they reconnect`,
      );
    if (r.silent.length)
      return refuse(
        'unreachable',
        `${r.silent.join(' and ')} of this herd do${r.silent.length === 1 ? 'es' : ''} not answer: pgherd cannot tell whether it streams from ${slot} when it comes back (retire it first, or drop the slot once it answers)`,
      );
    const was = r.slot;
    return {
      facts: [
        { label: 'Slot', value: `${was.type} slot ${slot}${was.database ? ` (database ${was.database})` : ''}, inactive` },
        { label: 'Keeps', value: mib(was.retained) },
      ],
      steps: [
        {
          name: `drop slot ${slot}`,
          does: { kind: 'slot.drop', instance: t.id, slot },
          says: `drop ${slot} on ${t.label} if it is still inactive (it keeps ${mib(was.retained)} from removal); a slot that became active since is left`,
          timeoutMs: 30_000,
          run: async (x) => {
            x.note({ command: `SELECT pg_drop_replication_slot('${slot}') (if inactive)` });
            const dropped = await withInstance(
              t,
              { connectionTimeoutMillis: 5000, statement_timeout: 20_000, application_name: 'pgherd-maintenance' },
              async (c) => {
                const d = await c.query(
                  `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
                  [slot],
                );
                const left = await c.query<SlotNow>(SLOT_SQL, [slot]);
                return { dropped: d.rowCount ?? 0, left: left.rows[0] ?? null };
              },
            );
            if (dropped.left)
              throw new Error(
                `${slot} on ${t.label} became active since the plan (process ${String(dropped.left.activePid ?? '?')}): it was not dropped`,
              );
            const text = `${t.label}: slot ${slot} dropped (it kept ${mib(was.retained)})`;
            x.note({ stdout: text });
            x.deps.outcome?.(text);
          },
        },
      ],
    };
  },
});
