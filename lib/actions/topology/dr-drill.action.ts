// DR drill: a planned switchover to the herd's member in another site, under a synthetic writer that
// pgherd runs against a scratch table, measured (time to the first write on the DR member, the writer's
// longest gap, acknowledged commits lost: must be 0), then a switchover back to the primary of before;
// the scratch table dropped whatever happened. Both switchovers are the switchover action's own steps
// (no committed transaction lost, poolers and DNS following). Refused for a herd with no running
// replica outside its primary's site. The figures go to dr_drills, for the DR scorecard.
import { z } from 'zod';
import { drDrills } from '@/db/schema';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { rankReplicas } from '@/lib/fleet/candidates';
import { part } from '@/lib/engine/compose';
import { memberArg } from '@/lib/engine/plan-identity';
import { defineHerdAction, productionWarning, type ActionPlan, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { createScratchTable, longestGap, onPrimary, startDrillWriter, type DrillWriter } from '@/lib/actions/steps/drill-writer';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { membersAfterSwitchover, newSwitchoverState, type SwitchoverState } from '@/lib/actions/drivers/switchover';
import { asks, planSwitchoverOf } from '@/lib/actions/drivers';

/** How long the DR member (then the primary of before) has to take the writer's first commit. */
const FIRST_WRITE_TIMEOUT_MS = 30_000;

export const drDrillParams = z
  .object({
    /** The DR member to switch over to; left out: the most up-to-date running replica outside the primary's site. */
    candidateInstanceId: idText('candidateInstanceId', MAX_BIG_ID).optional(),
  })
  .strict();

interface DrillState {
  over: SwitchoverState;
  back: SwitchoverState;
  table: string;
  writer: DrillWriter | null;
  /** Date.now() when the switchover to the DR member was asked for. */
  overAt: number | null;
  startedAt: Date | null;
  /** The figures were written (by the last step, or by the cleanup of a drill cut short). */
  recorded: boolean;
}

const newDrillState = (): DrillState => ({
  over: newSwitchoverState(),
  back: newSwitchoverState(),
  table: '',
  writer: null,
  overAt: null,
  startedAt: null,
  recorded: false,
});

/** The herd's running primary and the DR member to drill with, or why not. */
function drillPair(h: HerdRef, wanted?: number): { old: InstanceRef; cand: InstanceRef } | Refusal {
  const primaries = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (primaries.length !== 1)
    return refuse('topology', primaries.length ? `the herd has ${primaries.length} running primaries` : 'the herd has no running primary');
  const old = primaries[0] as InstanceRef;
  if (!old.site) return refuse('not-applicable', `${old.label} (the primary) has no site: give the herd's servers their sites`);
  // A member with no site is in no other site (the scorecard reads sites the same way).
  const away = h.members.filter((m) => m.id !== old.id && m.site !== '' && m.site !== old.site);
  if (wanted !== undefined) {
    const c = h.members.find((m) => m.id === wanted);
    if (!c) return refuse('topology', `instance ${wanted} is not a member of the herd`);
    if (c.id === old.id) return refuse('not-applicable', `${c.label} is the primary: a DR drill switches over to a member in another site`);
    if (!c.site) return refuse('not-applicable', `${c.label} has no site: a DR drill switches over to a member in another site`);
    if (c.site === old.site)
      return refuse(
        'not-applicable',
        `${c.label} is in ${old.site || 'no site'}, the primary's site: a DR drill switches over to another site`,
      );
    if (c.role !== 'replica' || c.state !== 'running') return refuse('topology', `${c.label} is not a running replica`);
    return { old, cand: c };
  }
  if (!away.length)
    return refuse(
      'not-applicable',
      `no member outside the primary's site (${old.site || 'none given'}): a DR drill switches over to a member in another site; give a member a site of its own`,
    );
  const cand = rankReplicas(away)[0];
  if (!cand)
    return refuse('topology', `no running replica outside the primary's site (${away.map((m) => `${m.label}: ${m.state}`).join(', ')})`);
  return { old, cand };
}

/** Waits until the writer has a commit acknowledged by `member` at or after `since`; its time. */
async function firstWriteOn(x: { state: DrillState; signal: AbortSignal }, member: InstanceRef, since: number): Promise<number> {
  const deadline = Date.now() + FIRST_WRITE_TIMEOUT_MS;
  for (;;) {
    const ack = x.state.writer?.acks.find((a) => a.memberId === member.id && a.at >= since);
    if (ack) return ack.at;
    if (Date.now() > deadline || x.signal.aborted)
      throw new Error(`the writer had no commit acknowledged by ${member.label} within ${FIRST_WRITE_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What the drill's steps share: the herd, its primary of before, and the DR member. */
interface Drill {
  h: HerdRef;
  old: InstanceRef;
  cand: InstanceRef;
}

/**
 * The DR drill of herd `h`: the scratch table and its writer (stopped and dropped whatever happens), the
 * switchover to the DR member, its first write, the switchover back, and the figures recorded.
 */
export function planDrill(h: HerdRef, p: z.output<typeof drDrillParams>): ActionPlan<DrillState> | Refusal {
  const pair = drillPair(h, p.candidateInstanceId);
  if (pair instanceof Refusal) return pair;
  const { old, cand } = pair;
  const over = planSwitchoverOf(h, { candidateInstanceId: cand.id });
  if (over instanceof Refusal) return refuse(over.code, `the switchover to ${cand.label}: ${over.reason}`);
  if (over.refused) return refuse(over.refused.code, `the switchover to ${cand.label}: ${over.refused.reason}`);
  const back = planSwitchoverOf({ ...h, members: membersAfterSwitchover(h, old, cand) }, { candidateInstanceId: old.id });
  if (back instanceof Refusal) return refuse(back.code, `the switchover back to ${old.label}: ${back.reason}`);
  const d: Drill = { h, old, cand };
  return {
    steps: [
      writerStep(d),
      switchOverMarkStep(d),
      ...part<SwitchoverState, DrillState>(
        over.steps,
        (s) => s.over,
        (n) => `switchover: ${n}`,
        false,
      ),
      firstWriteStep(d),
      ...part<SwitchoverState, DrillState>(
        back.steps,
        (s) => s.back,
        (n) => `switch back: ${n}`,
        // Not settled first: that would run the drill's own cleanup (the writer stopped) before it.
        false,
      ),
      figuresStep(d),
    ],
    warnings: [
      ...productionWarning(h),
      'clients connected to the primary lose their connections twice (once each way); writes through PgBouncer wait about a second each time',
    ],
    facts: [
      { label: 'Primary', value: `${old.label} (${old.site || 'no site'})` },
      { label: 'DR member', value: `${cand.label} (${cand.site || 'no site'})` },
      { label: 'Afterwards', value: `${old.label} is the primary again; the scratch table is dropped` },
    ],
  };
}

/** A scratch table on the primary and a writer committing into it, on whichever member accepts writes; both gone whatever happens. */
function writerStep(d: Drill): ActionStep<DrillState> {
  const { h, old } = d;
  const everyone = h.members;
  return {
    name: 'scratch table and writer',
    does: { kind: 'drill.start-writer', on: memberArg(old), everyMs: 20, members: everyone.map((m) => m.id) },
    says: `create a scratch table in pgherd's own schema on ${old.label} (refused when another role owns the schema or planted the table) and start a writer committing a numbered row every 20 ms into it, on whichever member accepts writes`,
    timeoutMs: 30_000,
    always: stopWriterStep(d),
    run: async (x) => {
      const table = await createScratchTable([old], x.deps.operation?.id ?? Date.now());
      x.state.table = table;
      x.state.startedAt = new Date();
      x.state.writer = startDrillWriter(everyone, table);
      await firstWriteOn(x, old, 0);
      x.note({ stdout: `${table} on ${old.label}; the writer commits there` });
    },
  };
}

/** Whatever happened: the writer stopped, the figures of a drill cut short recorded, the scratch table dropped. */
function stopWriterStep(d: Drill): ActionStep<DrillState> {
  const { h, old, cand } = d;
  const everyone = h.members;
  return {
    name: 'stop the writer and drop the scratch table',
    does: { kind: 'drill.stop-writer', dropTable: true },
    says: 'stop the writer; drop the scratch table on whichever member is the primary then',
    timeoutMs: 30_000,
    run: async (x) => {
      const lines: string[] = [];
      // A drill cut short after its switchover: the herd stays on the DR member (a working primary);
      // switching back from a cleanup, on a herd that just refused or failed a step, is not pgherd's call.
      if (x.state.over.promoteSent && !x.state.back.promoted) {
        const left = `the drill stopped after its switchover: ${cand.label} is the herd's primary now; switch back with a switchover to ${old.label} once the herd is healthy`;
        x.deps.outcome?.(left);
        lines.push(left);
      }
      if (x.state.writer && !x.state.recorded) {
        // What was measured is kept, lost commits counted on whichever member is the primary now.
        await x.state.writer.stop();
        lines.push(await recordDrill(d, x, everyone).catch((err: unknown) => `the figures could not be recorded: ${String(err)}`));
      }
      await x.state.writer?.stop();
      if (x.state.table) {
        await onPrimary(everyone, `DROP TABLE IF EXISTS ${x.state.table}`).catch((err: unknown) => {
          throw new Error(`the scratch table ${x.state.table} could not be dropped (${String(err)}): drop it on the herd's primary`);
        });
        lines.push(`${x.state.table} dropped`);
      } else lines.push('no scratch table was made');
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** The moment the switchover to the DR member is asked for: what the time to its first write is counted from. */
function switchOverMarkStep({ old, cand }: Drill): ActionStep<DrillState> {
  return {
    name: 'switch over to the DR member',
    does: { kind: 'drill.switch-over', from: { ...memberArg(old), site: old.site }, to: { ...memberArg(cand), site: cand.site } },
    says: `switch over from ${old.label} (${old.site || 'no site'}) to ${cand.label} (${cand.site || 'no site'}), as the switchover action does:`,
    timeoutMs: 5_000,
    run: (x) => {
      x.state.overAt = Date.now();
      x.note({ stdout: `the writer has ${String(x.state.writer?.acks.length ?? 0)} commits acknowledged` });
      return Promise.resolve();
    },
  };
}

/** The writer's first commit acknowledged by the DR member, and how long after the switchover was asked for. */
function firstWriteStep({ cand }: Drill): ActionStep<DrillState> {
  return {
    name: 'first write on the DR member',
    does: { kind: 'drill.wait-first-write', on: memberArg(cand) },
    says: `wait for the writer's first commit acknowledged by ${cand.label} (at most ${FIRST_WRITE_TIMEOUT_MS / 1000} s)`,
    timeoutMs: FIRST_WRITE_TIMEOUT_MS + 5_000,
    run: async (x) => {
      const at = await firstWriteOn(x, cand, x.state.overAt ?? 0);
      x.note({ stdout: `${String(at - (x.state.overAt ?? at))} ms after the switchover was asked for` });
    },
  };
}

/** Back on the primary of before: a commit there again, the writer stopped, the lost commits counted (must be 0), the figures recorded. */
function figuresStep(d: Drill): ActionStep<DrillState> {
  const { old } = d;
  return {
    name: "the drill's figures",
    does: { kind: 'drill.record', on: memberArg(old), lostMustBe: 0 },
    says: `wait for a commit on ${old.label} again, stop the writer, count the acknowledged commits missing there (must be 0), and record the figures`,
    timeoutMs: FIRST_WRITE_TIMEOUT_MS + 30_000,
    run: async (x) => {
      const overAt = x.state.overAt ?? 0;
      const backAt = Date.now();
      await firstWriteOn(x, old, backAt - 60_000 > overAt ? backAt - 60_000 : overAt);
      if (!x.state.writer) throw new Error('the writer never started');
      await x.state.writer.stop();
      const text = `${await recordDrill(d, x, [old])}; ${old.label} is the primary again`;
      x.deps.outcome?.(text);
      x.note({ stdout: text });
      const lost = /(\d+) lost/.exec(text)?.[1];
      if (lost !== '0') throw new Error(`${lost ?? 'some'} acknowledged commits are missing on ${old.label}`);
    },
  };
}

/** The figures so far, counted on the member of `on` that accepts writes, written once; in words. */
async function recordDrill({ h, old, cand }: Drill, x: RunContext<DrillState>, on: InstanceRef[]): Promise<string> {
  const overAt = x.state.overAt ?? 0;
  const acks = x.state.writer?.acks ?? [];
  const acked = acks.map((a) => a.seq);
  const rows = await onPrimary<{ n: number }>(on, `SELECT count(*)::int AS n FROM ${x.state.table} WHERE seq = ANY($1::bigint[])`, [acked]);
  const lost = acked.length - (rows[0]?.n ?? 0);
  const first = overAt ? acks.find((a) => a.memberId === cand.id && a.at >= overAt) : undefined;
  const figures = { firstWriteMs: first ? first.at - overAt : null, longestGapMs: longestGap(acks), acknowledged: acked.length, lost };
  await x.deps.db
    .insert(drDrills)
    .values({
      herdId: h.id,
      operationId: x.deps.operation?.id ?? null,
      primaryLabel: old.label,
      candidateLabel: cand.label,
      candidateSite: cand.site,
      startedAt: x.state.startedAt ?? new Date(),
      ...figures,
    })
    .onConflictDoNothing();
  x.state.recorded = true;
  return `first write on ${cand.label} after ${figures.firstWriteMs === null ? 'none' : `${String(figures.firstWriteMs)} ms`}; longest gap ${String(figures.longestGapMs)} ms; ${String(acked.length)} commits acknowledged, ${String(lost)} lost`;
}

export const drDrillAction = defineHerdAction({
  name: 'dr-drill',
  control: asks('failover-drill'),
  label: 'DR drill',
  permission: 'admin',
  dangerous: true,
  params: {
    schema: drDrillParams,
    fields: [
      {
        name: 'candidateInstanceId',
        label: 'DR member',
        kind: 'herd-member',
        emptyLabel: "the most up-to-date replica outside the primary's site",
        help: "A running replica in another site than the primary's.",
      },
    ],
  },
  state: newDrillState,
  plan: (h, { params }) => planDrill(h, params),
});
