// What a DR failover is made of, whichever driver runs it: its parameters, the pair, what its steps tell
// each other, and the steps pgherd runs itself around a promotion (the pre-flight, the fence over SSH
// and the look that proves it, keeping the old primary stopped, choosing the candidate by its WAL when
// it runs, re-pointing the other replicas, watching the fence afterwards). pg_ctl's plan and RDS's use
// them; Patroni's leader key is its own fence.
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { idText, MAX_BIG_ID } from '@/lib/adapters/validation/ids';
import { instances } from '@/db/schema';
import { lsnToNumber } from '@/lib/adapters/format/lsn';
import { driverFor, notSentBecause, postmasterHeld, STATUS_NOT_RUNNING } from '@/lib/fleet/drivers';
import { flagParam, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { dnsPreflight } from '@/lib/actions/steps/dns-steps';
import { memberArg, type Arg, type Does } from '@/lib/engine/plan-identity';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, sessionsOfRun, type Observed, type RunSessions } from '@/lib/fleet/observe';
import { answeringAsPrimary, observeOthers } from '@/lib/fleet/herd-primary';
import { refuse } from '@/lib/fleet/refusal';
import { errorText } from '@/lib/engine/errors';
import { chooseCandidate, recordedPrimary } from '@/lib/fleet/candidates';
import { describeObserved, pointAt } from '@/lib/actions/steps/topology-steps';
import { herdIdentity, identityProblem } from '@/lib/fleet/identity';
import { execNoted } from '@/lib/actions/steps/exec-noted';
import { SshTimeoutError } from '@/lib/adapters/ssh/ssh-errors';
import { recordTwoPrimaries, TwoPrimariesError } from '@/lib/fleet/two-primaries';
import { recordNoPrimary } from '@/lib/fleet/no-primary';
import { type PatroniSwitchState } from '@/lib/actions/drivers/patroni/switch';

export const drFailoverParams = z
  .object({
    /** Promote this replica (if it answers); left out: the reachable replica with the highest received LSN. */
    candidateInstanceId: idText('candidateInstanceId', MAX_BIG_ID).optional(),
    /** How long the candidate may take to replay what it received before it is promoted anyway (ms). */
    replayDeadlineMs: z.coerce.number().int().min(0).max(3_600_000).optional(),
    /**
     * The operator says the old primary cannot accept writes (powered off, cut off from every client):
     * pgherd then promotes without proving it. Recorded with the operation in the audit log.
     */
    fencedByOperator: flagParam(),
  })
  .strict();

/** How long the old primary has to answer before it is taken for gone. */
export const FENCE_PROBE_MS = 1500;
/** How long a replica re-pointed after the promotion has to stream the new timeline before it is marked needs rebuild. */
export const FOLLOW_MS = 20_000;
/** How long asking its host whether it runs may take. */
export const FENCE_FAST_MS = 5_000;
/** How long stopping it over SSH may take before the fence counts as not proven. */
export const FENCE_STOP_MS = 15_000;
/**
 * How long the old primary is watched after the promotion: a supervisor (systemd's Restart=, a
 * cron job, a person) starts a stopped service again within seconds.
 */
export const FENCE_WATCH_MS = 8_000;
export const FENCE_WATCH_EVERY_MS = 250;

/** Received, then replayed, LSN, highest first: the candidate with the most WAL wins. */
export function byWal(a: { o: Observed }, b: { o: Observed }): number {
  const pos = (x?: string | null) => (x ? lsnToNumber(x) : -1);
  return pos(b.o.receiveLsn ?? b.o.lsn) - pos(a.o.receiveLsn ?? a.o.lsn) || pos(b.o.lsn) - pos(a.o.lsn);
}

/** The inventory's view of the failover: the old primary and who would be chosen now. */
export function drPair(h: HerdRef, candidateId?: number): { old: InstanceRef; cand: InstanceRef } | string {
  const old = recordedPrimary(h.members);
  if (typeof old === 'string') return old;
  const cand = chooseCandidate(h.members, candidateId);
  if (typeof cand === 'string')
    return cand === 'the herd has no running replica' ? 'the herd has no running replica to fail over to' : cand;
  return { old, cand };
}

