// DR failover of a herd RDS runs: RDS promotes the chosen read replica (PromoteReadReplica), and the
// write name moves to it once it accepts writes. The rules of a DR failover hold: the old source is
// fenced first, and only proof counts. RDS offers no fence of a source that has read replicas (it stops
// neither it nor them), so the proof is Postgres's or RDS's own: its endpoint refuses connections, or it
// does not answer and RDS says it cannot come back to taking writes by itself (stopped, failed, being
// deleted); or the operator says it is fenced. A source that answers as a primary takes writes, whatever
// RDS says of it: promoting beside it would make two, and the failover is refused. The other read replicas replicate from their source in
// RDS and cannot be pointed at another: the outcome names them (add replicas of the new primary, retire
// them).
import { formatLsn } from '@/lib/adapters/format/units';
import {
  chooseCandidateStep,
  chosen,
  drPair,
  lookAgain,
  membersAfterFailover,
  outcomeOf,
  pickCandidate,
  preflight,
  watchFence,
  type DrState,
  type Params,
} from '@/lib/actions/drivers/failover';
import { newPatroniSwitchState } from '../patroni/switch';
import { waitRdsNoted } from './steps';
import { eq } from 'drizzle-orm';
import { instances } from '@/db/schema';
import { rdsClient } from '@/lib/adapters/aws/config';
import { describeRds, promoteReplica, rdsWaitBounds } from '@/lib/adapters/aws/rds';
import { productionWarning, type ActionPlan, type ActionStep, type RunContext } from '@/lib/engine/define-action';
import { chosenWhenItRuns, memberArg, type Arg } from '@/lib/engine/plan-identity';
import { describeRecordMove, dnsSteps } from '@/lib/actions/steps/dns-steps';
import { recordNewPrimary } from '@/lib/actions/steps/topology-steps';
import { recordTargets } from '@/lib/fleet/dns-records';
import type { HerdRef } from '@/lib/fleet/herd-ref';
import type { InstanceRef } from '@/lib/fleet/instance-ref';
import { observe, waitObserved, type Observed } from '@/lib/fleet/observe';
import { refuse, type Refusal } from '@/lib/fleet/refusal';
import { rdsDetails, recheckRdsIdentity } from '@/lib/fleet/cloud/rds-identity';
import { servers } from '@/db/schema';

/**
 * RDS statuses in which a source cannot come back to taking writes by itself: with no answer from its
 * endpoint, proof enough that it is fenced. Not storage-full (storage added, it writes again) nor stopping
 * (it still runs), and never over a source that answers as a primary.
 */
export const RDS_FENCED_STATUSES = new Set(['stopped', 'failed', 'deleting', 'inaccessible-encryption-credentials']);

/** What the DR failover's own steps give the RDS plan (they live with the action). */
export interface RdsFailoverKit<S> {
  state: () => S;
  preflight: (x: RunContext<S>) => Promise<void>;
  pickCandidate: (x: RunContext<S>) => Promise<void>;
  chosen: (s: S) => { m: InstanceRef; o: Observed };
  lookAgain: (x: RunContext<S>) => Promise<void>;
  watchFence: (x: RunContext<S>) => Promise<void>;
  outcome: (s: S) => string;
  membersAfter: (cand: InstanceRef) => InstanceRef[];
  /** Where the old primary was last seen (for the outcome's data loss). */
  sawOld: (s: S, o: Observed) => void;
}

const PROBE_MS = 1500;

/** What the steps of an RDS DR failover share: the herd, the old source and its RDS name, the candidate, the bounds. */
interface RdsFailover<S> {
  h: HerdRef;
  old: InstanceRef;
  cand: InstanceRef;
  p: { candidateInstanceId?: number; fencedByOperator?: boolean };
  kit: RdsFailoverKit<S>;
  region: string;
  identifier: string;
  bounds: ReturnType<typeof rdsWaitBounds>;
  /** The new primary in the steps' arguments: the one named, else the rule it is chosen by when it runs. */
  newPrimary: Arg;
  /** The herd once the planned candidate leads (where the DNS names point when one is named). */
  after: InstanceRef[];
  /** The read replicas left on the old source (RDS cannot point them at another). */
  others: InstanceRef[];
}

