// Resize a herd: every member onto a new EC2 type while the herd keeps serving. The replicas first,
// one at a time, each drained, resized and streaming again with its names back before the next; then
// a switchover to a resized replica (no committed transaction lost, as the switchover action does
// it); then the old primary, now a replica, resized the same way; optionally a switchover back to it.
// One confirmation and one cost total for the herd. A member already on the target type is not
// resized again: a replica's resize is only finished (Postgres up, streaming, its DNS names pointed back),
// so a herd resize that stopped half-way, even in its last member, is finished by running it again.
import { z } from 'zod';
import { HOURS_PER_MONTH } from '@/lib/fleet/cloud/prices';
import type { TypeChoice } from '@/lib/fleet/cloud/rank';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { chooseCandidate } from '@/lib/fleet/candidates';
import { defineHerdAction, flagParam, productionWarning, type ActionPlan, type ActionStep, type Fact } from '@/lib/engine/define-action';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, Refusal } from '@/lib/fleet/refusal';
import { planResize, resizeWishForm } from './resize.action';
import { newResizeState, onlyToFinish, oneWish, oneWishError, resizeWishFields, type ResizeState } from '@/lib/actions/drivers/resize';
import { prepareCloud, type ResizePrepared } from '@/lib/actions/drivers/cloud-prepare';
import { membersAfterSwitchover, newSwitchoverState, type SwitchoverState } from '@/lib/actions/drivers/switchover';
import { inTurn, part, type Part } from '@/lib/engine/compose';
import { asks, planSwitchoverOf } from '@/lib/actions/drivers';

export const resizeHerdParams = z
  .object({
    ...resizeWishFields,
    /** The replica that becomes the primary; left out: the most up-to-date one when the plan is made. */
    candidateInstanceId: idText('candidateInstanceId', MAX_BIG_ID).optional(),
    /** Switch over again at the end, so the old primary is the primary again. */
    switchBack: flagParam(),
  })
  .strict()
  .refine(oneWish, oneWishError);

interface HerdResizeState {
  /** Each member's resize, by instance id. */
  resized: Map<number, ResizeState>;
  over: SwitchoverState;
  back: SwitchoverState;
}

const perMonth = (c: TypeChoice) => (c.perHour === null ? 'price unknown' : `$${(c.perHour * HOURS_PER_MONTH).toFixed(2)}/month`);

/** The member as it is once the switchover made it a replica of `cand`. */
const asReplicaOf = (m: InstanceRef, cand: InstanceRef): InstanceRef => ({
  ...m,
  role: 'replica',
  observedRole: 'replica',
  upstreamId: cand.id,
});

/** What the herd resize's parts share: the herd, each member's type now and the one chosen for it, the wish each resize is planned with. */
interface HerdResize {
  h: HerdRef;
  p: ResizePrepared;
  chosen: Map<number, { now: TypeChoice; to: TypeChoice }>;
  /** A member on the target type already: not resized. */
  staying: (m: InstanceRef) => boolean;
  wish: z.output<typeof resizeHerdParams>;
}

const refusedFor = (m: InstanceRef, r: Refusal) => refuse(r.code, `${m.label}: ${r.reason}`);

/**
 * The resize of herd `h`: what refuses it first; then each replica resized (or its resize finished), the old
 * primary's turn (a switchover, its resize, the switch back when asked for), and what each member runs.
 */
function planHerd(h: HerdRef, params: z.output<typeof resizeHerdParams>, p: ResizePrepared): ActionPlan<HerdResizeState> | Refusal {
  const fit = resizableHerd(h, p);
  if (fit instanceof Refusal) return fit;
  const { old, replicas } = fit;
  const cand = chooseCandidate(h.members, params.candidateInstanceId);
  if (typeof cand === 'string') return refuse('topology', cand);
  const chosen = typesChosen(h, p);
  const staying = (m: InstanceRef) => {
    const x = chosen.get(m.id);
    return !!x && x.now.name === x.to.name;
  };
  const z: HerdResize = { h, p, chosen, staying, wish: { ...params, candidateInstanceId: undefined, switchBack: undefined } };
  const parts: Part<HerdResizeState>[] = [];
  for (const m of replicas) {
    const x = replicaPart(z, m);
    if (x instanceof Refusal) return x;
    parts.push(x);
  }
  const oldParts = staying(old) ? [] : oldPrimaryParts(z, old, cand, params.switchBack);
  if (oldParts instanceof Refusal) return oldParts;
  parts.push(...oldParts);
  const primaryAtEnd = staying(old) || params.switchBack ? old : cand;
  const costs = herdCosts(z);
  return {
    steps: [...inTurn(parts), resizedStep(z, primaryAtEnd)],
    warnings: resizeWarnings(z, old),
    facts: resizeFacts(
      z,
      parts.map((x) => x.order),
      costs,
      old,
    ),
    cost: { nowPerHour: costs.now, afterPerHour: costs.then },
    state: () => ({ resized: new Map(), over: newSwitchoverState(), back: newSwitchoverState() }),
  };
}

