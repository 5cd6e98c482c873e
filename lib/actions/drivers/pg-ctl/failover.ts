// pg_ctl's DR failover: the old primary fenced over SSH (only a proven fence counts), the candidate
// chosen by its WAL when it runs and promoted, the names, the poolers and the other replicas moved to it.
import { formatBytes, formatLsn } from '@/lib/adapters/format/units';
import { productionWarning, type ActionPlan, type ActionStep } from '@/lib/engine/define-action';
import { describeRecordMove, dnsSteps } from '@/lib/actions/steps/dns-steps';
import { chosenWhenItRuns, memberArg, type Arg } from '@/lib/engine/plan-identity';
import { recordTargets } from '@/lib/fleet/dns-records';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { repointPoolerSteps } from '@/lib/actions/steps/pooler-steps';
import { bytesOrUnknown, lagOf } from '@/lib/fleet/candidates';
import { refreshFleet } from '@/lib/fleet/refresher';
import { refreshInstance } from '@/lib/fleet/record-observation';
import { lsnDiff } from '@/lib/adapters/format/lsn';
import { promoteNow, recordNewPrimary } from '@/lib/actions/steps/topology-steps';
import { replayWhatItCan } from '@/lib/actions/steps/replay';
import { newPatroniSwitchState } from '@/lib/actions/drivers/patroni/switch';

import {
  chooseCandidateStep,
  FENCE_PROBE_MS,
  FENCE_FAST_MS,
  FENCE_STOP_MS,
  FENCE_WATCH_MS,
  drPair,
  membersAfterFailover,
  chosen,
  outcomeOf,
  preflight,
  fence,
  lookAgain,
  keepStoppedDoes,
  keepStoppedWords,
  keepStopped,
  watchFence,
  pickCandidate,
  repointOthers,
  sessionsOf,
  type DrState,
  type Params,
} from '@/lib/actions/drivers/failover';

/** What the steps of a pg_ctl DR failover share: the herd, its old primary, the candidate planned, the new primary as steps name it. */
interface Failover {
  h: HerdRef;
  p: Params;
  old: InstanceRef;
  cand: InstanceRef;
  /** Every member but the old primary. */
  replicas: InstanceRef[];
  /** The running replicas other than the candidate planned. */
  others: InstanceRef[];
  /** The herd once the candidate planned is its primary. */
  after: InstanceRef[];
  replayMs: number;
  newPrimary: Arg;
}

/** pg_ctl's DR failover of `h`, or why not. */
export function planFailover(h: HerdRef, p: Params): ActionPlan<DrState> | Refusal {
  const pair = drPair(h, p.candidateInstanceId);
  if (typeof pair === 'string') return refuse('topology', pair);
  const { old, cand } = pair;
  const replicas = h.members.filter((m) => m.id !== old.id);
  const z: Failover = {
    h,
    p,
    old,
    cand,
    replicas,
    others: replicas.filter((m) => m.id !== cand.id && m.state === 'running'),
    after: membersAfterFailover(h, old, cand),
    replayMs: p.replayDeadlineMs ?? 30_000,
    // The new primary in the steps' arguments: the one named, else the rule it is chosen by when it runs
    // (which replica that is moves with the LSNs, and an observation changes no plan).
    newPrimary: p.candidateInstanceId ? memberArg(cand) : chosenWhenItRuns('most WAL received'),
  };
  const steps: ActionStep<DrState>[] = [
    preflightStep(z),
    fenceStep(z),
    keepStoppedStep(old),
    chooseCandidateStep(p.candidateInstanceId ? cand : null, z.newPrimary, (x) => pickCandidate(h, old, p, x)),
    replayStep(z),
    promoteStep(z),
    // No CHECKPOINT here: Postgres asks for one itself at the promotion, and a rebuild of the old primary
    // (pg_rewind from the new one) makes its own first. Fifty at once took 0.4 s of a site's failover.
    ...failoverDnsSteps(z),
    ...repointPoolerSteps(h.poolers, (s: DrState) => chosen(s).m, 'the new primary', z.newPrimary),
    repointOthersStep(z),
    reportLossStep(z),
    watchFenceStep(z),
  ];
  return {
    state: () => newDrState(old),
    change: { kind: 'failover', candidateId: cand.id },
    facts: failoverFacts(z),
    steps,
    warnings: [
      ...productionWarning(h),
      'unplanned: transactions the old primary committed that no replica received are lost',
      // Not "if it runs as far as pgherd knows": the refresher seeing it die between plan and confirm must not change the plan.
      `${old.label} is stopped over SSH (-m immediate) wherever SSH reaches its host: use switchover for a planned change`,
      ...(p.fencedByOperator ? [`you confirm ${old.label} cannot accept writes: if it still can, the herd will have two primaries`] : []),
    ],
  };
}

/** A failover's state when it starts: the old primary's last LSN and timeline as pgherd last saw them. */
function newDrState(old: InstanceRef): DrState {
  return {
    oldLastLsn: old.lsn === null ? null : formatLsn(old.lsn),
    oldTimeline: old.timeline,
    lastSeenHow: 'as last observed by pgherd',
    leftBehind: [],
    ...newPatroniSwitchState(),
  };
}