/** The herd once `cand` is its primary and `old` is fenced: where its DNS records point. */
export function membersAfterFailover(h: HerdRef, old: InstanceRef, cand: InstanceRef): InstanceRef[] {
  return h.members.map((m) =>
    m.id === cand.id
      ? { ...m, role: 'primary' as const, state: 'running', upstreamId: null }
      : m.id === old.id
        ? { ...m, state: 'fenced' }
        : m,
  );
}

/** What the steps of one failover find and tell each other. */
export interface DrState extends PatroniSwitchState {
  /** The replica chosen when it runs, and what it said then. */
  chosen?: { m: InstanceRef; o: Observed };
  /** What the candidate said once promoted (the inventory records it, with no new connection). */
  promotedAs?: Observed;
  /** The old primary's last LSN and timeline: as the inventory had them, or as seen by the fence. */
  oldLastLsn: string | null;
  oldTimeline: number | null;
  lastSeenHow: string;
  /** Replicas that could not follow the new primary (marked needs rebuild). */
  leftBehind: string[];
  /** Why the old primary's host may start it again (its supervisor could not be told not to). */
  notKeptStopped?: string;
  /** Every step ran: the herd has the new primary it watched for. */
  finished?: boolean;
  /**
   * The sessions the pre-flight opened to the replicas, looked over again to choose the candidate and to
   * watch its replay (closed once it is promoted, or by themselves when idle): one connection a replica.
   */
  sessions?: RunSessions;
}

/** The run's sessions to the replicas (made on first use). */
export const sessionsOf = (s: DrState): RunSessions => (s.sessions ??= sessionsOfRun());

/** A look at a replica over the run's session to it. */
const lookOver = (s: DrState) => (m: InstanceRef) => sessionsOf(s).of(m).look();

export type Params = z.output<typeof drFailoverParams>;

export function chosen(s: DrState): { m: InstanceRef; o: Observed } {
  if (!s.chosen) throw new Error('no candidate was chosen');
  return s.chosen;
}

/** The target's outcome line: who is the primary, and what may have been lost. */
export function outcomeOf(old: InstanceRef, s: DrState): string {
  const { m: cand, o } = chosen(s);
  const received = o.receiveLsn ?? o.lsn ?? null;
  const loss = s.oldLastLsn && received ? Math.max(0, lsnToNumber(s.oldLastLsn) - lsnToNumber(received)) : null;
  return (
    `${cand.label} is the primary; ${old.label} is fenced; possible data loss: ${loss === null ? 'unknown' : `${loss} bytes`}` +
    ` (old primary\u2019s last LSN ${s.oldLastLsn ?? 'unknown'} ${s.lastSeenHow}, new primary received ${received ?? 'unknown'})` +
    (s.leftBehind.length ? `; not following the new primary, marked needs rebuild: ${s.leftBehind.join(', ')}` : '') +
    (s.notKeptStopped ? `; ${s.notKeptStopped}: make sure it stays stopped` : '')
  );
}

/** A member other than the recorded primary that accepts writes: promoting a third would make it worse. */
export function refuseSplitBrain(old: InstanceRef, seen: { m: InstanceRef; o: Observed }[], then: string): void {
  const writable = answeringAsPrimary(seen);
  if (!writable.length) return;
  throw refuse(
    'split-brain',
    `${writable.map(({ m, o }) => `${m.label} answers as a primary (timeline ${o.timeline ?? 'unknown'})`).join(', ')}, though the inventory has ${old.label} as the herd's primary: ` +
      `it was promoted outside this failover. ${then} Find out which one clients write to; rebuild the other(s) from it`,
  );
}

/** Before anything changes: some replica answers, none is a second primary, the DNS servers take pgherd's key. */
export async function preflight(h: HerdRef, old: InstanceRef, x: RunContext<DrState>): Promise<void> {
  const seen = await observeOthers(old, h.members, lookOver(x.state));
  const lines = seen.map(({ m, o }) => describeObserved(m, o));
  x.note({ stdout: lines.join('\n') });
  refuseSplitBrain(old, seen, 'Nothing was changed.');
  if (!seen.some(({ o }) => o.reachable && o.inRecovery)) throw refuse('unreachable', 'no replica answers; nothing was changed');
  lines.push(...(await dnsPreflight(h)));
  x.note({ stdout: lines.join('\n') });
}