/**
 * RDS's DR failover of `h` from `old` to `cand` (or the replica with the most WAL when none is named):
 * pre-flight, fence (proven, or the operator's word), choose, promote, the DNS names, the replicas left
 * behind named, the old source watched. `kit`: the DR failover's own steps.
 */
export function planRdsFailover<S>(
  h: HerdRef,
  old: InstanceRef,
  cand: InstanceRef,
  p: { candidateInstanceId?: number; fencedByOperator?: boolean },
  kit: RdsFailoverKit<S>,
): ActionPlan<S> | Refusal {
  if (!old.rds) return refuse('cloud', `${old.label} has no RDS identity: run discovery`);
  const { region, identifier } = old.rds;
  const z: RdsFailover<S> = {
    h,
    old,
    cand,
    p,
    kit,
    region,
    identifier,
    bounds: rdsWaitBounds(),
    newPrimary: p.candidateInstanceId ? memberArg(cand) : chosenWhenItRuns('most WAL received'),
    after: kit.membersAfter(cand),
    others: h.members.filter((m) => m.id !== old.id && m.id !== cand.id),
  };
  return {
    state: kit.state,
    change: { kind: 'failover', candidateId: cand.id },
    steps: [
      preflightStep(z),
      { ...fenceStep(z), always: lookAgainStep(z) },
      chooseCandidateStep(p.candidateInstanceId ? cand : null, z.newPrimary, kit.pickCandidate),
      promoteStep(z),
      ...namesToNewPrimarySteps(z),
      otherReplicasStep(z),
      watchFenceStep(z),
    ],
    facts: rdsFailoverFacts(z),
    warnings: rdsFailoverWarnings(z),
  };
}

/** Every replica's received and replayed LSN, and the DNS servers' answer: nothing is changed. */
function preflightStep<S>({ h, old, kit }: RdsFailover<S>): ActionStep<S> {
  return {
    name: 'ask the replicas and the DNS servers',
    does: { kind: 'failover.preflight', replicas: h.members.filter((m) => m.id !== old.id).map(memberArg), dns: h.dns.map((r) => r.id) },
    says: 'ask every replica for its received and replayed LSN, and the DNS servers whether they take pgherd\u2019s key (refused if no replica answers or a server refuses: nothing is changed)',
    timeoutMs: 20_000,
    run: kit.preflight,
  };
}

/** The old source fenced: proven by its endpoint or RDS's status, or on the operator's word; else nothing is promoted. */
function fenceStep<S>({ old, p, kit, region, identifier }: RdsFailover<S>): ActionStep<S> {
  return {
    name: `fence ${old.label}`,
    does: { kind: 'rds.fence', instance: memberArg(old), identifier, byOperator: !!p.fencedByOperator },
    says: p.fencedByOperator
      ? `fence ${old.label}: you confirm it takes no writes; pgherd does not check`
      : `fence ${old.label}: proven when its endpoint refuses connections, or it does not answer and RDS says it is ${[...RDS_FENCED_STATUSES].join(', ')}; anything else (it answers as a primary, whatever RDS says; RDS says available; RDS does not know it) stops the failover before anything is promoted`,
    timeoutMs: 60_000,
    run: async (x) => {
      const lines: string[] = [];
      if (p.fencedByOperator)
        lines.push(`fenced by the operator (${x.deps.operation?.requestedBy.username ?? 'unknown'}); pgherd did not check`);
      else {
        // Looked at where RDS says it is: a row edited to another address or port would make a refused
        // connection elsewhere pass for a fence.
        const notOurs = await recheckRdsIdentity(x.deps.db, old.serverId, region, identifier);
        if (notOurs) throw refuse('not-fenced', `${old.label} cannot be proven fenced: ${notOurs}. Nothing was promoted`);
        const [o, r] = await Promise.all([observe(old, PROBE_MS), describeRds(rdsClient(region), region, identifier, x.signal)]);
        if (o.reachable && o.inRecovery === false) kit.sawOld(x.state, o);
        lines.push(
          `${old.label}: ${o.reachable ? `answers as a ${o.inRecovery ? 'replica' : 'primary'}` : o.refused ? 'refuses connections' : `no answer (${o.error ?? 'no reason given'})`}`,
        );
        lines.push(`RDS says ${identifier} is ${r?.status ?? 'unknown to RDS'}`);
        // What the source says of itself beats what RDS says: one that answers as a primary takes writes.
        const answersAsPrimary = o.reachable && o.inRecovery === false;
        const refused = !o.reachable && o.refused;
        const rdsProof = !o.reachable && r !== null && RDS_FENCED_STATUSES.has(r.status);
        if (answersAsPrimary || (!refused && !rdsProof)) {
          x.note({ stdout: lines.join('\n') });
          throw refuse(
            'not-fenced',
            `${old.label} is not proven fenced: RDS says it is ${r?.status ?? 'unknown (RDS does not know it)'}, and ${o.reachable ? `it answers${answersAsPrimary ? ' as a primary' : ''}` : `it did not answer within ${PROBE_MS / 1000} s`}. It may still accept writes: promoting now could make two primaries. Nothing was promoted. ` +
              'If it takes no writes (cut off from every client), run the failover again with "I have fenced the old primary myself"',
          );
        }
      }
      await x.deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
      x.note({ stdout: lines.join('\n') });
    },
  };
}