/** The herd's one running primary and its replicas; or why the herd is not resized (no primary, a member down, no replica). */
function resizableHerd(h: HerdRef, p: ResizePrepared): { old: InstanceRef; replicas: InstanceRef[] } | Refusal {
  const primaries = h.members.filter((m) => m.role === 'primary' && m.state === 'running');
  if (primaries.length > 1) return refuse('topology', `the herd has ${primaries.length} running primaries`);
  if (!primaries.length) {
    // A switchover cut short before its promote leaves the old primary stopped and no other: the way
    // back is to start it (a host stopped in EC2: power it on), then run the herd resize again.
    const down = h.members.filter((m) => m.role === 'primary' && m.state !== 'fenced');
    const way = down.map((m) =>
      p.byServer.get(m.serverId)?.live?.state === 'stopped'
        ? `${m.label} (its EC2 host is stopped): power it on`
        : `${m.label} (${m.state}): start it`,
    );
    return refuse(
      'topology',
      `the herd has no running primary${way.length ? `; its primary is ${way.join(', ')}, then run the herd resize again` : ''}`,
    );
  }
  const old = primaries[0] as InstanceRef;
  // A replica down on the type asked for already is finished (started), not refused: a run cut short.
  const away = h.members.filter((m) => m.state !== 'running' && !(m.role === 'replica' && onlyToFinish(m, p.byServer.get(m.serverId))));
  if (away.length)
    return refuse(
      'not-applicable',
      `${away
        .map((m) =>
          p.byServer.get(m.serverId)?.live?.state === 'stopped'
            ? `${m.label} is ${m.state}, its EC2 host stopped: power it on`
            : `${m.label} is ${m.state}: start it`,
        )
        .join('; ')}; or take it out of the herd. A herd resize resizes every member (one cut short is finished by running it again)`,
    );
  const replicas = h.members.filter((m) => m.role === 'replica').sort((a, b) => a.id - b.id);
  if (!replicas.length)
    return refuse('not-applicable', 'the herd has no replica to switch over to: resizing its only member stops it (power it off and on)');
  return { old, replicas };
}

/** Each member's ranking, from what EC2 says now; a member already on the target is left as it is. */
function typesChosen(h: HerdRef, p: ResizePrepared): Map<number, { now: TypeChoice; to: TypeChoice }> {
  const chosen = new Map<number, { now: TypeChoice; to: TypeChoice }>();
  for (const m of h.members) {
    const c = p.byServer.get(m.serverId);
    if (c?.ranking?.ok) chosen.set(m.id, { now: c.ranking.current, to: c.ranking.target });
  }
  return chosen;
}

/** One member's resize as a part: its steps named for it, on its own state. */
function memberPart(steps: ActionStep<ResizeState>[], m: InstanceRef, order: string): Part<HerdResizeState> {
  return {
    order,
    steps: (settles) =>
      part<ResizeState, HerdResizeState>(
        steps,
        (s) => stateOf(s, m),
        (n) => `${m.hostname}: ${n}`,
        settles,
      ),
  };
}

/** A switchover's steps as a part, on its part of the state, named with `prefix`. */
function switchoverPart(
  steps: ActionStep<SwitchoverState>[],
  pick: (s: HerdResizeState) => SwitchoverState,
  prefix: string,
  order: string,
): Part<HerdResizeState> {
  return {
    order,
    steps: (settles) => part<SwitchoverState, HerdResizeState>(steps, pick, (n) => `${prefix}: ${n}`, settles),
  };
}

/** A replica's resize as a part; or why it is refused (which refuses the herd). */
function replicaPart({ h, p, wish, staying, chosen }: HerdResize, m: InstanceRef): Part<HerdResizeState> | Refusal {
  // A replica on the type already: its resize's finish (what one cut short leaves undone), nothing resized.
  const plan = planResize(m, { members: h.members, params: wish, prepared: p });
  if (plan instanceof Refusal) return refusedFor(m, plan);
  return memberPart(plan.steps, m, staying(m) ? `finish ${m.label} (already ${chosen.get(m.id)?.now.name ?? '?'})` : `resize ${m.label}`);
}

/** The old primary's turn: a switchover to `cand`, its resize as a replica, and the switch back when asked for; or why not. */
function oldPrimaryParts(
  { h, p, wish }: HerdResize,
  old: InstanceRef,
  cand: InstanceRef,
  switchBack: boolean | undefined,
): Part<HerdResizeState>[] | Refusal {
  // The primary is checked like a replica before anything runs: a refusal for it refuses the herd now.
  const after = membersAfterSwitchover(h, old, cand);
  const oldAfter = asReplicaOf(old, cand);
  const oldPlan = planResize(oldAfter, { members: after, params: wish, prepared: p });
  if (oldPlan instanceof Refusal) return refusedFor(old, oldPlan);
  const over = planSwitchoverOf(h, { candidateInstanceId: cand.id });
  if (over instanceof Refusal) return refusedFor(cand, over);
  if (over.refused) return refusedFor(cand, over.refused);
  const parts = [
    switchoverPart(over.steps, (s) => s.over, 'switchover', `switch over to ${cand.label}`),
    memberPart(oldPlan.steps, old, `resize ${old.label}`),
  ];
  if (!switchBack) return parts;
  const back = planSwitchoverOf({ ...h, members: after }, { candidateInstanceId: old.id });
  if (back instanceof Refusal) return refusedFor(old, back);
  return [...parts, switchoverPart(back.steps, (s) => s.back, 'switch back', `switch back to ${old.label}`)];
}