/** An SSH command that could not run (the host gone, SSH refused), as a result to record and judge. */
export const sshFailed = (err: unknown) => ({ code: -1, signal: null, stdout: '', stderr: errorText(err) });

/** What a stop over SSH came to, for the fence's record and its refusal. */
export interface StopOutcome {
  stopped: boolean;
  lines: string[];
  /** Why it failed, in words; '' when it stopped. */
  last: string;
  /** Why nothing was sent (its postmaster would not act on a signal now); set only then. */
  notSent?: string;
}

/**
 * Stops it over SSH where SSH reaches its host (-m immediate), after asking whether it runs. The stop
 * is the driver's fence stop: confirmed, or not sent. A postmaster that is stopped (SIGSTOP), traced
 * or held by the kernel would keep the signal and act on it whenever it runs again, long after this
 * failover was refused for want of proof: the herd would then lose its primary with nobody told. So
 * its host is asked first, in the same remote script, and nothing is sent to one in such a state.
 */
export async function stopOverSsh(old: InstanceRef, x: RunContext<DrState>): Promise<StopOutcome> {
  const lines: string[] = [];
  const driver = driverFor(old.controlDriver);
  // Already stopped (its port refused): a stop would fail saying there is nothing to stop.
  const st = await execNoted(x.deps, old, x, driver.status(old), FENCE_FAST_MS).catch(sshFailed);
  if (st.code === STATUS_NOT_RUNNING) return { stopped: true, lines: ['not running, as its host says (status over SSH)'], last: '' };
  let last = '';
  // Whether a stop reached its host: it exited there, or ran until the deadline killed it (a host SSH
  // could not reach was sent nothing).
  let sent = false;
  // Immediate: the herd is failing over, nothing is gained by a clean shutdown that may take long.
  for (const [mode, ms] of [['immediate', FENCE_STOP_MS]] as const) {
    const r = await execNoted(x.deps, old, x, driver.fenceStop(old, mode), ms).catch((err: unknown) => {
      if (err instanceof SshTimeoutError) sent = true;
      return sshFailed(err);
    });
    if (r.code === 0) {
      lines.push(`stopped over SSH (-m ${mode})`);
      return { stopped: true, lines, last: '' };
    }
    const notSent = notSentBecause(r);
    if (notSent) {
      lines.push(`${notSent}: no stop was sent (a signal would wait in it and act whenever it runs again)`);
      return { stopped: false, lines, last: notSent, notSent };
    }
    if (r.code !== -1) sent = true;
    last = r.stderr.trim().split('\n').pop() || `exit ${r.code ?? 'unknown'}`;
    lines.push(`stopping it over SSH (-m ${mode}) failed: ${last}`);
  }
  if (!sent) return { stopped: false, lines, last };
  // Sent, and not seen to work: it may have been frozen between the look and the signal, and then the
  // stop waits in it. Asked again, so that the refusal says so rather than "failed".
  const now = await execNoted(x.deps, old, x, postmasterHeld(old), FENCE_FAST_MS).catch(sshFailed);
  const held = notSentBecause(now);
  if (held) {
    last = `${last}; ${held} now, and the stop sent may be waiting in it: it stops whenever it runs again`;
    lines.push(`${held} now: the stop sent may be waiting in it`);
  }
  return { stopped: false, lines, last };
}

/**
 * Proves the old primary cannot accept writes: its port refuses connections, or pgherd stops it over
 * SSH and then it does, or the operator says so. Anything else refuses the failover. Marks it fenced.
 * Where SSH reaches its host it is stopped even when its port already refuses: a refusal is a moment,
 * and a supervisor may start it again the next; the stop (and keepStopped after it) is what lasts.
 */