/** Every replica asked for its LSNs, every DNS server whether it takes pgherd's key: nothing changed when one refuses. */
function preflightStep({ h, old, replicas }: Failover): ActionStep<DrState> {
  return {
    name: 'ask the replicas and the DNS servers',
    does: { kind: 'failover.preflight', replicas: replicas.map(memberArg), dns: h.dns.map((r) => r.id) },
    says: 'ask every replica for its received and replayed LSN, and the DNS servers whether they take pgherd\u2019s key (refused if no replica answers or a server refuses: nothing is changed)',
    timeoutMs: 20_000,
    run: (x) => {
      // The fence asks the old primary's host next: its SSH handshake overlaps the replicas' answers.
      x.deps.ssh.warm(old.ssh);
      return preflight(h, old, x);
    },
  };
}

/** The old primary fenced (only a proven fence counts); from here on, a failover that stops looks at the herd again. */
function fenceStep({ h, p, old }: Failover): ActionStep<DrState> {
  return {
    name: `fence ${old.label}`,
    does: { kind: 'pg.fence', instance: memberArg(old), byOperator: !!p.fencedByOperator, dataDirectory: old.dataDirectory },
    says: p.fencedByOperator
      ? `fence ${old.label}: you confirm it is fenced (powered off or cut off); pgherd does not check. pgherd will not start it until it is rebuilt`
      : `fence ${old.label}: proven when its port refuses connections, or when pgherd stops it over SSH (-m immediate) and its port then refuses them (where SSH reaches its host it is stopped in either case; a postmaster that is frozen, stopped, traced or held by the kernel, is sent no stop: it would wait there and stop it whenever it resumes); anything else (no answer within ${FENCE_PROBE_MS / 1000} s, too many clients, an authentication or pg_hba error, SSH failing) stops the failover before anything is promoted. pgherd will not start it until it is rebuilt`,
    timeoutMs: 3 * FENCE_FAST_MS + FENCE_STOP_MS + 3 * FENCE_PROBE_MS + 5_000,
    run: (x) => fence(old, p, x),
    always: {
      name: 'look at the herd again if the failover stopped',
      does: { kind: 'herd.say-if-no-primary', herd: h.id },
      says: 'if the failover stops from here on (refused, failed, cancelled), ask every member again: when none answers as a primary, say the herd has no primary (on the herd, in pgherd_herds_no_primary, with the herd.no_primary webhook)',
      timeoutMs: FENCE_PROBE_MS + 5_000,
      run: (x) => lookAgain(h, old, x),
    },
  };
}

/** The fenced old primary kept from being started again by a supervisor, where its driver has one. */
function keepStoppedStep(old: InstanceRef): ActionStep<DrState> {
  return {
    name: `keep ${old.label} stopped`,
    does: keepStoppedDoes(old),
    says: keepStoppedWords(old),
    timeoutMs: 20_000,
    run: (x) => keepStopped(old, x),
  };
}

/** The candidate left to replay what it received, up to a deadline. */
function replayStep({ replayMs, newPrimary }: Failover): ActionStep<DrState> {
  return {
    name: 'let the candidate replay all it can',
    does: { kind: 'pg.replay-received', instance: newPrimary, deadlineMs: replayMs },
    says: `let it replay all it can of what it received (deadline ${replayMs / 1000} s)`,
    timeoutMs: replayMs + 10_000,
    run: async (x) => {
      const { m, o } = chosen(x.state);
      const received = o.receiveLsn;
      if (!received) return void x.note({ stdout: 'skipped: it received nothing by streaming' });
      const r = await replayWhatItCan(sessionsOf(x.state).of(m), received, { signal: x.signal, deadlineMs: replayMs });
      x.note({
        stdout:
          r.how === 'all'
            ? `received ${received}, replayed all of it (${r.replayed ?? 'unknown'})`
            : r.how === 'paused'
              ? `received ${received}, replayed ${r.replayed ?? 'unknown'}: its replay is paused (pg_wal_replay_pause); the promotion replays the rest`
              : r.how === 'stalled'
                ? `received ${received}, replayed ${r.replayed ?? 'unknown'}: replay stopped there (${lsnDiff(received, r.replayed) ?? '?'} bytes short, the end of the last complete record; the rest can never be replayed)`
                : // Not lost: the promotion replays what is on disk before it ends recovery. It just takes longer.
                  `still replaying after ${replayMs / 1000} s (at ${r.replayed ?? 'unknown'}): the promotion finishes the replay`,
      });
    },
  };
}

