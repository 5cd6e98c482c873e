// DR failover: the primary is lost (or must be given up). The candidate is chosen at execution from
// what the replicas say then, never from stale data; the old primary is fenced first, and only a
// proven fence counts (its port refuses connections, or pgherd stopped it and then it does, or the
// operator says so): a primary that merely does not answer may be saturated, not dead. pgherd never
// starts a fenced instance until it has been rebuilt. What the old primary may have committed that no replica received is reported.
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { idText } from '@/lib/admin/parse-id';
import { instances } from '@/db/schema';
import { lsnToNumber } from '@/lib/inventory/lsn';
import { formatBytes, formatLsn } from '@/lib/admin/format';
import { driverFor } from '../drivers';
import { defineHerdAction, flagParam } from '../define-action';
import { describeRecordMove, dnsPreflight, dnsSteps } from '../dns-steps';
import type { HerdRef } from '../herd-ref';
import type { InstanceRef } from '../instance-ref';
import { observe, type Observed } from '../observe';
import { answeringAsPrimary, observeOthers } from '../herd-primary';
import { step } from '../pipeline';
import { repointPoolerSteps } from '../pooler-steps';
import { bytesOrUnknown, chooseCandidate, lagOf, recordedPrimary } from '../candidates';
import { refreshFleet } from '../refresher';
import { checkpointStep, describeObserved, lsnDiff, pointAt, promoteNow, recordNewPrimary } from '../topology-steps';
import { herdIdentity, identityProblem } from '../identity';
import { replayWhatItCan } from '../replay';
import { execNoted } from './control-steps';

export const drFailoverParams = z.object({
  /** Promote this replica (if it answers); left out: the reachable replica with the highest received LSN. */
  candidateInstanceId: idText('candidateInstanceId').optional(),
  /** How long the candidate may take to replay what it received before it is promoted anyway (ms). */
  replayDeadlineMs: z.coerce.number().int().min(0).max(3_600_000).optional(),
  /**
   * The operator says the old primary cannot accept writes (powered off, cut off from every client):
   * pgherd then promotes without proving it. Recorded with the operation in the audit log.
   */
  fencedByOperator: flagParam(),
}).strict();

/** How long the old primary has to answer before it is taken for gone. */
export const FENCE_PROBE_MS = 1500;
/** How long a replica re-pointed after the promotion has to stream the new timeline before it is marked needs rebuild. */
const FOLLOW_MS = 20_000;
/** How long stopping it over SSH may take before the fence counts as not proven. */
export const FENCE_STOP_MS = 15_000;

/** Received, then replayed, LSN, highest first: the candidate with the most WAL wins. */
function byWal(a: { o: Observed }, b: { o: Observed }): number {
  const pos = (x?: string | null) => (x ? lsnToNumber(x) : -1);
  return pos(b.o.receiveLsn ?? b.o.lsn) - pos(a.o.receiveLsn ?? a.o.lsn) || pos(b.o.lsn) - pos(a.o.lsn);
}

/** The inventory's view of the failover: the old primary and who would be chosen now. */
export function drPair(h: HerdRef, candidateId?: number): { old: InstanceRef; cand: InstanceRef } | string {
  const old = recordedPrimary(h.members);
  if (typeof old === 'string') return old;
  const cand = chooseCandidate(h.members, candidateId);
  if (typeof cand === 'string') return cand === 'the herd has no running replica' ? 'the herd has no running replica to fail over to' : cand;
  return { old, cand };
}