export async function fence(old: InstanceRef, p: Params, x: RunContext<DrState>): Promise<void> {
  const lines: string[] = [];
  if (p.fencedByOperator) {
    lines.push(
      `fenced by the operator (${x.deps.operation?.requestedBy.username ?? 'unknown'}: powered off or cut off, as confirmed for this operation); pgherd did not check`,
    );
  } else {
    // A saturated primary is the usual reason for a failover: only proof counts, never silence.
    const o = await observe(old, FENCE_PROBE_MS);
    lines.push(describeObserved(old, o));
    if (o.reachable && o.inRecovery === false && o.lsn) {
      x.state.oldLastLsn = o.lsn;
      x.state.oldTimeline = o.timeline ?? x.state.oldTimeline;
      x.state.lastSeenHow = 'when it was fenced';
    }
    if (!o.reachable && o.refused) {
      lines.push(`its host refuses connections on port ${old.port}: nothing listens there`);
      // Proven already; the stop is for later (nothing is running to stop when SSH says so, or SSH is
      // gone with the host), and its failure is recorded, not fatal.
      const s = await stopOverSsh(old, x);
      lines.push(...s.lines);
    } else {
      const s = await stopOverSsh(old, x);
      // Nothing was sent: looking again could only see what was seen.
      const after = s.notSent ? o : await observe(old, FENCE_PROBE_MS);
      if (!s.stopped || after.reachable || !after.refused) {
        const seen = o.reachable ? 'it answers' : `it did not answer within ${FENCE_PROBE_MS / 1000} s (${o.error ?? 'no reason given'})`;
        const stop = s.notSent
          ? `${s.notSent}: no stop was sent; one sent now would wait in it and stop it whenever it is resumed, leaving the herd with no primary`
          : !s.stopped
            ? `stopping it over SSH failed (${s.last})`
            : after.reachable
              ? 'it still answers after a stop'
              : `after a stop its port still does not refuse connections (${after.error ?? 'no reason given'})`;
        x.note({ stdout: [...lines, ...s.lines].join('\n') });
        throw refuse(
          'not-fenced',
          `${old.label} is not proven fenced: ${seen}, and ${stop}. It may still accept writes: promoting now could make two primaries. Nothing was promoted. ` +
            'If you have fenced it yourself (powered it off, cut it off from every client), run the failover again with "I have fenced the old primary myself"',
        );
      }
      lines.push(...s.lines, 'its port now refuses connections');
    }
  }
  await x.deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
  x.note({ stdout: lines.join('\n') });
}

/**
 * Once the fence was tried, a failover that stops (refused, failed, cancelled) may leave the herd with
 * no primary: the old one stopped, or frozen, and none promoted. Every member is asked again, and when
 * none answers as a primary the herd says so (its health, pgherd_herds_no_primary, the herd.no_primary
 * webhook). A stop that reaches the old primary later, after this look, is the refresher's to see.
 */
export async function lookAgain(h: HerdRef, old: InstanceRef, x: RunContext<DrState>): Promise<void> {
  x.state.sessions?.close();
  if (x.state.finished) return void x.note({ stdout: 'the failover finished: nothing to look at' });
  const seen = await Promise.all(h.members.map(async (m) => ({ m, o: await observe(m, FENCE_PROBE_MS) })));
  const lines = seen.map(({ m, o }) => describeObserved(m, o));
  const primaries = answeringAsPrimary(seen);
  if (primaries.length) {
    x.note({ stdout: [...lines, `the herd has a primary: ${primaries.map(({ m }) => m.label).join(', ')}`].join('\n') });
    return;
  }
  const op = x.deps.operation?.id;
  const detail =
    `no member answers as a primary after DR failover${op === undefined ? '' : ` #${op}`} stopped, once it had tried to fence ${old.label}: ` +
    lines.join('; ');
  const raised = await recordNoPrimary(x.deps.db, { herdId: h.id, operationId: op ?? null, detail });
  x.note({
    stdout: [
      ...lines,
      raised ? 'NO PRIMARY: said on the herd and to the herd.no_primary webhook' : 'NO PRIMARY: the herd says so already',
    ].join('\n'),
  });
}

/** What the keep-stopped step does, by driver: the command it runs on the old primary's host, or none. */
export function keepStoppedDoes(old: InstanceRef): Does {
  const how = driverFor(old.controlDriver).keepStopped(old);
  return {
    kind: 'pg.keep-stopped',
    instance: memberArg(old),
    driver: old.controlDriver,
    argv: how?.argv ?? null,
    stdin: how?.stdin ?? null,
  };
}