/** The fence's cleanup: when the failover stops after it, every member asked again, and a herd with no primary said so. */
function lookAgainStep<S>({ h, kit }: RdsFailover<S>): ActionStep<S> {
  return {
    name: 'look at the herd again if the failover stopped',
    does: { kind: 'herd.say-if-no-primary', herd: h.id },
    says: 'if the failover stops from here on, ask every member again: when none answers as a primary, say the herd has no primary',
    timeoutMs: PROBE_MS * 4 + 5_000,
    run: kit.lookAgain,
  };
}

/** RDS promotes the candidate (PromoteReadReplica); done once RDS says it stands on its own and it accepts writes. */
function promoteStep<S>({ kit, bounds, newPrimary }: RdsFailover<S>): ActionStep<S> {
  return {
    name: 'RDS: promote the candidate',
    does: { kind: 'rds.promote', instance: newPrimary, maxWaitSeconds: bounds.maxWaitSeconds },
    says: `ask RDS to promote it (PromoteReadReplica), wait until RDS says it is available on its own and it accepts writes (at most ${bounds.maxWaitSeconds} s)`,
    timeoutMs: (bounds.maxWaitSeconds + 60) * 1000,
    run: async (x) => {
      const { m } = kit.chosen(x.state);
      if (!m.rds) throw refuse('cloud', `${m.label} has no RDS identity; nothing was promoted`);
      const notOurs = await recheckRdsIdentity(x.deps.db, m.serverId, m.rds.region, m.rds.identifier);
      if (notOurs) throw refuse('cloud', `${notOurs}; nothing was promoted`);
      const client = rdsClient(m.rds.region);
      await promoteReplica(client, m.rds.identifier, x.signal);
      const now = await waitRdsNoted(
        x,
        m.rds.region,
        m.rds.identifier,
        'available on its own',
        (i) => i.status === 'available' && !i.sourceIdentifier,
        bounds,
      );
      await x.deps.db
        .update(servers)
        .set({ cloudState: now.status, cloudDetails: rdsDetails(now), cloudSeenAt: new Date() })
        .where(eq(servers.id, m.serverId));
      const o = await waitObserved(m, 'accepting writes', (v) => v.reachable && v.inRecovery === false, {
        timeoutMs: 120_000,
        signal: x.signal,
      });
      await recordNewPrimary(x.deps, m, o.timeline ?? undefined);
      x.deps.outcome?.(kit.outcome(x.state));
    },
  };
}

/** The herd's DNS names pointed at the new primary (the one named, else the one chosen when it runs). */
function namesToNewPrimarySteps<S>({ h, p, kit, after }: RdsFailover<S>): ActionStep<S>[] {
  return dnsSteps(
    h,
    (s: S) => kit.membersAfter(kit.chosen(s).m),
    (r) => (p.candidateInstanceId ? recordTargets(r, after) : { chosenWhenItRuns: 'most WAL received' }),
    (r) =>
      p.candidateInstanceId
        ? describeRecordMove(r, after)
        : `point ${r.name} (${r.type}, TTL ${r.ttl} s) at the new primary once it accepts writes, then ask the zone\u2019s server until it answers so`,
  );
}