export const drFailoverAction = defineHerdAction({
  name: 'dr-failover',
  label: 'DR failover',
  permission: 'admin',
  dangerous: true,
  params: {
    schema: drFailoverParams,
    fields: [{
      name: 'candidateInstanceId',
      label: 'New primary',
      kind: 'herd-member',
      emptyLabel: 'the reachable replica with the most WAL, measured when it runs',
      help: 'Forcing a replica that has less WAL than another loses more.',
    }, {
      name: 'fencedByOperator',
      label: 'I have fenced the old primary myself',
      kind: 'flag',
      emptyLabel: 'no: pgherd proves the old primary cannot accept writes before it promotes',
      help: 'Only when it is powered off or cut off from every client: pgherd then promotes without proving that it cannot accept writes.',
    }],
  },
  plan: (h, { params }) => {
    const p = drFailoverParams.parse(params);
    const pair = drPair(h, p.candidateInstanceId);
    if (typeof pair === 'string') return { steps: [], refused: pair, warnings: [] };
    const { old, cand } = pair;
    const lag = lagOf(old, cand);
    const others = h.members.filter((m) => m.id !== old.id && m.id !== cand.id && m.state === 'running');
    const after = h.members.map((m) => (m.id === cand.id ? { ...m, role: 'primary' as const, state: 'running' } : m.id === old.id ? { ...m, state: 'fenced' } : m));
    return {
      facts: [
        { label: 'Old primary', value: `${old.label} (${old.state})` },
        { label: 'Candidate', value: `${cand.label}${cand.site ? ` (site ${cand.site})` : ''}${p.candidateInstanceId ? '' : ', chosen again when it runs'}` },
        { label: 'Lag', value: bytesOrUnknown(lag) },
        ...h.dns.map((r) => ({ label: `DNS ${r.name}`, value: `${r.type} -> ${cand.hostname}, TTL ${r.ttl} s (clients may use the old answer for up to ${r.ttl} s)` })),
        { label: 'Possible data loss', value: lag === null ? 'unknown' : `${lag} bytes of WAL (${formatBytes(lag)}), as last observed; measured again when it runs` },
      ],
      steps: [
        'ask every replica for its received and replayed LSN, and the DNS servers whether they take pgherd\u2019s key (refused if no replica answers or a server refuses: nothing is changed)',
        p.fencedByOperator
          ? `fence ${old.label}: you confirm it is fenced (powered off or cut off); pgherd does not check. pgherd will not start it until it is rebuilt`
          : `fence ${old.label}: proven when its port refuses connections, or when pgherd stops it over SSH (-m immediate) and its port then refuses them; anything else (no answer within ${FENCE_PROBE_MS / 1000} s, too many clients, an authentication or pg_hba error, SSH failing) stops the failover before anything is promoted. pgherd will not start it until it is rebuilt`,
        p.candidateInstanceId
          ? `check that ${cand.label} answers as a replica of the herd (its system identifier and timeline); let it replay all it can of what it received (deadline ${(p.replayDeadlineMs ?? 30_000) / 1000} s)`
          : `choose the reachable replica with the highest received LSN among those that report the herd’s system identifier and timeline; let it replay all it can of what it received (deadline ${(p.replayDeadlineMs ?? 30_000) / 1000} s)`,
        'promote it (pg_promote) and wait until it accepts writes; CHECKPOINT',
        ...h.dns.map((r) => (p.candidateInstanceId ? describeRecordMove(r, after)
          : `point ${r.name} (${r.type}, TTL ${r.ttl} s) where the herd says once the new primary accepts writes, then ask the zone’s server until it answers so`)),
        ...h.poolers.map((pl) => `point PgBouncer ${pl.label} at the new primary (${pl.configFile}, RELOAD)`),
        ...(!others.length ? [] : p.candidateInstanceId ? [`re-point the other replicas (${others.map((m) => m.label).join(', ')}) to the new primary`]
          : ['re-point the other replicas that answer to the new primary']),
        ...(others.length ? ['a replica that cannot follow the new timeline (it holds the start of a record the old primary never finished) is marked needs rebuild'] : []),
        `report the possible data loss: ${old.label}\u2019s last LSN seen minus what the new primary received`,
      ],
      warnings: [
        ...(/^prod/i.test(h.environment) ? [`production: ${h.environment}`] : []),
        'unplanned: transactions the old primary committed that no replica received are lost',
        // Not "if it runs as far as pgherd knows": the refresher seeing it die between plan and confirm must not change the plan.
        `${old.label} is stopped (-m immediate) if it still answers: use switchover for a planned change`,
        ...(p.fencedByOperator ? [`you confirm ${old.label} cannot accept writes: if it still can, the herd will have two primaries`] : []),
      ],
    };
  },
  steps: (h, deps, { params }) => {
    const p = drFailoverParams.parse(params);
    const pair = drPair(h, p.candidateInstanceId);
    if (typeof pair === 'string') throw new Error(pair);
    const { old } = pair;
    const replicas = h.members.filter((m) => m.id !== old.id);
    let cand: InstanceRef;
    let candObserved: Observed;
    let oldLastLsn: string | null = old.lsn === null ? null : formatLsn(old.lsn);
    let lastSeenHow = 'as last observed by pgherd';
    let oldTimeline: number | null = old.timeline;
    const others = () => replicas.filter((m) => m.id !== cand.id);
    const after = () => h.members.map((m) => (m.id === cand.id ? { ...m, role: 'primary' as const, state: 'running', upstreamId: null } : m.id === old.id ? { ...m, state: 'fenced' } : m));
    const leftBehind: string[] = [];
    const outcome = () => {
      const received = candObserved.receiveLsn ?? candObserved.lsn ?? null;
      const loss = oldLastLsn && received ? Math.max(0, lsnToNumber(oldLastLsn) - lsnToNumber(received)) : null;
      return `${cand.label} is the primary; ${old.label} is fenced; possible data loss: ${loss === null ? 'unknown' : `${loss} bytes`}`
        + ` (old primary\u2019s last LSN ${oldLastLsn ?? 'unknown'} ${lastSeenHow}, new primary received ${received ?? 'unknown'})`
        + (leftBehind.length ? `; not following the new primary, marked needs rebuild: ${leftBehind.join(', ')}` : '');
    };
    const measure = () => observeOthers(old, h.members);
    /** A member other than the recorded primary that accepts writes: promoting a third would make it worse. */
    const splitBrain = (seen: { m: InstanceRef; o: Observed }[], after: string) => {
      const writable = answeringAsPrimary(seen);
      if (!writable.length) return;
      throw new Error(`refused: ${writable.map(({ m, o }) => `${m.label} answers as a primary (timeline ${o.timeline})`).join(', ')}, though the inventory has ${old.label} as the herd's primary: `
        + `it was promoted outside this failover. ${after} Find out which one clients write to; rebuild the other(s) from it`);
    };
    return [
      step('ask the replicas and the DNS servers', async (ctx) => {
        const seen = await measure();
        const lines = seen.map(({ m, o }) => describeObserved(m, o));
        ctx.note({ stdout: lines.join('\n') });
        splitBrain(seen, 'Nothing was changed.');
        if (!seen.some(({ o }) => o.reachable && o.inRecovery)) throw new Error('refused: no replica answers; nothing was changed');
        lines.push(...(await dnsPreflight(h)));
        ctx.note({ stdout: lines.join('\n') });
      }, { timeoutMs: 20_000 }),
      step(`fence ${old.label}`, async (ctx) => {
        const lines: string[] = [];
        if (p.fencedByOperator) {
          lines.push(`fenced by the operator (${deps.operation?.requestedBy.username ?? 'unknown'}: powered off or cut off, as confirmed for this operation); pgherd did not check`);
        } else {
          // A saturated primary is the usual reason for a failover: only proof counts, never silence.
          const o = await observe(old, FENCE_PROBE_MS);
          lines.push(describeObserved(old, o));
          if (o.reachable && o.inRecovery === false && o.lsn) {
            oldLastLsn = o.lsn;
            oldTimeline = o.timeline ?? oldTimeline;
            lastSeenHow = 'when it was fenced';
          }
          if (!o.reachable && o.refused) {
            lines.push(`its host refuses connections on port ${old.port}: nothing listens there`);
          } else {
            const r = await execNoted(deps, old, ctx, driverFor(old.controlDriver).stop(old, 'immediate'), FENCE_STOP_MS)
              .catch((err: Error) => ({ code: -1, signal: null, stdout: '', stderr: err.message }));
            const after = await observe(old, FENCE_PROBE_MS);
            if (r.code !== 0 || after.reachable || !after.refused) {
              const seen = o.reachable ? 'it answers' : `it did not answer within ${FENCE_PROBE_MS / 1000} s (${o.error})`;
              const stop = r.code !== 0 ? `stopping it over SSH failed (${r.stderr.trim().split('\n').pop() || `exit ${r.code}`})`
                : after.reachable ? 'it still answers after a stop' : `after a stop its port still does not refuse connections (${after.error})`;
              ctx.note({ stdout: lines.join('\n') });
              throw new Error(`refused: ${old.label} is not proven fenced: ${seen}, and ${stop}. It may still accept writes: promoting now could make two primaries. Nothing was promoted. `
                + 'If you have fenced it yourself (powered it off, cut it off from every client), run the failover again with "I have fenced the old primary myself"');
            }
            lines.push('stopped over SSH (-m immediate); its port now refuses connections');
          }
        }
        await deps.db.update(instances).set({ state: 'fenced' }).where(eq(instances.id, old.id));
        ctx.note({ stdout: lines.join('\n') });
      }, { timeoutMs: FENCE_STOP_MS + 3 * FENCE_PROBE_MS + 5_000 }),
      step('choose the candidate', async (ctx) => {
        // Measured again now that the old primary sends nothing more: the received LSNs are final.
        const all = await measure();
        splitBrain(all, `${old.label} was fenced; nothing was promoted.`);
        const id = herdIdentity(h.systemIdentifier, all.map(({ o }) => o));
        if (id.ambiguous) throw new Error(id.ambiguous);
        const seen = all.filter(({ o }) => o.reachable && o.inRecovery).sort(byWal);
        // The herd's timeline: its primary's as last seen (by the fence, else the inventory), else the replicas' highest.
        const want = {
          systemIdentifier: id.systemIdentifier,
          timeline: oldTimeline ?? (Math.max(0, ...seen.map(({ o }) => o.timeline ?? 0)) || null),
        };
        const lines = seen.map(({ m, o }) => describeObserved(m, o));
        const eligible = seen.filter(({ m, o }) => {
          const why = identityProblem(m, o, want);
          if (why) lines.push(`not a candidate: ${why}`);
          return !why;
        });
        const pool = p.candidateInstanceId === undefined ? eligible : eligible.filter(({ m }) => m.id === p.candidateInstanceId);
        if (!pool.length) {
          ctx.note({ stdout: lines.join('\n') });
          const asked = seen.find(({ m }) => m.id === p.candidateInstanceId);
          throw new Error(p.candidateInstanceId === undefined
            ? (seen.length ? 'no replica that answers is on the herd\'s system identifier and timeline; nothing was promoted' : 'no replica answers any more')
            : asked ? `refused: ${identityProblem(asked.m, asked.o, want)}; nothing was promoted` : `the replica asked for (instance ${p.candidateInstanceId}) does not answer as a replica`);
        }
        cand = pool[0].m;
        candObserved = pool[0].o;
        ctx.note({ stdout: `${lines.join('\n')}\nchosen: ${cand.label}` });
      }, { timeoutMs: 15_000 }),
      step('let the candidate replay all it can', async (ctx) => {
        const received = candObserved.receiveLsn;
        if (!received) return void ctx.note({ stdout: 'skipped: it received nothing by streaming' });
        const deadline = p.replayDeadlineMs ?? 30_000;
        const r = await replayWhatItCan(cand, received, { signal: ctx.signal, deadlineMs: deadline });
        ctx.note({ stdout: r.how === 'all' ? `received ${received}, replayed all of it (${r.replayed})`
          : r.how === 'stalled' ? `received ${received}, replayed ${r.replayed}: replay stopped there (${lsnDiff(received, r.replayed)} bytes short, the end of the last complete record; the rest can never be replayed)`
          // Not lost: the promotion replays what is on disk before it ends recovery. It just takes longer.
          : `still replaying after ${deadline / 1000} s (at ${r.replayed ?? 'unknown'}): the promotion finishes the replay` });
      }, { timeoutMs: (p.replayDeadlineMs ?? 30_000) + 10_000 }),
      step('promote the candidate', async (ctx) => {
        const o = await promoteNow(cand, ctx);
        await recordNewPrimary(deps, cand, o.timeline);
        deps.outcome?.(outcome());
        ctx.note({ stdout: `${cand.label} accepts writes on timeline ${o.timeline}` });
      }, { timeoutMs: 90_000 }),
      checkpointStep('checkpoint on the new primary', () => cand),
      ...dnsSteps(h, deps, after),
      ...repointPoolerSteps(h.poolers, deps, () => cand),
      step('re-point the other replicas', async (ctx) => {
        const lines: string[] = [];
        for (const m of others()) {
          if (!(await observe(m, 2000)).reachable) {
            lines.push(`${m.label}: does not answer, left as it is (re-point or rebuild it later)`);
            continue;
          }
          try {
            const o = await pointAt(m, cand, deps, ctx, { resumeReplay: true, timeoutMs: FOLLOW_MS });
            lines.push(`${m.label}: streaming timeline ${o.walReceiver?.receivedTli} from ${o.walReceiver?.senderHost}:${o.walReceiver?.senderPort}`);
          } catch (err) {
            // One replica that cannot follow must not keep the others from following, nor the failover
            // from being done. The usual cause: it holds the start of a record the old primary never
            // finished, across a WAL segment boundary, and the new primary's timeline overwrote that
            // record's continuation (OVERWRITE_CONTRECORD): PostgreSQL cannot replay past it, and only a
            // rebuild (pg_rewind) brings it back. It is marked so, and the outcome names it.
            leftBehind.push(m.label);
            await deps.db.update(instances).set({ state: 'needs_rebuild' }).where(eq(instances.id, m.id));
            lines.push(`${m.label}: does not follow the new primary, marked needs rebuild: ${(err as Error).message}`);
          }
        }
        ctx.note({ command: `ALTER SYSTEM SET primary_conninfo on ${others().length} replica(s)`, stdout: lines.join('\n') || 'no other replica' });
        deps.outcome?.(outcome());
      }, { timeoutMs: 300_000 }),
      step('record the new topology and the possible data loss', async (ctx) => {
        await refreshFleet(deps.db, { ids: replicas.map((m) => m.id), timeoutMs: 2000 });
        ctx.note({ stdout: outcome() });
      }, { timeoutMs: 20_000 }),
    ];
  },
});