/** The keep-stopped step's words on the confirmation page, by driver. */
export function keepStoppedWords(old: InstanceRef): string {
  const how = driverFor(old.controlDriver).keepStopped(old);
  return how
    ? `where SSH reaches its host, ${how.says} (if it cannot, the outcome says so)`
    : `nothing to do for ${old.controlDriver}: no supervisor starts it again, stopped is enough`;
}

/**
 * Keeps a supervisor from starting the fenced primary again, where its driver has one and SSH reaches
 * its host. One that cannot be kept stopped this way is said in the outcome; the watch after the
 * promotion is what catches it starting again.
 */
export async function keepStopped(old: InstanceRef, x: RunContext<DrState>): Promise<void> {
  const how = driverFor(old.controlDriver).keepStopped(old);
  if (!how) return void x.note({ stdout: `${old.controlDriver}: no supervisor starts it again; stopped is enough` });
  const r = await execNoted(x.deps, old, x, how.argv, 15_000, { stdin: how.stdin }).catch(sshFailed);
  if (r.code === 0) return void x.note({ stdout: `done: ${how.says}` });
  const why = r.stderr.trim().split('\n').pop() || `exit ${r.code ?? 'unknown'}`;
  x.state.notKeptStopped = `${old.label} may be started again by its host (${how.says} failed: ${why})`;
  x.note({ stdout: `not done: ${x.state.notKeptStopped}` });
}

/**
 * After the promotion, watches the old primary for FENCE_WATCH_MS, a new connection each time: a fence
 * by "connection refused" held only at the moment it was seen, and a supervisor (or a person) may start
 * it again. Seen answering as a primary: the herd has two, the inventory and the outbox say so, and the
 * target fails saying so. It runs last, once the write name and PgBouncers point at the new primary, so
 * it delays no client.
 */
export async function watchFence(h: HerdRef, old: InstanceRef, x: RunContext<DrState>): Promise<void> {
  const { m: cand } = chosen(x.state);
  const until = Date.now() + FENCE_WATCH_MS;
  let probes = 0;
  let last = '';
  while (Date.now() < until) {
    const o = await observe(old, FENCE_PROBE_MS);
    probes++;
    last = describeObserved(old, o);
    if (o.reachable && o.inRecovery === false) {
      const detail =
        `${old.label} answers as a primary again (timeline ${o.timeline ?? 'unknown'}) after ${cand.label} was promoted: the herd has two primaries. ` +
        `The write name and PgBouncers point at ${cand.label}; clients that kept a connection or an old answer may still write to ${old.label}: stop it and rebuild it from ${cand.label}, or find out first which one they wrote to`;
      await recordTwoPrimaries(x.deps.db, { herdId: h.id, instanceId: old.id, operationId: x.deps.operation?.id ?? null, detail });
      x.deps.outcome?.(`TWO PRIMARIES: ${detail}`);
      x.note({ stdout: last });
      throw new TwoPrimariesError(detail);
    }
    await sleep(FENCE_WATCH_EVERY_MS, undefined, { signal: x.signal });
  }
  x.note({ stdout: `not a primary for ${FENCE_WATCH_MS / 1000} s after the promotion (${probes} probes; last: ${last})` });
  x.state.finished = true;
}

/**
 * The candidate, from what the replicas say now that the old primary sends nothing more (their received
 * LSNs are final): the asked-for one, else the one with the most WAL, among those on the herd's system
 * identifier and timeline.
 */