/** Once the last member's names are back: the type each member runs now, and the primary. */
function resizedStep({ h, chosen }: HerdResize, primaryAtEnd: InstanceRef): ActionStep<HerdResizeState> {
  return {
    name: 'the herd resized',
    does: { kind: 'herd.report-resized', primary: primaryAtEnd.id },
    says: `once the last member's names are back: what each member runs now; ${primaryAtEnd.label} is the primary`,
    timeoutMs: 10_000,
    settles: true,
    run: (x) => {
      const runs = h.members.map((m) => `${m.hostname}: ${x.state.resized.get(m.id)?.landed ?? chosen.get(m.id)?.now.name ?? '?'}`);
      const text = `${runs.join(', ')}; ${primaryAtEnd.label} is the primary`;
      x.deps.outcome?.(text);
      x.note({ stdout: text });
      return Promise.resolve();
    },
  };
}

/** One cost for the herd: each member now and after (a member left as it is costs the same after), and each member's fact. */
function herdCosts({ h, chosen, staying }: HerdResize): { now: number | null; then: number | null; memberFacts: Fact[] } {
  let now: number | null = 0;
  let then: number | null = 0;
  const memberFacts: Fact[] = [];
  for (const m of h.members) {
    const x = chosen.get(m.id);
    if (!x) continue;
    now = now === null || x.now.perHour === null ? null : now + x.now.perHour;
    then = then === null || x.to.perHour === null ? null : then + x.to.perHour;
    memberFacts.push({
      label: `${m.hostname} (${m.role})`,
      value: staying(m)
        ? `already ${x.now.name} (${perMonth(x.now)}): not resized${m.role === 'replica' ? '; Postgres started if it is down, its DNS names pointed at it again once it streams' : ''}`
        : `${x.now.name} (${perMonth(x.now)}) to ${x.to.name} (${perMonth(x.to)})`,
    });
  }
  return { now, then, memberFacts };
}

/** Production; the clients' connections at the switchover (none when the primary stays as it is). */
function resizeWarnings({ h, staying }: HerdResize, old: InstanceRef) {
  return [
    ...productionWarning(h),
    ...(staying(old)
      ? []
      : [
          h.poolers.length
            ? 'writes through PgBouncer wait during the switchover (about a second); direct connections to the primary are closed'
            : 'clients connected to the primary lose their connections at the switchover; the herd has no PgBouncer to hold them',
        ]),
  ];
}

/** The confirmation page's facts: the order, each member's type before and after, the herd's cost, the prices' source. */
function resizeFacts(
  { p, staying }: HerdResize,
  order: string[],
  { now, then, memberFacts }: ReturnType<typeof herdCosts>,
  old: InstanceRef,
): Fact[] {
  const month = (v: number) => `$${(v * HOURS_PER_MONTH).toFixed(2)}/month`;
  const change = now !== null && then !== null ? then - now : null;
  return [
    { label: 'In order', value: order.join('; then ') },
    ...memberFacts,
    {
      label: 'Cost of the herd',
      value:
        now === null || then === null || change === null
          ? 'unknown (no price for one of the types)'
          : `${month(now)} now, ${month(then)} after (${change < 0 ? '-' : '+'}${month(Math.abs(change))})`,
    },
    { label: 'Prices', value: `${p.prices.source}, as of ${p.prices.date}` },
    ...(staying(old)
      ? []
      : [{ label: 'Committed transactions lost', value: 'none: the switchover promotes a replica only once it has replayed all' }]),
  ];
}

function stateOf(s: HerdResizeState, m: InstanceRef): ResizeState {
  let r = s.resized.get(m.id);
  if (!r) {
    r = newResizeState();
    s.resized.set(m.id, r);
  }
  return r;
}

export const resizeHerdAction = defineHerdAction({
  name: 'resize-herd',
  control: asks('resize-herd'),
  label: 'Resize a herd (EC2)',
  permission: 'admin',
  dangerous: true,
  runsAsConfirmed: true,
  params: {
    schema: resizeHerdParams,
    fields: [
      ...resizeWishForm,
      {
        name: 'candidateInstanceId',
        label: 'New primary',
        kind: 'herd-member',
        emptyLabel: 'the most up-to-date replica',
        help: 'The replica the herd switches over to once the replicas are resized.',
      },
      {
        name: 'switchBack',
        label: 'Switch back at the end',
        kind: 'flag',
        emptyLabel: 'the resized replica stays the primary',
        help: 'A second switchover, once the old primary is resized, makes it the primary again.',
      },
    ],
  },
  prepare: (herds, params, db) =>
    prepareCloud(
      herds.flatMap((h) => h.members),
      db,
      params,
    ),
  plan: (h, { params, prepared }) => planHerd(h, params, prepared),
});