/** The candidate promoted and recorded the primary once it accepts writes. */
function promoteStep({ old, newPrimary }: Failover): ActionStep<DrState> {
  return {
    name: 'promote the candidate',
    does: { kind: 'pg.promote', instance: newPrimary },
    says: 'promote it (pg_promote) and wait until it accepts writes',
    timeoutMs: 90_000,
    run: async (x) => {
      const { m } = chosen(x.state);
      // Over the session that watched its replay; the other replicas' are closed.
      const over = sessionsOf(x.state).of(m);
      const o = await promoteNow(m, x, { over }).finally(() => x.state.sessions?.close());
      x.state.promotedAs = o;
      await recordNewPrimary(x.deps, m, o.timeline);
      x.deps.outcome?.(outcomeOf(old, x.state));
      x.note({ stdout: `${m.label} accepts writes on timeline ${o.timeline ?? 'unknown'}` });
    },
  };
}

/** The herd's DNS names moved to the new primary: as planned when the candidate is named, else where the herd says when it runs. */
function failoverDnsSteps({ h, p, old, after }: Failover): ActionStep<DrState>[] {
  return dnsSteps(
    h,
    (s: DrState) => membersAfterFailover(h, old, chosen(s).m),
    (r) => (p.candidateInstanceId ? recordTargets(r, after) : { chosenWhenItRuns: 'most WAL received' }),
    (r) =>
      p.candidateInstanceId
        ? describeRecordMove(r, after)
        : `point ${r.name} (${r.type}, TTL ${r.ttl} s) where the herd says once the new primary accepts writes, then ask the zone\u2019s server until it answers so`,
  );
}

/** The other replicas re-pointed to the new primary; one that cannot follow its timeline marked needs rebuild. */
function repointOthersStep({ p, old, replicas, others, newPrimary }: Failover): ActionStep<DrState> {
  return {
    name: 're-point the other replicas',
    does: {
      kind: 'pg.point-others-at',
      upstream: newPrimary,
      // Which ones: those running when a candidate is named; else whichever answer when it runs.
      replicas: p.candidateInstanceId ? others.map(memberArg) : replicas.map((m) => m.id),
      orMarkNeedsRebuild: true,
    },
    says: !others.length
      ? 'no other replica to re-point'
      : `${p.candidateInstanceId ? `re-point the other replicas (${others.map((m) => m.label).join(', ')})` : 're-point the other replicas that answer'} to the new primary; one that cannot follow the new timeline (it holds the start of a record the old primary never finished) is marked needs rebuild`,
    timeoutMs: 300_000,
    run: async (x) => {
      await repointOthers(replicas, x);
      x.deps.outcome?.(outcomeOf(old, x.state));
    },
  };
}

/** The new topology read into the inventory, and the possible data loss said. */
function reportLossStep({ old, replicas }: Failover): ActionStep<DrState> {
  return {
    name: 'record the new topology and the possible data loss',
    does: { kind: 'failover.report-loss', old: old.id },
    says: `report the possible data loss: ${old.label}\u2019s last LSN seen minus what the new primary received`,
    timeoutMs: 20_000,
    run: async (x) => {
      // The new primary as its promotion left it (no new connection while other herds still fail over); the others asked.
      const { m: cand } = chosen(x.state);
      if (x.state.promotedAs) await refreshInstance(x.deps.db, cand.id, cand, x.state.promotedAs);
      const others = replicas.filter((m) => m.id !== cand.id || !x.state.promotedAs);
      if (others.length) await refreshFleet(x.deps.db, { ids: others.map((m) => m.id), timeoutMs: 2000 });
      x.note({ stdout: outcomeOf(old, x.state) });
    },
  };
}

/** The old primary watched for a while after the promotion: answering as a primary again, two primaries are said. */
function watchFenceStep({ h, old }: Failover): ActionStep<DrState> {
  return {
    name: `watch ${old.label} stay fenced`,
    does: { kind: 'pg.watch-fenced', instance: memberArg(old) },
    says: `for ${FENCE_WATCH_MS / 1000} s after the promotion, connect to ${old.label} again and again: if it answers as a primary (started again by its host), the herd has two primaries: say so (the operation, the herd's count of primaries, the herd.two_primaries webhook). Last, once the write name and PgBouncers point at the new primary: the watch delays no client`,
    timeoutMs: FENCE_WATCH_MS + 2 * FENCE_PROBE_MS + 5_000,
    run: (x) => watchFence(h, old, x),
  };
}

/** The confirmation page's facts of a failover: the old primary, the candidate, the lag, the DNS names, the possible loss. */
function failoverFacts({ h, p, old, cand }: Failover) {
  const lag = lagOf(old, cand);
  return [
    { label: 'Old primary', value: `${old.label} (${old.state})` },
    {
      label: 'Candidate',
      value: `${cand.label}${cand.site ? ` (site ${cand.site})` : ''}${p.candidateInstanceId ? '' : ', chosen again when it runs'}`,
    },
    { label: 'Lag', value: bytesOrUnknown(lag) },
    ...h.dns.map((r) => ({
      label: `DNS ${r.name}`,
      value: `${r.type} -> ${cand.hostname}, TTL ${r.ttl} s (clients may use the old answer for up to ${r.ttl} s)`,
    })),
    {
      label: 'Possible data loss',
      value: lag === null ? 'unknown' : `${lag} bytes of WAL (${formatBytes(lag)}), as last observed; measured again when it runs`,
    },
  ];
}