/** The read replicas RDS keeps on the old source: named in the outcome (they cannot follow the new primary). */
function otherReplicasStep<S>({ h, old, kit, others }: RdsFailover<S>): ActionStep<S> {
  return {
    name: 'the other read replicas',
    does: { kind: 'rds.replicas-left', replicas: others.map(memberArg) },
    says: others.length
      ? `${others.map((m) => m.label).join(', ')}: RDS keeps a read replica on its source, it cannot follow the new primary: named in the outcome (add read replicas of the new primary, then retire these)`
      : 'no other read replica',
    timeoutMs: 15_000,
    run: (x) => {
      const { m: promoted } = kit.chosen(x.state);
      const left = h.members.filter((m) => m.id !== old.id && m.id !== promoted.id);
      x.deps.outcome?.(
        `${kit.outcome(x.state)}${left.length ? `; still read replicas of ${old.label} in RDS, which cannot follow the new primary: ${left.map((m) => m.label).join(', ')}` : ''}`,
      );
      x.note({
        stdout: left.length
          ? left.map((m) => `${m.label}: still a read replica of ${old.label} in RDS`).join('\n')
          : 'no other read replica',
      });
      return Promise.resolve();
    },
  };
}

/** The old source watched for a few seconds after the promotion: one that answers as a primary makes two, said. */
function watchFenceStep<S>({ old, kit }: RdsFailover<S>): ActionStep<S> {
  return {
    name: `watch ${old.label} stay fenced`,
    does: { kind: 'pg.watch-fenced', instance: memberArg(old) },
    says: `for a few seconds after the promotion, connect to ${old.label} again and again: if it answers as a primary, the herd has two primaries: say so`,
    timeoutMs: 30_000,
    run: kit.watchFence,
  };
}

/** The confirmation page's facts of an RDS DR failover. */
function rdsFailoverFacts<S>({ h, old, cand, p, identifier, bounds }: RdsFailover<S>) {
  return [
    { label: 'Old primary', value: `${old.label} (RDS ${identifier}, ${old.state})` },
    { label: 'Candidate', value: `${cand.label}${p.candidateInstanceId ? '' : ', chosen again when it runs'}: RDS promotes it` },
    ...h.dns.map((r) => ({ label: `DNS ${r.name}`, value: `${r.type} -> the new primary, TTL ${r.ttl} s` })),
    {
      label: 'RDS wait',
      value: `at most ${bounds.maxWaitSeconds} s for RDS to say the promoted instance is available (PGHERD_RDS_WAIT_SECONDS)`,
    },
  ];
}

/** What an RDS DR failover may cost: the commits the candidate never received, the replicas left behind, the operator's word. */
function rdsFailoverWarnings<S>({ h, old, p, others }: RdsFailover<S>) {
  return [
    ...productionWarning(h),
    'unplanned: transactions the old source committed that the candidate did not receive are lost',
    ...(others.length
      ? [`RDS keeps ${others.map((m) => m.label).join(', ')} on the old source: they will not follow the new primary`]
      : []),
    ...(p.fencedByOperator ? [`you confirm ${old.label} takes no writes: if it still does, the herd will have two primaries`] : []),
  ];
}

/** RDS's DR failover of `h`: RDS promotes a read replica (planRdsFailover), around pgherd's own pre-flight, choice and watch. */
export function planRdsDrFailover(h: HerdRef, p: Params): ActionPlan<DrState> | Refusal {
  const pair = drPair(h, p.candidateInstanceId);
  if (typeof pair === 'string') return refuse('topology', pair);
  const { old, cand } = pair;
  if (!old.rds) return refuse('not-applicable', `${old.label} is not an RDS DB instance`);
  return planRdsFailover<DrState>(h, old, cand, p, {
    state: () => ({
      oldLastLsn: old.lsn === null ? null : formatLsn(old.lsn),
      oldTimeline: old.timeline,
      lastSeenHow: 'as last observed by pgherd',
      leftBehind: [],
      ...newPatroniSwitchState(),
    }),
    preflight: (x) => preflight(h, old, x),
    pickCandidate: (x) => pickCandidate(h, old, p, x),
    chosen,
    lookAgain: (x) => lookAgain(h, old, x),
    watchFence: (x) => watchFence(h, old, x),
    outcome: (s) => outcomeOf(old, s),
    membersAfter: (c) => membersAfterFailover(h, old, c),
    sawOld: (s, o) => {
      s.oldLastLsn = o.lsn ?? s.oldLastLsn;
      s.oldTimeline = o.timeline ?? s.oldTimeline;
      s.lastSeenHow = 'when it was fenced';
    },
  });
}
