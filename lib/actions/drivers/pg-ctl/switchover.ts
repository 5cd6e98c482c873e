// pg_ctl's switchover: a planned change of primary with no committed transaction lost. The old primary stops
// cleanly only after its poolers hold new queries; the candidate is promoted only once it has
// replayed the old primary's shutdown checkpoint, i.e. everything the old primary ever committed.
// Undo steps are registered before the steps they undo: poolers are always resumed, and the old
// primary is started again as primary when no replica was promoted.
import { lsnDiff } from '@/lib/adapters/format/lsn';
import { eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { instances } from '@/db/schema';
import { formatBytes } from '@/lib/adapters/format/units';
import { bytesOrUnknown, lagOf } from '@/lib/fleet/candidates';
import { productionWarning, type ActionDeps, type ActionPlan, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { describeRecordMove, dnsPreflight, dnsSteps } from '@/lib/actions/steps/dns-steps';
import { memberArg } from '@/lib/engine/plan-identity';
import { recordTargets } from '@/lib/fleet/dns-records';
import { binDir, driverFor, notSentBecause } from '@/lib/fleet/drivers';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import { herdIdentity, identityProblem } from '@/lib/fleet/identity';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, sessionTo, waitObserved } from '@/lib/fleet/observe';
import { replayedPast } from '@/lib/actions/steps/replay';
import type { StepContext } from '@/lib/engine/pipeline';
import { checkPooler, pauseBudgetFacts, pauseSteps, repointAndResumeSteps } from '@/lib/actions/steps/pooler-steps';
import { DEFAULT_PAUSE_BUDGET_S } from '@/lib/actions/steps/pooler-resume';
import { refuse, type Refusal, type RefusalCode } from '@/lib/fleet/refusal';
import { refreshFleet } from '@/lib/fleet/refresher';
import { checkpointStep, describeObserved, pointAt, promoteNow, recordNewPrimary, rejoinSteps } from '@/lib/actions/steps/topology-steps';
import { execNoted, execNotedOk } from '@/lib/actions/steps/exec-noted';
import { SshCommandError } from '@/lib/adapters/ssh/ssh-errors';
import { membersAfterSwitchover, switchoverPair, switchoverParams, DEFAULT_MAX_LAG_BYTES, type SwitchoverState } from '../switchover';

/** How long the undo waits for a promotion that was sent to show whether it went through. */
const PROMOTE_SETTLE_MS = 10_000;

/** "Latest checkpoint location" of a cluster shut down cleanly, from pg_controldata's words; null when it was not. */
function shutdownIn(stdout: string): { lsn: string | null; state: string | null } {
  const state = /^Database cluster state:\s+(.+)$/m.exec(stdout)?.[1]?.trim() ?? null;
  const lsn = /^Latest checkpoint location:\s+([0-9A-F]+\/[0-9A-F]+)$/m.exec(stdout)?.[1] ?? null;
  return { lsn: state === 'shut down' ? lsn : null, state };
}

/** "Latest checkpoint location" of a stopped cluster, read with pg_controldata; refuses one not shut down cleanly. */
async function shutdownCheckpoint(t: InstanceRef, deps: ActionDeps, ctx: StepContext): Promise<string> {
  const { stdout } = await execNotedOk(deps, t, ctx, [`${binDir(t.pgVersion)}/pg_controldata`, '-D', t.dataDirectory], 15_000);
  const { lsn, state } = shutdownIn(stdout);
  if (!lsn) throw new Error(`${t.label} is not cleanly shut down (pg_controldata says "${state ?? 'nothing'}")`);
  return lsn;
}

/**
 * The stop, then (once it stopped, in the same command) pg_controldata, whose shutdown checkpoint the
 * candidate must replay: the pause waits for one SSH round trip less. Its exit code is the stop's.
 */
function stopThenControlData(t: InstanceRef, stop: string[]): string[] {
  const script = 'c=$1; d=$2; shift 2; "$@" || exit $?; echo; LC_ALL=C "$c" -D "$d" || true';
  return ['sh', '-c', script, 'sh', `${binDir(t.pgVersion)}/pg_controldata`, t.dataDirectory, ...stop];
}

interface Pair {
  old: InstanceRef;
  cand: InstanceRef;
  maxLag: number;
}

/**
 * Refuses unless every member answers, is the herd's and on the primary's timeline, the old primary
 * answers as the primary, the candidate as a streaming replica less than `maxLag` behind, and every
 * DNS server and PgBouncer answers. Returns the record's lines.
 */
async function preflight(h: HerdRef, { old, cand, maxLag }: Pair, x: RunContext<SwitchoverState>): Promise<string[]> {
  // The candidate over a session kept for the pause: its replay is waited for and it is promoted over it.
  x.state.candidate?.close();
  const session = (x.state.candidate = sessionTo(cand, { idleMs: 60_000 }));
  const seen = await Promise.all(h.members.map(async (m) => ({ m, o: await (m.id === cand.id ? session.look() : observe(m, 2000)) })));
  const lines = seen.map(({ m, o }) => describeObserved(m, o));
  const fail = (code: RefusalCode, why: string) => {
    x.note({ stdout: lines.join('\n') });
    return refuse(code, `${why}; nothing was changed`);
  };
  const down = seen.filter(({ o }) => !o.reachable);
  if (down.length) throw fail('unreachable', `${down.map(({ m }) => m.label).join(', ')} does not answer: every member must`);
  const po = seen.find(({ m }) => m.id === old.id)?.o;
  const co = seen.find(({ m }) => m.id === cand.id)?.o;
  if (!po || !co) throw new Error('the old primary and the candidate are members of the herd');
  if (po.inRecovery) throw fail('topology', `${old.label} answers as a replica, not as the primary`);
  // Every member is promoted or re-pointed below: each must be the herd's, on the primary's timeline.
  const id = herdIdentity(
    h.systemIdentifier,
    seen.map(({ o }) => o),
  );
  if (id.ambiguous) throw fail('identity', id.ambiguous);
  const want = { systemIdentifier: id.systemIdentifier, timeline: po.timeline ?? null };
  for (const { m, o } of seen) {
    const why = identityProblem(m, o, want);
    if (why) throw fail('identity', why);
  }
  if (!co.inRecovery) throw fail('split-brain', `${cand.label} answers as a primary`);
  if (co.walReceiver?.status !== 'streaming')
    throw fail('unreachable', `${cand.label} is not streaming (${co.walReceiver?.status ?? 'no WAL receiver'})`);
  const lag = lsnDiff(po.lsn, co.lsn) ?? Infinity;
  if (lag > maxLag) throw fail('lag', `${cand.label} has ${formatBytes(lag)} left to replay (limit ${formatBytes(maxLag)})`);
  lines.push(...(await dnsPreflight(h)));
  for (const pl of h.poolers) lines.push(await checkPooler(pl, x.deps, x, { pauses: true }));
  return lines;
}

/**
 * The stop's undo: the old primary is started again as primary when no replica was promoted; never
 * once pg_promote was sent (then it stays stopped and fenced, whichever way the promotion went).
 */
async function startOldUnlessPromoted({ old, cand }: Pair, x: RunContext<SwitchoverState>): Promise<void> {
  const { state } = x;
  if (!state.stopping || state.promoted) {
    state.candidate?.close();
    return void x.note({ stdout: `skipped: ${state.promoted ? `${cand.label} was promoted` : `${old.label} was not stopped`}` });
  }
  // A promotion given up on may still be under way: let the attempt settle (it sends nothing once stopped).
  if (state.promoteAttempt) await Promise.race([state.promoteAttempt.catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
  state.candidate?.close();
  if (state.promoteSent) {
    // A promotion sent usually completes within a second: give it PROMOTE_SETTLE_MS to show which way it went.
    const co = await waitObserved(cand, 'out of recovery', (o) => o.reachable && o.inRecovery === false, {
      signal: x.signal,
      timeoutMs: PROMOTE_SETTLE_MS,
      everyMs: 50,
    }).catch(() => observe(cand, 2000));
    if (co.reachable && co.inRecovery === false) {
      state.promoted = true; // the PgBouncer cleanups point at it before they resume
      const text = `${cand.label} finished its promotion after the switchover gave up on it: it is the primary; ${old.label} stays stopped (never started as a second primary). DNS, the other replicas and ${old.label} were not moved: refresh DNS, re-point them, rebuild ${old.label}`;
      x.deps.outcome?.(text);
      await recordNewPrimary(x.deps, cand, co.timeline);
      await x.deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
      return void x.note({ stdout: text });
    }
    const text = `pg_promote was sent to ${cand.label}, which ${co.reachable ? 'has not left recovery' : `does not answer (${co.error ?? 'no reason given'})`}: its promotion may still complete, so ${old.label} stays stopped rather than risk two primaries. The herd may have no primary: check ${cand.label}, then refresh DNS, or, once ${cand.label} is stopped, set ${old.label}'s state in the inventory and start it`;
    x.deps.outcome?.(text);
    // pgherd will not start it either until someone who has looked says so (a rebuild, or its state changed by an admin).
    await x.deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
    throw new Error(text);
  }
  if ((await observe(old, 2000)).reachable) return void x.note({ stdout: `skipped: ${old.label} answers` });
  await execNotedOk(x.deps, old, x, driverFor(old.controlDriver).start(old));
  await waitObserved(old, 'accepting writes', (o) => o.reachable && o.inRecovery === false, { signal: x.signal, timeoutMs: 60_000 });
  x.note({ stdout: `${old.label} is the primary again` });
}

/** The inventory once it is done: the candidate is the primary, everyone else streams from it. */
async function recordTopology(h: HerdRef, { old, cand }: Pair, others: InstanceRef[], deps: ActionDeps): Promise<void> {
  await deps.db
    .update(instances)
    .set({ role: 'primary', observedRole: 'primary', upstreamInstanceId: null, lagBytes: 0, lagSeconds: 0 })
    .where(eq(instances.id, cand.id));
  await deps.db
    .update(instances)
    .set({ role: 'replica', upstreamInstanceId: cand.id })
    .where(inArray(instances.id, [old.id, ...others.map((m) => m.id)]));
  await refreshFleet(deps.db, { ids: h.members.map((m) => m.id), timeoutMs: 2000 });
  deps.outcome?.(`${cand.label} is the primary; ${old.label} streams from it; no committed transaction lost`);
}

/** What the steps of a pg_ctl switchover share: the pair and its lag limit, the herd, the other members, the deadlines. */
interface Switchover extends Pair {
  h: HerdRef;
  p: z.output<typeof switchoverParams>;
  /** The members other than the old primary and the candidate. */
  others: InstanceRef[];
  /** The herd once the candidate is its primary. */
  after: InstanceRef[];
  catchUpMs: number;
  budgetS: number;
}

/** A switchover's plan: its facts, its steps, refused when its candidate lags too far. A herd resize plans its own with it. */
export function planSwitchover(h: HerdRef, p: z.output<typeof switchoverParams>): ActionPlan<SwitchoverState> | Refusal {
  if (p.scheduledAt)
    return refuse('not-applicable', 'a switchover at a scheduled time is Patroni\u2019s: on this herd, schedule it with a rule');
  const maxLag = p.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES;
  const chosen = switchoverPair(h, p.candidateInstanceId);
  if (typeof chosen === 'string') return refuse('topology', chosen);
  const { old, cand } = chosen;
  const lag = lagOf(old, cand);
  const sw: Switchover = {
    ...chosen,
    maxLag,
    h,
    p,
    others: h.members.filter((m) => m.id !== old.id && m.id !== cand.id),
    after: membersAfterSwitchover(h, old, cand),
    catchUpMs: p.catchUpDeadlineMs ?? 30_000,
    budgetS: p.pauseBudgetSeconds ?? DEFAULT_PAUSE_BUDGET_S,
  };
  const { after } = sw;
  return {
    change: { kind: 'switchover', candidateId: cand.id },
    facts: switchoverFacts(sw, lag),
    refused:
      lag !== null && lag > maxLag
        ? refuse('lag', `${cand.label} is ${formatBytes(lag)} behind (limit ${formatBytes(maxLag)})`)
        : undefined,
    warnings: switchoverWarnings(sw),
    steps: [
      preflightStep(sw),
      checkpointStep(`checkpoint on ${old.label}`, `CHECKPOINT on ${old.label} (keeps its clean stop short)`, () => old, memberArg(old)),
      ...pauseSteps<SwitchoverState>(h.poolers, () => cand, sw.budgetS),
      stopOldStep(sw),
      replayedShutdownStep(sw),
      promoteStep(sw),
      ...dnsSteps(
        h,
        () => after,
        (r) => recordTargets(r, after),
        (r) => describeRecordMove(r, after),
      ),
      ...repointAndResumeSteps<SwitchoverState>(h.poolers, () => cand, cand),
      checkpointStep(`checkpoint on ${cand.label}`, `CHECKPOINT on ${cand.label}`, () => cand, memberArg(cand)),
      ...sw.others.map((m) => repointStep(m, cand)),
      ...rejoinSteps<SwitchoverState>(old, () => cand, cand, `${old.label}: `),
      recordTopologyStep(sw),
    ],
  };
}

/** The confirmation page's facts of a switchover: the old and new primary, the lag, the DNS names, nothing lost, the pause budget. */
function switchoverFacts({ h, old, cand, maxLag, budgetS }: Switchover, lag: number | null) {
  return [
    { label: 'Old primary', value: old.label },
    { label: 'New primary', value: `${cand.label}${cand.site ? ` (site ${cand.site})` : ''}` },
    { label: 'Lag now', value: `${bytesOrUnknown(lag)} (limit ${formatBytes(maxLag)})` },
    ...h.dns.map((r) => ({ label: `DNS ${r.name}`, value: `${r.type} -> ${cand.hostname}, TTL ${r.ttl} s` })),
    {
      label: 'Committed transactions lost',
      value: 'none: the candidate replays everything the old primary wrote before it is promoted',
    },
    ...pauseBudgetFacts(h.poolers, budgetS),
  ];
}

/** What its clients go through, and a catch-up deadline the PgBouncer pause budget may not cover. */
function switchoverWarnings({ h, catchUpMs, budgetS }: Switchover) {
  return [
    ...productionWarning(h),
    h.poolers.length
      ? 'writes through PgBouncer wait during the switch (about a second); direct connections to the old primary are closed'
      : 'clients connected to the old primary lose their connections; the herd has no PgBouncer to hold them',
    ...(h.poolers.length && catchUpMs / 1000 + 10 > budgetS
      ? [
          `the catch-up deadline (${catchUpMs / 1000} s) is near or past the PgBouncer pause budget (${budgetS} s): should the candidate take that long, PgBouncer resumes before the switch is done and its clients meet the stopped old primary`,
        ]
      : []),
  ];
}

/** Every member, DNS server and PgBouncer asked; refused, with nothing changed, unless the switch can go ahead. */
function preflightStep(sw: Switchover): ActionStep<SwitchoverState> {
  const { h, old, cand, maxLag } = sw;
  return {
    name: 'pre-flight',
    does: {
      kind: 'switchover.preflight',
      old: memberArg(old),
      candidate: memberArg(cand),
      maxLagBytes: maxLag,
      members: h.members.map(memberArg),
      dns: h.dns.map((r) => r.id),
      poolers: h.poolers.map((pl) => pl.id),
    },
    says: `pre-flight: every member answers, ${cand.label} streams and is less than ${formatBytes(maxLag)} behind, the DNS servers answer${h.poolers.length ? ', the PgBouncers answer' : ''}`,
    timeoutMs: 30_000,
    run: async (x) => {
      const lines = await preflight(h, sw, x).catch((err: unknown) => {
        x.state.candidate?.close(); // refused: nothing follows that would use it
        throw err;
      });
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** The old primary stopped cleanly; should no replica be promoted, it is started again as primary. */
function stopOldStep(sw: Switchover): ActionStep<SwitchoverState> {
  const { old, cand } = sw;
  return {
    name: `stop ${old.label} (fast, clean)`,
    does: {
      kind: 'pg.fence-stop',
      instance: memberArg(old),
      driver: old.controlDriver,
      mode: 'fast',
      dataDirectory: old.dataDirectory,
    },
    says: `stop ${old.label} cleanly (${old.controlDriver} stop -m fast)`,
    timeoutMs: 160_000,
    run: async (x) => {
      x.state.stopping = true;
      // Behind a look at the postmaster: a stop sent to a frozen one would wait in it and strike
      // whenever it runs again, long after this switchover gave up and resumed its clients.
      const r = await execNoted(x.deps, old, x, stopThenControlData(old, driverFor(old.controlDriver).fenceStop(old, 'fast')));
      const notSent = notSentBecause(r);
      if (notSent) {
        x.state.stopping = false;
        throw refuse('unreachable', `${old.label}: ${notSent}, so no stop was sent; nothing was changed`);
      }
      if (r.code !== 0) throw new SshCommandError(old.ssh.host, `${old.controlDriver} stop -m fast`, r.code, r.signal, r.stderr);
      x.state.shutdownAt = shutdownIn(r.stdout).lsn ?? undefined;
    },
    always: {
      name: `start ${old.label} again as primary if no replica was promoted`,
      does: { kind: 'pg.start-unless-promoted', instance: memberArg(old), promoted: memberArg(cand) },
      says: `should the switchover stop before pg_promote is sent to ${cand.label}, it is started again as primary (once it is sent, never: it stays stopped and fenced)`,
      timeoutMs: 180_000,
      // After a lost lease, still done while the herd cannot be anyone else's yet: left stopped with
      // nothing promoted, the herd would have no primary.
      whileHeld: true,
      run: (x) => startOldUnlessPromoted(sw, x),
    },
  };
}

/** Waits until the candidate has replayed the old primary's shutdown checkpoint: everything it ever committed. */
function replayedShutdownStep({ old, cand, catchUpMs }: Switchover): ActionStep<SwitchoverState> {
  return {
    name: `wait until ${cand.label} has replayed everything ${old.label} wrote`,
    does: { kind: 'pg.wait-replayed-shutdown', instance: memberArg(cand), of: memberArg(old), catchUpMs },
    says: `wait until ${cand.label} has replayed ${old.label}\u2019s shutdown checkpoint (pg_controldata)`,
    timeoutMs: catchUpMs + 30_000,
    run: async (x) => {
      const last = x.state.shutdownAt ?? (await shutdownCheckpoint(old, x.deps, x));
      // The candidate has replayed the shutdown checkpoint record once its replay position is past its start.
      const session = (x.state.candidate ??= sessionTo(cand, { idleMs: 60_000 }));
      const replayed = await replayedPast(session, last, { signal: x.signal, deadlineMs: catchUpMs }).catch((err: unknown) => {
        throw new Error(`${cand.host}:${String(cand.port)} ${(err as Error).message}`);
      });
      x.note({ stdout: `${old.label} shut down at ${last}; ${cand.label} replayed ${replayed}` });
    },
  };
}

/** The candidate promoted, what the undo needs to know said as it goes (sent, attempted, promoted), and recorded the primary. */
function promoteStep({ cand, p }: Switchover): ActionStep<SwitchoverState> {
  return {
    name: `promote ${cand.label}`,
    does: { kind: 'pg.promote', instance: memberArg(cand), deadlineMs: p.promoteDeadlineMs },
    says: `promote ${cand.label} (pg_promote) and wait until it accepts writes`,
    timeoutMs: 90_000,
    run: async (x) => {
      const attempt = promoteNow(cand, x, {
        onSent: () => {
          x.state.promoteSent = true;
        },
        deadlineMs: p.promoteDeadlineMs,
        over: x.state.candidate,
      });
      x.state.promoteAttempt = attempt;
      const o = await attempt;
      x.state.promoted = true;
      await recordNewPrimary(x.deps, cand, o.timeline);
      x.note({ stdout: `${cand.label} accepts writes on timeline ${o.timeline ?? 'unknown'}` });
    },
  };
}

/** Another replica re-pointed to the new primary, its replay resumed. */
function repointStep(m: InstanceRef, cand: InstanceRef): ActionStep<SwitchoverState> {
  return {
    name: `re-point ${m.label} to ${cand.label}`,
    does: { kind: 'pg.point-at', instance: memberArg(m), upstream: memberArg(cand), resumeReplay: true },
    says: `re-point ${m.label} to ${cand.label}`,
    timeoutMs: 200_000,
    run: async (x) => {
      const o = await pointAt(m, cand, x.deps, x, { resumeReplay: true });
      x.note({ stdout: `streaming from ${o.walReceiver?.senderHost ?? '?'}:${o.walReceiver?.senderPort ?? '?'}` });
    },
  };
}

/** The new topology in the inventory: the candidate the primary, every other member its replica. */
function recordTopologyStep(sw: Switchover): ActionStep<SwitchoverState> {
  const { h, old, cand, others } = sw;
  return {
    name: 'record the new topology',
    does: { kind: 'inventory.record-topology', primary: cand.id, replicas: [old.id, ...others.map((m) => m.id)] },
    says: `record the new topology: ${cand.label} the primary, every other member its replica`,
    timeoutMs: 20_000,
    run: (x) => recordTopology(h, sw, others, x.deps),
  };
}