export async function pickCandidate(h: HerdRef, old: InstanceRef, p: Params, x: RunContext<DrState>): Promise<void> {
  const all = await observeOthers(old, h.members, lookOver(x.state));
  refuseSplitBrain(old, all, `${old.label} was fenced; nothing was promoted.`);
  const id = herdIdentity(
    h.systemIdentifier,
    all.map(({ o }) => o),
  );
  if (id.ambiguous) throw refuse('identity', id.ambiguous);
  const seen = all.filter(({ o }) => o.reachable && o.inRecovery).sort(byWal);
  // The herd's timeline: its primary's as last seen (by the fence, else the inventory), else the replicas' highest.
  const want = {
    systemIdentifier: id.systemIdentifier,
    timeline: x.state.oldTimeline ?? (Math.max(0, ...seen.map(({ o }) => o.timeline ?? 0)) || null),
  };
  const lines = seen.map(({ m, o }) => describeObserved(m, o));
  const eligible = seen.filter(({ m, o }) => {
    const why = identityProblem(m, o, want);
    if (why) lines.push(`not a candidate: ${why}`);
    return !why;
  });
  const [pick] = p.candidateInstanceId === undefined ? eligible : eligible.filter(({ m }) => m.id === p.candidateInstanceId);
  if (!pick) {
    x.note({ stdout: lines.join('\n') });
    const asked = seen.find(({ m }) => m.id === p.candidateInstanceId);
    if (p.candidateInstanceId === undefined) {
      throw refuse(
        seen.length ? 'identity' : 'unreachable',
        seen.length
          ? "no replica that answers is on the herd's system identifier and timeline; nothing was promoted"
          : 'no replica answers any more; nothing was promoted',
      );
    }
    throw asked
      ? refuse('identity', `${identityProblem(asked.m, asked.o, want) ?? 'it is not a candidate'}; nothing was promoted`)
      : refuse(
          'unreachable',
          `the replica asked for (instance ${p.candidateInstanceId}) does not answer as a replica; nothing was promoted`,
        );
  }
  x.state.chosen = pick;
  x.note({ stdout: `${lines.join('\n')}\nchosen: ${pick.m.label}` });
}

/** Each other replica that answers follows the new primary; one that cannot is marked needs rebuild, and the others go on. */
export async function repointOthers(replicas: InstanceRef[], x: RunContext<DrState>): Promise<void> {
  const { m: cand } = chosen(x.state);
  const others = replicas.filter((m) => m.id !== cand.id);
  const lines: string[] = [];
  for (const m of others) {
    if (!(await observe(m, 2000)).reachable) {
      lines.push(`${m.label}: does not answer, left as it is (re-point or rebuild it later)`);
      continue;
    }
    try {
      const o = await pointAt(m, cand, x.deps, x, { resumeReplay: true, timeoutMs: FOLLOW_MS });
      lines.push(
        `${m.label}: streaming timeline ${o.walReceiver?.receivedTli ?? '?'} from ${o.walReceiver?.senderHost ?? '?'}:${o.walReceiver?.senderPort ?? '?'}`,
      );
    } catch (err) {
      // One replica that cannot follow must not keep the others from following, nor the failover
      // from being done. The usual cause: it holds the start of a record the old primary never
      // finished, across a WAL segment boundary, and the new primary's timeline overwrote that
      // record's continuation (OVERWRITE_CONTRECORD): PostgreSQL cannot replay past it, and only a
      // rebuild (pg_rewind) brings it back. It is marked so, and the outcome names it.
      x.state.leftBehind.push(m.label);
      await x.deps.db.update(instances).set({ state: 'needs_rebuild' }).where(eq(instances.id, m.id));
      lines.push(`${m.label}: does not follow the new primary, marked needs rebuild: ${errorText(err)}`);
    }
  }
  x.note({ command: `ALTER SYSTEM SET primary_conninfo on ${others.length} replica(s)`, stdout: lines.join('\n') || 'no other replica' });
}

/**
 * The DR failover's choice of its new primary, as every driver that fails over over SQL makes it: the replica
 * named checked as one of the herd (its system identifier and timeline), else the reachable replica with the
 * most WAL received among those of the herd's identity and timeline. `run` makes the choice.
 */
export function chooseCandidateStep<S>(
  named: InstanceRef | null,
  newPrimary: Arg,
  run: (x: RunContext<S>) => Promise<void>,
): ActionStep<S> {
  return {
    name: 'choose the candidate',
    does: { kind: 'failover.choose-candidate', candidate: newPrimary },
    says: named
      ? `check that ${named.label} answers as a replica of the herd (its system identifier and timeline)`
      : 'choose the reachable replica with the highest received LSN among those that report the herd\u2019s system identifier and timeline',
    timeoutMs: 15_000,
    run,
  };
}
